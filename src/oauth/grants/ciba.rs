//! The CIBA grant (OpenID CIBA Core 1.0 §10–11, poll mode): the client polls with its `auth_req_id`
//! until the person answered. Each answer is the spec's: `authorization_pending`, `slow_down` (the
//! interval grows by five seconds), `access_denied`, `expired_token`; once approved, one access token
//! — consumed in the database, so two polls racing (two nodes) yield one — whose `acr` (`phr`),
//! `auth_time` (the passkey assertion that approved) and RFC 9396 `authorization_details` say what
//! was approved, when and how. No refresh token: an approval is for one thing.

use latchkey_proto::Acr;
use serde_json::json;

use crate::{
    audit::Event,
    client::{Client, GrantType},
    context::Ctx,
    crypto::sha256_hex,
    oauth::{
        authorization_details::AuthorizationDetails,
        error::{ErrorCode, OAuthError},
        issue::TokenResponse,
        params::Params,
        scope::Scopes,
    },
    store::{
        approvals::{self, Poll},
        now, stored_amr,
    },
    user,
};

pub async fn redeem(ctx: &Ctx<'_>, client: &Client, params: &Params) -> Result<TokenResponse, OAuthError> {
    if !client.is_confidential() || !client.allows_grant(GrantType::Ciba) {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "this client may not use the CIBA grant"));
    }
    let auth_req_id = params.require("auth_req_id")?;
    let approval = match approvals::poll(ctx.writer_scope(), &sha256_hex(auth_req_id), &client.client_id, now()).await? {
        Poll::Approved(approval) => approval,
        Poll::Pending => return Err(OAuthError::new(ErrorCode::AuthorizationPending, "the person has not answered yet")),
        Poll::SlowDown => return Err(OAuthError::new(ErrorCode::SlowDown, "polled too fast: wait the interval, now five seconds longer")),
        Poll::Denied => return Err(OAuthError::new(ErrorCode::AccessDenied, "the person denied the request")),
        Poll::Expired => {
            ctx.audit(Event::new(&ctx.tenant.id, format!("client:{}", client.client_id), "approval.expired").failed()).await;
            return Err(OAuthError::new(ErrorCode::ExpiredToken, "the auth_req_id has expired"));
        }
        Poll::Redeemed => return Err(OAuthError::invalid_grant("this auth_req_id was already used")),
        Poll::Unknown => return Err(OAuthError::invalid_grant("unknown auth_req_id")),
    };
    let scope = ctx.scope();
    // Deprovisioned between the yes and the poll: nothing is issued.
    let user = user::find_active(scope, &approval.user_id).await?.ok_or_else(|| OAuthError::invalid_grant("the account is disabled"))?;
    let scopes = Scopes::parse(&approval.scope);
    let amr = stored_amr(approval.amr.as_deref().unwrap_or("[]"))?;
    let auth_time = approval.auth_time.ok_or_else(|| crate::store::StoreError::Corrupt("an approval without its assertion".into()))?;
    let details = AuthorizationDetails::from_stored(&approval.authorization_details)
        .ok_or_else(|| crate::store::StoreError::Corrupt("stored authorization details".into()))?;
    let details_value = (!details.0.is_empty()).then(|| serde_json::Value::Array(details.0.clone()));
    let (response, family_id) = super::issue_answered(
        ctx,
        client,
        super::Answered {
            user: &user,
            scopes: &scopes,
            session_id: approval.session_id.as_deref(),
            auth_time,
            amr: &amr,
            acr: Acr::Phr,
            resource: approval.resource.as_deref(),
            // An approval is for one thing.
            with_refresh_token: false,
            authorization_details: details_value.as_ref(),
        },
    )
    .await?;
    ctx.audit(
        Event::new(&ctx.tenant.id, format!("client:{}", client.client_id), "token.ciba")
            .target(format!("user:{}", user.id))
            .details(json!({ "approval": approval.id, "family": family_id })),
    )
    .await;
    Ok(response)
}
