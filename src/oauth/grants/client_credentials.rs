//! Client credentials grant: RFC 6749 §4.4. Confidential clients only; the token's subject is the client.

use crate::{
    app::Ctx,
    audit::Event,
    client::{Client, GrantType},
    oauth::{
        error::{ErrorCode, OAuthError},
        issue::{Issue, TokenResponse, issue},
        params::{Params, split_scope},
    },
    resource,
};

/// Scopes that describe an end user and make no sense without one.
const USER_SCOPES: [&str; 4] = ["openid", "email", "profile", "offline_access"];

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
    let resource = match params.get("resource") {
        Some(uri) => Some(resource::requested(ctx.scope(), uri).await?),
        None => None,
    };
    let allowed = |s: &String| {
        (client.scopes.contains(s) || resource.as_ref().is_some_and(|r| r.scopes.contains(s)))
            && !USER_SCOPES.contains(&s.as_str())
    };
    let scopes = match params.get("scope") {
        Some(requested) => {
            let requested = split_scope(requested);
            if let Some(bad) = requested.iter().find(|s| !allowed(s)) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("scope {bad:.64} is not allowed"),
                ));
            }
            requested
        }
        None => client
            .scopes
            .iter()
            .filter(|s| !USER_SCOPES.contains(&s.as_str()))
            .cloned()
            .collect(),
    };
    let response = issue(
        ctx,
        Issue {
            client,
            scopes: &scopes,
            user: None,
            family_id: None,
            with_refresh_token: false,
            resource: resource.as_ref().map(|r| r.uri.as_str()),
        },
    )
    .await?;
    ctx.audit(Event::new(
        &ctx.tenant.id,
        format!("client:{}", client.client_id),
        "token.client_credentials",
    ))
    .await;
    Ok(response)
}
