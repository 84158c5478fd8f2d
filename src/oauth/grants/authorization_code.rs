//! Authorization code grant: RFC 6749 §4.1.3, RFC 7636 §4.6, OAuth 2.1 §4.1.3.

use serde_json::json;

use crate::{
    context::Ctx,
    audit::Event,
    client::{Client, GrantType},
    crypto::sha256_hex,
    organization,
    oauth::{
        error::{ErrorCode, OAuthError},
        families::{self, NewFamily},
        issue::{Issue, TokenResponse, UserAuthentication, issue},
        params::Params,
        scope::Scopes,
        pkce,
    },
    session,
    store::{authorizations, from_json_list, now, stored_amr},
    user,
};

pub async fn exchange(
    ctx: &Ctx<'_>,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client may not use this grant",
        ));
    }
    let code = params.require("code")?;
    let redirect_uri = params.require("redirect_uri")?;
    let verifier = params.get("code_verifier");
    let scope = ctx.scope();
    let code_hash = sha256_hex(code);
    let invalid =
        || OAuthError::invalid_grant("the authorization code is invalid, expired or already used");

    let row = authorizations::find_code(scope, &code_hash).await?.ok_or_else(invalid)?;
    if row.consumed_at.is_some() {
        revoke_after_replay(ctx, &code_hash, &row.client_id).await?;
        return Err(invalid());
    }
    if row.client_id != client.client_id
        || row.expires_at <= now()
        || row.redirect_uri != redirect_uri
    {
        return Err(invalid());
    }
    let Some(verifier) = verifier else {
        return Err(OAuthError::invalid_grant("code_verifier is required"));
    };
    if !pkce::verifier_matches(verifier, &row.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    // The person signed out (or the session ended otherwise) between the code and its exchange:
    // nothing is issued on the strength of a session that no longer exists.
    if !session::is_live(scope, &row.session_id, ctx.lifetimes()).await? {
        return Err(invalid());
    }

    // RFC 8707 §2.2: the token request may name the resource again; it must be the one authorized.
    if let Some(requested) = params.get("resource")
        && !crate::oauth::resource::same(Some(requested), row.resource.as_deref())
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "the resource differs from the one authorized",
        ));
    }
    let scopes = Scopes::parse(&row.scope);
    let amr = stored_amr(&row.amr)?;
    let acr = crate::store::stored_acr(&row.acr)?;
    let id_token_claims = row.id_token_claims.as_deref().map(from_json_list).transpose()?.unwrap_or_default();
    // The family exists before the code is consumed, and the consuming UPDATE links it: a concurrent
    // replay that loses the race can always find (and revoke) what the winner issued.
    let families::Created { id: family_id, status_index } = families::create(
        scope,
        ctx.lifetimes().refresh_absolute,
        NewFamily {
            client_id: &client.client_id,
            user_id: &row.user_id,
            session_id: Some(&row.session_id),
            scopes: &scopes,
            auth_time: row.auth_time,
            amr: &amr,
            acr,
            resource: row.resource.as_deref(),
        },
    )
    .await?;
    if !authorizations::consume_code(scope, &code_hash, &family_id, now()).await? {
        families::revoke(scope, &family_id, "unused").await?;
        revoke_after_replay(ctx, &code_hash, &client.client_id).await?;
        return Err(invalid());
    }

    let user = user::find(scope, &row.user_id)
        .await?
        .filter(|u| u.disabled_at.is_none())
        .ok_or_else(invalid)?;
    let membership = organization::membership_of(scope, &user.id).await?;
    let response = issue(
        ctx,
        Issue {
            client,
            scopes: &scopes,
            user: Some(UserAuthentication {
                user: &user,
                auth_time: row.auth_time,
                amr: &amr,
                acr,
                session_id: Some(&row.session_id),
                nonce: row.nonce.as_deref(),
                membership: membership.as_ref(),
                id_token_claims: &id_token_claims,
            }),
            family_id: Some(&family_id),
            status_index: Some(status_index),
            with_refresh_token: client.allows_grant(GrantType::RefreshToken),
            resource: row.resource.as_deref(),
            service_account: None,
            authorization_details: None,
        },
    )
    .await?;
    ctx.audit(
        Event::new(
            &ctx.tenant.id,
            format!("client:{}", client.client_id),
            "token.authorization_code",
        )
        .target(format!("user:{}", user.id))
        .details(json!({ "family": family_id, "scope": response.scope })),
    )
    .await;
    Ok(response)
}

/// A code used twice was stolen or leaked (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3): revoke what its first
/// use issued.
async fn revoke_after_replay(
    ctx: &Ctx<'_>,
    code_hash: &str,
    client_id: &str,
) -> Result<(), OAuthError> {
    let scope = ctx.scope();
    let family_id = authorizations::find_code(scope, code_hash).await?.and_then(|row| row.family_id);
    if let Some(family_id) = family_id {
        families::revoke(scope, &family_id, "authorization_code_replay").await?;
        ctx.audit(
            Event::new(
                &ctx.tenant.id,
                format!("client:{client_id}"),
                "authorization_code.replay",
            )
            .target(format!("family:{family_id}"))
            .failed(),
        )
        .await;
    }
    Ok(())
}
