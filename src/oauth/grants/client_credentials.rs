//! Client credentials grant: RFC 6749 §4.4. Confidential clients only. The token's subject is the
//! client acting for itself, or, for a service account's client, the service account.

use crate::{
    app::Ctx,
    audit::Event,
    client::{Client, GrantType},
    oauth::{
        error::{ErrorCode, OAuthError},
        issue::{Issue, TokenResponse, issue},
        params::{Params, split_scope},
    },
    resource::{self, Resource},
    service_account,
};

/// Scopes that describe an end user and make no sense without one.
const USER_SCOPES: [&str; 4] = ["openid", "email", "profile", "offline_access"];

/// The scopes of a token without a user: what was asked for, each one `allowed` and none about a user;
/// or, when nothing was asked for, the `granted` ones.
pub(super) fn machine_scopes(
    params: &Params,
    granted: &[String],
    resource: Option<&Resource>,
) -> Result<Vec<String>, OAuthError> {
    let allowed = |s: &String| {
        (granted.contains(s) || resource.is_some_and(|r| r.scopes.contains(s))) && !USER_SCOPES.contains(&s.as_str())
    };
    match params.get("scope") {
        Some(requested) => {
            let requested = split_scope(requested);
            match requested.iter().find(|s| !allowed(s)) {
                Some(bad) => Err(OAuthError::new(ErrorCode::InvalidScope, format!("scope {bad:.64} is not allowed"))),
                None => Ok(requested),
            }
        }
        None => Ok(granted.iter().filter(|s| !USER_SCOPES.contains(&s.as_str())).cloned().collect()),
    }
}

/// RFC 8707 `resource`, when the request names one.
pub(super) async fn requested_resource(ctx: &Ctx<'_>, params: &Params) -> Result<Option<Resource>, OAuthError> {
    match params.get("resource") {
        Some(uri) => Ok(Some(resource::requested(ctx.scope(), uri).await?)),
        None => Ok(None),
    }
}

pub async fn grant(
    ctx: &Ctx<'_>,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !client.is_confidential() || !client.allows_grant(GrantType::ClientCredentials) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client may not use this grant",
        ));
    }
    let account = service_account::of_client(ctx.scope(), client).await?;
    if account.as_ref().is_some_and(|a| !a.is_active()) {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "this service account is disabled"));
    }
    let resource = requested_resource(ctx, params).await?;
    let scopes = machine_scopes(params, &client.scopes, resource.as_ref())?;
    let response = issue(
        ctx,
        Issue {
            client,
            scopes: &scopes,
            user: None,
            family_id: None,
            with_refresh_token: false,
            resource: resource.as_ref().map(|r| r.uri.as_str()),
            service_account: account.as_ref(),
        },
    )
    .await?;
    let actor = match &account {
        Some(account) => format!("service_account:{}", account.id),
        None => format!("client:{}", client.client_id),
    };
    ctx.audit(Event::new(&ctx.tenant.id, actor, "token.client_credentials")).await;
    Ok(response)
}
