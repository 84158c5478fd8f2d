//! The backchannel authentication endpoint (OpenID CIBA Core 1.0 §7, poll mode) with RFC 9396
//! authorization details: a confidential client allowed the CIBA grant asks for one person's
//! approval; the person is told (mail, and the account page's list) and answers on a page of ours
//! with a fresh passkey (`approval`); the client polls the token endpoint (`grants::ciba`).
//!
//! Latchkey's one addition to the protocol: an identical request by the same client (same person,
//! scope, resource, binding message, details) while an approval is open joins it — a new
//! `auth_req_id` for the same approval, no second mail. So replicas of a client (the permission API)
//! need no shared state: whichever one sees a retried call asks again and finds the answer. The
//! response also names the approval (`approval_id`) and its page (`approval_uri`) for the client to
//! pass on to the person.

use latchkey_proto::{Acr, Secret};
use serde::Serialize;

use super::{
    authorization_details::{self, AuthorizationDetails},
    client_auth,
    error::{ErrorCode, OAuthError},
    params::Params,
    resource::{self, Resource},
    token::charge_failure,
};
use crate::{
    audit::Event,
    client::{Client, GrantType, PERSON_SCOPES},
    context::Ctx,
    crypto, jwt,
    mail_queue::{Message, SendIf},
    ratelimit,
    store::{
        approvals::{self, ApprovalRow, Caps, CibaRequestRow, Opened},
        now,
    },
    user::{self, User},
};

/// CIBA §7.3: how long an `auth_req_id` lives unless the client asks for less (`requested_expiry`).
pub const DEFAULT_EXPIRY: i64 = 300;
pub const MAX_EXPIRY: i64 = 600;
/// CIBA §7.3: the minimum seconds between polls.
pub const INTERVAL: i64 = 5;
/// A binding message is a short text shown to the person on both sides (CIBA §7.1).
const MAX_BINDING_MESSAGE: usize = 100;
/// Open approvals one person may be asked at once (each one is a mail), and one client may have.
pub const CAPS: Caps = Caps { per_client: 1000, per_user: 20 };
/// What an approval's id starts with: `approvals/{id}` is its page.
pub const ID_PREFIX: &str = "apr_";

/// CIBA §7.3's answer, plus where the person approves.
#[derive(Debug, Serialize)]
pub struct Started {
    pub auth_req_id: Secret,
    pub expires_in: i64,
    pub interval: i64,
    pub approval_id: String,
    pub approval_uri: String,
}

/// Scopes of an approval's token: `openid` is required (CIBA §7.1); the rest are the client's own, the
/// resource's, or the person scopes; never `offline_access` (an approval yields one access token).
fn scopes(requested: Option<&str>, client: &Client, resource: Option<&Resource>) -> Result<String, OAuthError> {
    let requested: Vec<&str> = requested.unwrap_or("").split(' ').filter(|s| !s.is_empty()).collect();
    if !requested.contains(&"openid") {
        return Err(OAuthError::invalid_request("scope must include openid (CIBA Core §7.1)"));
    }
    for scope in &requested {
        let allowed = *scope != "offline_access"
            && (PERSON_SCOPES.contains(scope)
                || client.scopes.iter().any(|s| s == scope)
                || resource.is_some_and(|r| r.scopes.iter().any(|s| s == scope)));
        if !allowed {
            return Err(OAuthError::new(ErrorCode::InvalidScope, format!("scope {scope:.64} is not allowed")));
        }
    }
    let mut unique: Vec<&str> = Vec::new();
    for scope in requested {
        if !unique.contains(&scope) {
            unique.push(scope);
        }
    }
    Ok(unique.join(" "))
}

/// The person a request is for: `login_hint` (their `sub`) or an `id_token_hint` we issued; exactly
/// one hint (CIBA §7.1). `login_hint_token` is not supported.
async fn person(ctx: &Ctx<'_>, params: &Params) -> Result<User, OAuthError> {
    let hints = ["login_hint", "id_token_hint", "login_hint_token"].into_iter().filter(|h| params.contains(h)).count();
    if hints != 1 {
        return Err(OAuthError::invalid_request("send exactly one of login_hint and id_token_hint"));
    }
    if params.contains("login_hint_token") {
        return Err(OAuthError::invalid_request("login_hint_token is not supported; send login_hint (the subject) or id_token_hint"));
    }
    let sub = match (params.get("login_hint"), params.get("id_token_hint")) {
        (Some(sub), _) => sub.to_owned(),
        (None, Some(token)) => {
            let keyring = ctx.keyring().await?;
            jwt::verify_id_token_hint(&keyring, &ctx.issuer, token)
                .map_err(|_| OAuthError::invalid_request("id_token_hint is not an ID token issued here"))?
                .sub
        }
        (None, None) => return Err(OAuthError::invalid_request("send login_hint or id_token_hint")),
    };
    let unknown = || OAuthError::new(ErrorCode::UnknownUserId, "the hint names nobody who can approve here");
    if sub.len() > 64 {
        return Err(unknown());
    }
    user::find_active(ctx.scope(), &sub).await?.ok_or_else(unknown)
}

