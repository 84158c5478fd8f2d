//! Refresh token grant with rotation and reuse detection: RFC 6749 §6, OAuth 2.1 §4.3.

use serde_json::json;

use crate::{
    context::Ctx,
    audit::Event,
    client::{Client, GrantType},
    oauth::{
        error::{ErrorCode, OAuthError},
        families,
        issue::{Issue, Prepared, TokenResponse, UserAuthentication, prepare},
        params::Params,
        scope::Scopes,
    },
    store::now,
};

pub async fn refresh(
    ctx: &Ctx<'_>,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::RefreshToken) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client may not use this grant",
        ));
    }
    let presented = params.require("refresh_token")?;
    let scope = ctx.scope();

    let token = families::find_refresh_token(scope, presented)
        .await?
        .ok_or_else(invalid)?;
    let family = &token.family;
    // A token bound to another client is treated as unknown (RFC 6749 §10.4).
    if family.client_id != client.client_id {
        return Err(invalid());
    }
    if !token.is_live(ctx.lifetimes().refresh_idle, now()) {
        return Err(invalid());
    }
    if token.rotated {
        return Err(reused(ctx, client, family).await?);
    }
    // A bad scope or resource changes nothing: the token is not spent.
    let scopes = checked_request(family, params)?;

    let user = &token.user;
    if user.disabled_at.is_some() {
        return Err(invalid());
    }
    families::touch(scope, family).await?;
    let Prepared { response, refresh_token_row } = prepare(
        ctx,
        Issue {
            client,
            scopes: &scopes,
            user: Some(UserAuthentication {
                user,
                auth_time: family.auth_time,
                amr: &family.amr,
                acr: family.acr,
                session_id: family.session_id.as_deref(),
                nonce: None,
                membership: token.membership.as_ref(),
                // OIDC Core §12.2: a refreshed ID token need not repeat what the first one was asked for.
                id_token_claims: &[],
            }),
            family_id: Some(&family.id),
            status_index: family.status_index,
            with_refresh_token: true,
            resource: family.resource.as_deref(),
            service_account: None,
            authorization_details: None,
        },
    )
    .await?;
    // Spent and replaced in one transaction; losing the spend means another request (maybe on
    // another node) rotated this token first: reuse.
    if !ctx.services.token_writes.store(&ctx.tenant.id, refresh_token_row, Some(&token.hash)).await? {
        return Err(reused(ctx, client, family).await?);
    }
    ctx.audit(
        Event::new(
            &ctx.tenant.id,
            format!("client:{}", client.client_id),
            "token.refresh",
        )
        .target(format!("family:{}", family.id)),
    )
    .await;
    Ok(response)
}

/// A rotated token presented again: it leaked, so its whole family is revoked (OAuth 2.1 §4.3.1).
async fn reused(ctx: &Ctx<'_>, client: &Client, family: &families::Family) -> Result<OAuthError, OAuthError> {
    if families::revoke(ctx.scope(), &family.id, "refresh_token_reuse").await? {
        ctx.audit(
            Event::new(&ctx.tenant.id, format!("client:{}", client.client_id), "refresh_token.reuse")
                .target(format!("family:{}", family.id))
                .failed()
                .details(json!({ "user": family.user_id })),
        )
        .await;
    }
    Ok(invalid())
}

fn invalid() -> OAuthError {
    OAuthError::invalid_grant("the refresh token is invalid, expired or revoked")
}

/// The scopes of the new access token: the family's, or fewer (RFC 6749 §6: never more); and the
/// resource, if named, must be the family's (RFC 8707: a refresh cannot move the audience).
fn checked_request(family: &families::Family, params: &Params) -> Result<Scopes, OAuthError> {
    if let Some(requested) = params.get("resource")
        && !crate::oauth::resource::same(Some(requested), family.resource.as_deref())
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "a refresh cannot change the resource the grant is for",
        ));
    }
    match params.get("scope") {
        None => Ok(family.scopes.iter().cloned().collect()),
        Some(requested) => {
            let requested = Scopes::parse(requested);
            if let Some(extra) = requested.iter().find(|s| !family.scopes.contains(s)) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("scope {extra:.64} was not granted"),
                ));
            }
            Ok(requested)
        }
    }
}
