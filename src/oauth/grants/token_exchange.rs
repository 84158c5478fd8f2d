//! Token exchange (RFC 8693) of a service account's long-lived agent token for a short-lived access
//! token. The agent token is the credential: no client authentication accompanies it (RFC 8693 §2.1
//! leaves that to the server), and it never reaches a resource server.

use crate::{
    context::Ctx,
    audit::Event,
    client::GrantType,
    oauth::{
        error::{ErrorCode, OAuthError},
        issue::{Issue, TokenResponse, issue},
        params::Params,
    },
    ratelimit, service_account,
};

use super::client_credentials::{machine_resource, machine_scopes};

pub const GRANT_TYPE: &str = GrantType::TokenExchange.as_str();
/// Our token type URI for agent tokens (RFC 8693 §3 allows any absolute URI).
pub const AGENT_TOKEN_TYPE: &str = "urn:latchkey:params:oauth:token-type:agent-token";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

pub async fn exchange(ctx: &Ctx<'_>, params: &Params) -> Result<TokenResponse, OAuthError> {
    if params.get("subject_token_type") != Some(AGENT_TOKEN_TYPE) {
        return Err(OAuthError::invalid_request(format!("subject_token_type must be {AGENT_TOKEN_TYPE}")));
    }
    if params.get("requested_token_type").is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
        return Err(OAuthError::invalid_request("only access tokens are issued"));
    }
    if params.contains("actor_token") || params.contains("audience") {
        return Err(OAuthError::invalid_request("actor_token and audience are not supported; name a resource"));
    }
    let presented = params.require("subject_token")?;
    let Some((account, token)) = service_account::authenticate_agent_token(ctx.scope(), presented).await? else {
        // Same answer for unknown, expired, revoked and disabled: nothing to probe.
        return Err(OAuthError::new(ErrorCode::InvalidGrant, "the agent token is not valid"));
    };
    ratelimit::check(&ctx.services.limiters.token_per_client, &account.client_id).map_err(OAuthError::rate_limited)?;
    let Some(client) = ctx.client(&account.client_id).await? else {
        return Err(OAuthError::new(ErrorCode::InvalidGrant, "the agent token is not valid"));
    };
    let resource = machine_resource(ctx, params).await?;
    let scopes = machine_scopes(params.get("scope"), &token.scopes, resource.as_ref())?;
    let mut response = issue(
        ctx,
        Issue {
            client: &client,
            scopes: &scopes,
            user: None,
            family_id: None,
            status_index: None,
            with_refresh_token: false,
            resource: resource.as_ref().map(|r| r.uri.as_str()),
            service_account: Some(&account),
            authorization_details: None,
        },
    )
    .await?;
    service_account::mark_agent_token_used(ctx.scope(), &token.id).await?;
    ctx.audit(
        Event::new(&ctx.tenant.id, format!("service_account:{}", account.id), "token.agent_token")
            .target(format!("agent_token:{}", token.id)),
    )
    .await;
    // RFC 8693 §2.2.1.
    response.issued_token_type = Some(ACCESS_TOKEN_TYPE);
    Ok(response)
}