/// `acr_values` (CIBA §7.1): approvals are always confirmed with a passkey (`phr`), which meets every
/// level we issue; a value we do not know is refused rather than silently ignored.
fn check_acr_values(value: Option<&str>) -> Result<(), OAuthError> {
    for acr in value.unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
        if Acr::parse(acr).is_none() {
            return Err(OAuthError::invalid_request(format!("acr_values: {acr:.64} is not a level this issuer knows")));
        }
    }
    Ok(())
}

fn binding_message(value: Option<&str>) -> Result<Option<String>, OAuthError> {
    match value {
        None => Ok(None),
        Some(text) if !text.is_empty() && text.chars().count() <= MAX_BINDING_MESSAGE && crate::display_text::is_displayable(text) => {
            Ok(Some(text.to_owned()))
        }
        Some(_) => Err(OAuthError::new(
            ErrorCode::InvalidBindingMessage,
            format!("binding_message is 1-{MAX_BINDING_MESSAGE} displayable characters"),
        )),
    }
}

fn requested_expiry(value: Option<&str>) -> Result<i64, OAuthError> {
    match value {
        None => Ok(DEFAULT_EXPIRY),
        Some(text) => match text.parse::<i64>() {
            Ok(seconds) if (1..=MAX_EXPIRY).contains(&seconds) => Ok(seconds),
            _ => Err(OAuthError::invalid_request(format!("requested_expiry is 1-{MAX_EXPIRY} seconds"))),
        },
    }
}

/// `POST {issuer}/bc-authorize`.
pub async fn start(ctx: &Ctx<'_>, authorization: Option<&str>, params: &Params) -> Result<Started, OAuthError> {
    let presented = client_auth::presented(authorization, params)?;
    let client = client_auth::authenticate(ctx.client(&presented.client_id).await?, &presented)
        .map_err(|e| charge_failure(ctx, Some(&presented.client_id), e))?;
    if !client.is_confidential() || !client.allows_grant(GrantType::Ciba) {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "this client may not use the CIBA grant"));
    }
    ratelimit::check(&ctx.services.limiters.token_per_client, &client.client_id).map_err(OAuthError::rate_limited)?;
    if params.contains("user_code") {
        return Err(OAuthError::invalid_request("user_code is not supported (backchannel_user_code_parameter_supported is false)"));
    }
    if params.contains("client_notification_token") {
        return Err(OAuthError::invalid_request("only the poll delivery mode is supported"));
    }
    let resource = match params.get("resource") {
        Some(uri) => Some(resource::requested(ctx.scope(), uri).await?),
        None => None,
    };
    let scope = scopes(params.get("scope"), &client, resource.as_ref())?;
    check_acr_values(params.get("acr_values"))?;
    let message = binding_message(params.get("binding_message"))?;
    let expiry = requested_expiry(params.get("requested_expiry"))?;
    let details = match params.get("authorization_details") {
        Some(text) => authorization_details::parse(text, &ctx.tenant.authorization_details_types)
            .map_err(|why| OAuthError::new(ErrorCode::InvalidAuthorizationDetails, why))?,
        None => AuthorizationDetails(Vec::new()),
    };
    // A location is the resource the token will be for: nothing else can be approved.
    for location in details.locations() {
        let same = resource.as_ref().is_some_and(|r| resource::canonical(location) == resource::canonical(&r.uri));
        if !same {
            return Err(OAuthError::new(
                ErrorCode::InvalidAuthorizationDetails,
                "each location must be the resource the request names",
            ));
        }
    }
    let user = person(ctx, params).await?;
    let now = now();
    let resource_uri = resource.as_ref().map(|r| r.uri.clone());
    let details_json = details.to_json();
    let open_key = crypto::sha256_hex(
        &serde_json::json!([client.client_id, user.id, scope, resource_uri, message, details_json]).to_string(),
    );
    let row = ApprovalRow {
        id: format!("{ID_PREFIX}{}", crypto::random_id()),
        tenant_id: String::new(),
        client_id: client.client_id.clone(),
        user_id: user.id.clone(),
        open_key: Some(open_key),
        scope,
        resource: resource_uri,
        binding_message: message,
        authorization_details: details_json,
        status: approvals::PENDING.to_owned(),
        created_at: now,
        expires_at: now + expiry,
        decided_at: None,
        auth_time: None,
        amr: None,
        session_id: None,
        redeemed_at: None,
        handles: 0,
    };
    let auth_req_id = crypto::base64url(&crypto::random_bytes::<32>());
    let handle = CibaRequestRow {
        id: crypto::sha256_hex(&auth_req_id),
        tenant_id: String::new(),
        approval_id: String::new(),
        client_id: client.client_id.clone(),
        poll_interval: INTERVAL as i32,
        last_polled_at: None,
        created_at: now,
        expires_at: 0,
    };
    let approval = match approvals::open_or_join(ctx.writer_scope(), row, handle, &CAPS, now).await? {
        Opened::New(approval) => {
            tell_the_person(ctx, &client, &user, &approval).await;
            ctx.audit(
                Event::new(&ctx.tenant.id, format!("client:{}", client.client_id), "approval.requested")
                    .target(format!("user:{}", user.id))
                    .details(serde_json::json!({ "approval": approval.id })),
            )
            .await;
            approval
        }
        Opened::Joined(approval) => approval,
        Opened::TooMany => {
            return Err(OAuthError::new(
                ErrorCode::AccessDenied,
                "too many approvals are waiting for this person or client; wait until they are answered or expire",
            ));
        }
    };
    Ok(Started {
        auth_req_id: Secret::new(auth_req_id),
        expires_in: (approval.expires_at - now).max(1),
        interval: INTERVAL,
        approval_uri: approval_uri(ctx, &approval.id),
        approval_id: approval.id,
    })
}

