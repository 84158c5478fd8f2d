//! The token endpoint (RFC 6749 §3.2): authenticate the client once, then hand off to the grant. An
//! agent-token exchange (RFC 8693) is the exception: the agent token is the credential.

use super::{
    client_auth,
    error::{ErrorCode, OAuthError},
    grants::{self, token_exchange},
    issue::TokenResponse,
    params::Params,
};
use crate::{
    context::Ctx,
    client::{self, GrantType},
    ratelimit,
};

/// A failed authentication (a wrong client secret, an unknown agent token) is counted against the
/// caller's address and the client id it named, separately; once either is spent the answer is 429
/// instead of the error. Other errors pass through.
pub(super) fn charge_failure(ctx: &Ctx<'_>, client_id: Option<&str>, error: OAuthError) -> OAuthError {
    if !matches!(error.code, ErrorCode::InvalidClient | ErrorCode::InvalidGrant) {
        return error;
    }
    let limiters = &ctx.services.limiters;
    let by_ip = ctx.origin.ip.as_deref().and_then(|ip| ip.parse().ok()).map(|ip| ratelimit::check(&limiters.token_failures_per_ip, &ip));
    let by_client = client_id.map(|id| ratelimit::check(&limiters.token_failures_per_client, &id.to_owned()));
    match by_ip.into_iter().chain(by_client).find_map(Result::err) {
        Some(retry) => OAuthError::rate_limited(retry),
        None => error,
    }
}

pub async fn handle(
    ctx: &Ctx<'_>,
    authorization: Option<&str>,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let result = answer(ctx, authorization, params).await;
    let metrics = &ctx.services.metrics;
    if metrics.enabled() {
        let grant_type = params.get("grant_type").and_then(GrantType::parse).map(GrantType::as_str);
        // A refusal by a rate limit is `temporarily_unavailable` on the wire; the metric says why.
        let outcome = result.as_ref().err().map(|e| if e.retry_after.is_some() { "rate_limited" } else { e.code.as_str() });
        metrics.grant(grant_type, outcome);
    }
    result
}

async fn answer(
    ctx: &Ctx<'_>,
    authorization: Option<&str>,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if params.get("grant_type") == Some(token_exchange::GRANT_TYPE) {
        // The agent token authenticates the service account; a second credential would be ambiguous.
        if authorization.is_some() || params.contains("client_id") || params.contains("client_secret") {
            return Err(OAuthError::invalid_request("an agent token is the credential: send no client authentication with it"));
        }
        return token_exchange::exchange(ctx, params).await.map_err(|e| charge_failure(ctx, None, e));
    }
    let presented = client_auth::presented(authorization, params)?;
    let grant_type = params.require("grant_type")?;
    let client = client_auth::authenticate(ctx.client(&presented.client_id).await?, &presented)
        .map_err(|e| charge_failure(ctx, Some(&presented.client_id), e))?;
    // A client's budget is charged only once it has proved who it is: nobody else's wrong secrets
    // can use it up.
    ratelimit::check(&ctx.services.limiters.token_per_client, &client.client_id).map_err(OAuthError::rate_limited)?;
    let response = match GrantType::parse(grant_type) {
        Some(GrantType::AuthorizationCode) => grants::authorization_code::exchange(ctx, &client, params).await,
        Some(GrantType::RefreshToken) => grants::refresh_token::refresh(ctx, &client, params).await,
        Some(GrantType::ClientCredentials) => grants::client_credentials::grant(ctx, &client, params).await,
        Some(GrantType::Ciba) => grants::ciba::redeem(ctx, &client, params).await,
        Some(GrantType::DeviceCode) => grants::device_code::redeem(ctx, &client, params).await,
        // Token exchange was handled above, before client authentication.
        Some(GrantType::TokenExchange) | None => Err(OAuthError::new(ErrorCode::UnsupportedGrantType, "unsupported grant_type")),
    }?;
    // A self-registered client that obtained a token is in use: it no longer expires as abandoned.
    if client.registered_dynamically && client.first_used_at.is_none() {
        client::mark_used(ctx.scope(), &client.client_id).await?;
        ctx.forget_client(&client.client_id);
    }
    Ok(response)
}
