//! The device authorization grant (RFC 8628): a CLI, a headless agent or a remote terminal asks for
//! codes; the person enters the user code at `{issuer}/device` on any device, signs in as anywhere
//! else (email code, then a mandatory passkey; or a passkey), and explicitly allows or denies what
//! the page names (the client, where it registered from, the scopes, the resource); the device polls
//! the token endpoint (`grants::device_code`).
//!
//! The device code is 32 random bytes, stored as SHA-256; the user code 8 letters of an alphabet
//! without vowels or look-alikes (RFC 8628 §6.1: 20^8 ≈ 2.6·10^10), stored as a keyed hash. Wrong
//! user codes are counted in the database per source address and per session (`lockout`), five
//! per lock period: a brute-force run stops long before it could matter.

use latchkey_proto::Secret;
use serde::Serialize;

use super::{
    client_auth,
    error::{ErrorCode, OAuthError},
    params::Params,
    resource,
    scope::{self, Scopes},
    token::charge_failure,
};
use crate::{
    audit::Event,
    client::{Client, GrantType},
    context::Ctx,
    crypto,
    lockout::{self, Factor},
    ratelimit,
    session::Session,
    store::{
        StoreError,
        device_codes::{self, Answer, DeviceRow},
        now, to_amr_json,
    },
};

/// RFC 8628 §3.2: the minimum seconds between polls (the codes live `lifetimes.device_code`).
pub const INTERVAL: i64 = 5;
/// Pages name a request by this id (not a credential).
pub const ID_PREFIX: &str = "dev_";
/// RFC 8628 §6.1: consonants only (no vowels, so no words; no look-alikes such as 0/O or 1/I).
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;
/// How long a source address or session that typed five wrong codes waits.
const GUESS_LOCK_SECONDS: i64 = 15 * 60;