pub fn approval_uri(ctx: &Ctx<'_>, id: &str) -> String {
    ctx.endpoint(&format!("approvals/{id}"))
}

/// The mail that tells the person someone waits for their yes. It carries the page's address, never a
/// credential: the page asks them to sign in and confirm with a passkey.
async fn tell_the_person(ctx: &Ctx<'_>, client: &Client, user: &User, approval: &ApprovalRow) {
    let details = AuthorizationDetails::from_stored(&approval.authorization_details).unwrap_or(AuthorizationDetails(Vec::new()));
    let mut what = String::new();
    for described in details.describe() {
        what.push_str(&format!("\n- {}", described.summary.as_deref().unwrap_or(&described.kind)));
    }
    let binding = approval.binding_message.as_deref().map(|m| format!("\nIt shows: {m}\n")).unwrap_or_default();
    let body = format!(
        "{} asks for your approval:{what}\n{binding}\nReview it and approve or deny:\n{}\n\nThe request expires in {} minutes. If you did not expect it, deny it.\n",
        client.name,
        approval_uri(ctx, &approval.id),
        ((approval.expires_at - approval.created_at) / 60).max(1),
    );
    let message = Message {
        to: user.email.clone(),
        subject: format!("Approve a request from {}?", client.name),
        body,
        send_if: SendIf::Always,
    };
    if let Err(error) = ctx.send_mail(message, approval.expires_at).await {
        tracing::error!(%error, "an approval mail could not be queued");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_parameters_are_checked_for_what_they_mean() {
        assert!(binding_message(Some("Delete 214 files?")).expect("ok").is_some());
        for bad in ["", "a\u{202e}b", &"x".repeat(101)] {
            assert_eq!(binding_message(Some(bad)).expect_err("refused").code, ErrorCode::InvalidBindingMessage);
        }
        assert_eq!(requested_expiry(None).expect("default"), DEFAULT_EXPIRY);
        assert_eq!(requested_expiry(Some("60")).expect("ok"), 60);
        for bad in ["0", "-1", "601", "soon"] {
            assert!(requested_expiry(Some(bad)).is_err(), "{bad}");
        }
        assert!(check_acr_values(Some("phr")).is_ok() && check_acr_values(None).is_ok());
        assert!(check_acr_values(Some("urn:example:unknown")).is_err());
    }
}
