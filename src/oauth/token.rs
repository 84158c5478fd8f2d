//! The token endpoint (RFC 6749 §3.2): authenticate the client once, then hand off to the grant. An
//! agent-token exchange (RFC 8693) is the exception: the agent token is the credential.

use super::{
    client_auth,
    error::{ErrorCode, OAuthError},
    grants::{self, token_exchange},
    issue::TokenResponse,
    params::Params,
};
use crate::{app::Ctx, client, ratelimit};

pub async fn handle(
    ctx: &Ctx<'_>,
    authorization: Option<&str>,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if params.get("grant_type") == Some(token_exchange::GRANT_TYPE) {
        // The agent token authenticates the service account; a second credential would be ambiguous.
        if authorization.is_some() || params.contains("client_id") || params.contains("client_secret") {
            return Err(OAuthError::invalid_request("an agent token is the credential: send no client authentication with it"));
        }
        return token_exchange::exchange(ctx, params).await;
    }
    let presented = client_auth::presented(authorization, params)?;
    // Rate-limit per presented client id before touching the database.
    ratelimit::check(&ctx.app.limiters.token_per_client, &presented.client_id)
        .map_err(OAuthError::rate_limited)?;
    let grant_type = params.require("grant_type")?;
    let client = client_auth::authenticate(ctx.client(&presented.client_id).await?, &presented)?;
    let response = match grant_type {
        "authorization_code" => grants::authorization_code::exchange(ctx, &client, params).await,
        "refresh_token" => grants::refresh_token::refresh(ctx, &client, params).await,
        "client_credentials" => grants::client_credentials::grant(ctx, &client, params).await,
        _ => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "unsupported grant_type",
        )),
    }?;
    // A self-registered client that obtained a token is in use: it no longer expires as abandoned.
    if client.registered_dynamically && client.first_used_at.is_none() {
        client::mark_used(ctx.scope(), &client.client_id).await?;
        ctx.forget_client(&client.client_id);
    }
    Ok(response)
}