/// RFC 8628 §3.2.
#[derive(Debug, Serialize)]
pub struct Started {
    pub device_code: Secret,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

fn new_user_code() -> String {
    // Bytes of 240 and above are dropped, so each of the 20 letters is equally likely (240 = 12 × 20).
    let mut code = String::with_capacity(USER_CODE_LEN);
    while code.len() < USER_CODE_LEN {
        for byte in crypto::random_bytes::<16>() {
            if byte < 240 && code.len() < USER_CODE_LEN {
                code.push(ALPHABET[usize::from(byte) % ALPHABET.len()] as char);
            }
        }
    }
    code
}

/// `XXXX-XXXX`, as the person reads and types it.
pub fn display(code: &str) -> String {
    format!("{}-{}", &code[..4], &code[4..])
}

/// What the person typed, as the code it may be: case, spaces and dashes ignored; anything else is
/// not a code (and costs a guess like a wrong one).
pub fn normalize(input: &str) -> Option<String> {
    let code: String = input.chars().filter(|c| !matches!(c, '-' | ' ')).map(|c| c.to_ascii_uppercase()).collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

fn user_code_hash(ctx: &Ctx<'_>, code: &str) -> String {
    let digest = ctx.services.hasher.hash(&format!("device-user-code/{}", ctx.tenant.id), code);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `POST {issuer}/device_authorization` (RFC 8628 §3.1–3.2).
pub async fn start(ctx: &Ctx<'_>, authorization: Option<&str>, params: &Params) -> Result<Started, OAuthError> {
    let presented = client_auth::presented(authorization, params)?;
    let client = client_auth::authenticate(ctx.client(&presented.client_id).await?, &presented)
        .map_err(|e| charge_failure(ctx, Some(&presented.client_id), e))?;
    if !client.allows_grant(GrantType::DeviceCode) {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "this client may not use the device authorization grant"));
    }
    ratelimit::check(&ctx.services.limiters.token_per_client, &client.client_id).map_err(OAuthError::rate_limited)?;
    let resource = match params.get("resource") {
        Some(uri) => Some(resource::requested(ctx.scope(), uri).await?),
        None => None,
    };
    let scopes = scope::granted(params.get("scope"), &client.scopes, resource.as_ref())
        .map_err(|why| OAuthError::new(ErrorCode::InvalidScope, why))?;
    let device_code = crypto::base64url(&crypto::random_bytes::<32>());
    let now = now();
    let lifetime = ctx.lifetimes().device_code;
    for _ in 0..4 {
        let user_code = new_user_code();
        let row = DeviceRow {
            id: crypto::sha256_hex(&device_code),
            tenant_id: String::new(),
            public_id: format!("{ID_PREFIX}{}", crypto::random_id()),
            user_code_hash: user_code_hash(ctx, &user_code),
            client_id: client.client_id.clone(),
            scope: scopes.to_string(),
            resource: resource.as_ref().map(|r| r.uri.clone()),
            status: device_codes::PENDING.to_owned(),
            user_id: None,
            session_id: None,
            auth_time: None,
            amr: None,
            acr: None,
            poll_interval: INTERVAL as i32,
            last_polled_at: None,
            created_at: now,
            expires_at: now + lifetime,
            decided_at: None,
            redeemed_at: None,
        };
        let public_id = row.public_id.clone();
        if device_codes::insert(ctx.writer_scope(), row).await? {
            ctx.audit(
                Event::new(&ctx.tenant.id, format!("client:{}", client.client_id), "device.requested")
                    .details(serde_json::json!({ "device": public_id, "scope": scopes.to_string() })),
            )
            .await;
            let verification_uri = ctx.endpoint("device");
            return Ok(Started {
                device_code: Secret::new(device_code),
                verification_uri_complete: format!("{verification_uri}?user_code={}", display(&user_code)),
                user_code: display(&user_code),
                verification_uri,
                expires_in: lifetime,
                interval: INTERVAL,
            });
        }
    }
    Err(OAuthError::new(ErrorCode::TemporarilyUnavailable, "no free user code; try again"))
}

/// What typing a user code led to.
pub enum Entered {
    /// A waiting request: its confirmation page.
    Found { public_id: String },
    /// Not a code of a waiting request (wrong, used or expired: the page does not say which).
    Wrong { remaining: i32 },
    /// Too many wrong codes from this address or session: wait.
    Locked { until: i64 },
}

/// Checks a typed user code under the guess limits: per source address, and per session when there
/// is one, each counted in the database before the code is looked up.
pub async fn enter(ctx: &Ctx<'_>, typed: &str, ip: &str, session: Option<&Session>) -> Result<Entered, StoreError> {
    let now = now();
    let scope = ctx.writer_scope();
    let found = std::cell::RefCell::new(None);
    let check = async {
        let Some(code) = normalize(typed) else { return Ok(false) };
        let row = device_codes::pending_by_user_code(scope, &user_code_hash(ctx, &code), now).await?;
        let hit = row.is_some();
        *found.borrow_mut() = row.map(|r| r.public_id);
        Ok(hit)
    };
    let by_session = async {
        match session {
            Some(session) => {
                lockout::guarded(scope, &format!("session:{}", session.id), Factor::UserCode, GUESS_LOCK_SECONDS, now, check).await
            }
            None => Ok::<_, StoreError>(if check.await? {
                lockout::Outcome::Accepted
            } else {
                lockout::Outcome::Rejected { remaining: lockout::MAX_ATTEMPTS }
            }),
        }
    };
    let session_outcome = std::cell::Cell::new(None);
    let by_ip = lockout::guarded(scope, &format!("ip:{ip}"), Factor::UserCode, GUESS_LOCK_SECONDS, now, async {
        let outcome = by_session.await?;
        session_outcome.set(Some(outcome));
        Ok(outcome == lockout::Outcome::Accepted)
    })
    .await?;
    let entered = match (by_ip, session_outcome.get()) {
        (lockout::Outcome::Accepted, _) => match found.into_inner() {
            Some(public_id) => Entered::Found { public_id },
            None => Entered::Wrong { remaining: 0 },
        },
        (lockout::Outcome::Locked { until } | lockout::Outcome::JustLocked { until }, _)
        | (_, Some(lockout::Outcome::Locked { until } | lockout::Outcome::JustLocked { until })) => Entered::Locked { until },
        (lockout::Outcome::Rejected { remaining: by_address }, Some(lockout::Outcome::Rejected { remaining: by_session })) => {
            Entered::Wrong { remaining: by_address.min(by_session) }
        }
        (lockout::Outcome::Rejected { remaining }, _) => Entered::Wrong { remaining },
    };
    if !matches!(entered, Entered::Found { .. }) {
        ctx.audit(Event::new(&ctx.tenant.id, format!("ip:{ip}"), "device.wrong_user_code").failed()).await;
    }
    Ok(entered)
}

/// A request as its confirmation page shows it.
pub struct Shown {
    pub public_id: String,
    pub client: Option<std::sync::Arc<Client>>,
    pub scopes: Vec<String>,
    pub resource: Option<String>,
    pub status: &'static str,
}

pub async fn show(ctx: &Ctx<'_>, public_id: &str) -> Result<Option<Shown>, StoreError> {
    let Some(row) = device_codes::by_public_id(ctx.scope(), public_id).await? else {
        return Ok(None);
    };
    let status = match row.status.as_str() {
        _ if row.redeemed_at.is_some() => "used",
        device_codes::APPROVED => "approved",
        device_codes::DENIED => "denied",
        _ if row.expires_at <= now() => "expired",
        _ => "pending",
    };
    Ok(Some(Shown {
        public_id: row.public_id,
        client: ctx.client(&row.client_id).await?,
        scopes: Scopes::parse(&row.scope).into_vec(),
        resource: row.resource,
        status,
    }))
}

/// What became of the person's answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Answered {
    Recorded,
    /// Already answered, used or expired.
    TooLate,
    /// A passkey assertion is needed first (none in the session, or the resource needs a fresh one).
    StepUpRequired,
}

