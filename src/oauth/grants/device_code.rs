//! The device code grant (RFC 8628 §3.4–3.5): the device polls with its device code until the person
//! answered: `authorization_pending`, `slow_down` (the interval grows by five seconds),
//! `access_denied`, `expired_token`; once allowed, the same tokens as the code flow — a refresh
//! family, `acr`/`amr`/`auth_time` of the session that allowed it — issued once (a conditional
//! UPDATE: two polls on two nodes yield one token set).

use serde_json::json;

use crate::{
    audit::Event,
    client::{Client, GrantType},
    context::Ctx,
    crypto::sha256_hex,
    oauth::{
        error::{ErrorCode, OAuthError},
        issue::TokenResponse,
        params::Params,
        scope::Scopes,
    },
    store::{
        StoreError,
        device_codes::{self, Poll},
        now, stored_acr, stored_amr,
    },
    user,
};

pub async fn redeem(ctx: &Ctx<'_>, client: &Client, params: &Params) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::DeviceCode) {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "this client may not use the device authorization grant"));
    }
    let device_code = params.require("device_code")?;
    let row = match device_codes::poll(ctx.writer_scope(), &sha256_hex(device_code), &client.client_id, now()).await? {
        Poll::Approved(row) => row,
        Poll::Pending => return Err(OAuthError::new(ErrorCode::AuthorizationPending, "the person has not answered yet")),
        Poll::SlowDown => return Err(OAuthError::new(ErrorCode::SlowDown, "polled too fast: wait the interval, now five seconds longer")),
        Poll::Denied => return Err(OAuthError::new(ErrorCode::AccessDenied, "the person denied the request")),
        Poll::Expired => return Err(OAuthError::new(ErrorCode::ExpiredToken, "the device code has expired")),
        Poll::Redeemed => return Err(OAuthError::invalid_grant("this device code was already used")),
        Poll::Unknown => return Err(OAuthError::invalid_grant("unknown device code")),
    };
    let scope = ctx.scope();
    let corrupt = |what: &str| StoreError::Corrupt(format!("an allowed device request without its {what}"));
    let user_id = row.user_id.as_deref().ok_or_else(|| corrupt("person"))?;
    let user = user::find_active(scope, user_id).await?.ok_or_else(|| OAuthError::invalid_grant("the account is disabled"))?;
    let scopes = Scopes::parse(&row.scope);
    let amr = stored_amr(row.amr.as_deref().unwrap_or("[]"))?;
    let acr = stored_acr(row.acr.as_deref().ok_or_else(|| corrupt("acr"))?)?;
    let auth_time = row.auth_time.ok_or_else(|| corrupt("auth_time"))?;
    let (response, family_id) = super::issue_answered(
        ctx,
        client,
        super::Answered {
            user: &user,
            scopes: &scopes,
            session_id: row.session_id.as_deref(),
            auth_time,
            amr: &amr,
            acr,
            resource: row.resource.as_deref(),
            with_refresh_token: client.allows_grant(GrantType::RefreshToken),
            authorization_details: None,
        },
    )
    .await?;
    ctx.audit(
        Event::new(&ctx.tenant.id, format!("client:{}", client.client_id), "token.device_code")
            .target(format!("user:{}", user.id))
            .details(json!({ "device": row.public_id, "family": family_id, "scope": response.scope })),
    )
    .await;
    Ok(response)
}