/// The person's explicit answer. Only a multi-factor session (a passkey in it) may allow, and for a
/// step-up resource only with a fresh passkey assertion; the tokens then carry that session's
/// authentication.
pub async fn answer(ctx: &Ctx<'_>, session: &Session, public_id: &str, allow: bool) -> Result<Answered, StoreError> {
    if allow {
        let row = device_codes::by_public_id(ctx.scope(), public_id).await?;
        let uri = row.and_then(|r| r.resource);
        let resource = match uri {
            Some(uri) => resource::find(ctx.scope(), &uri).await?,
            None => None,
        };
        let fresh = session.acr == latchkey_proto::Acr::Phr && session.is_fresh(ctx.lifetimes(), now());
        // Without a passkey in the session, or a fresh one for a step-up resource: the passkey first.
        if !session.is_multi_factor() || (resource.is_some_and(|r| r.step_up) && !fresh) {
            return Ok(Answered::StepUpRequired);
        }
    }
    let amr = to_amr_json(&session.amr);
    let answer = match allow {
        true => Answer::Approve { user_id: &session.user_id, session_id: &session.id, auth_time: session.auth_time, amr, acr: session.acr.as_str() },
        false => Answer::Deny,
    };
    if !device_codes::answer(ctx.writer_scope(), public_id, answer, now()).await? {
        return Ok(Answered::TooLate);
    }
    let action = if allow { "device.approved" } else { "device.denied" };
    ctx.audit(
        Event::new(&ctx.tenant.id, format!("user:{}", session.user_id), action).details(serde_json::json!({ "device": public_id })),
    )
    .await;
    Ok(Answered::Recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_unambiguous_and_typed_forgivingly() {
        for _ in 0..200 {
            let code = new_user_code();
            assert_eq!(code.len(), 8);
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
            assert_eq!(normalize(&display(&code)).as_deref(), Some(code.as_str()));
        }
        assert_eq!(normalize("bcdf-ghjk").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize(" BCDF GHJK ").as_deref(), Some("BCDFGHJK"));
        for bad in ["BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ0", "", "BCDF_GHJK"] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
        assert!(!ALPHABET.iter().any(|b| b"AEIOU01".contains(b)));
    }
}
