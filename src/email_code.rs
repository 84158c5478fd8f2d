//! Sign-in with a 6-digit code sent by email.
//!
//! A code is valid for `lifetimes.email_code` seconds, stored only as a keyed hash, allows at most
//! [`MAX_ATTEMPTS`] checks, and a new code for the same address invalidates the old one. The attempt
//! counter and the consumption are single atomic UPDATEs, so limits hold across nodes and restarts and
//! two nodes racing on one code cannot both succeed.

use crate::{
    crypto::{self, CodeHasher, constant_time_eq},
    store::{Scoped, StoreResult, email_codes, now},
    user::Email,
};

pub const MAX_ATTEMPTS: i32 = 5;

pub struct IssuedCode {
    /// Identifies the pending sign-in (kept in a cookie); not a secret on its own.
    pub flow_id: String,
    /// Goes only into the email.
    pub code: latchkey_proto::Secret,
}

fn hash_context(tenant_id: &str, flow_id: &str) -> String {
    format!("email-code/{tenant_id}/{flow_id}")
}

pub async fn issue(
    scope: Scoped<'_>,
    hasher: &CodeHasher,
    email: &Email,
    lifetime: i64,
) -> StoreResult<IssuedCode> {
    let now = now();
    let flow_id = crypto::random_id();
    let code = crypto::random_digits6();
    let code_hash = hasher.hash(&hash_context(scope.tenant_id(), &flow_id), &code);
    let new = email_codes::NewCode { flow_id: &flow_id, email: email.as_str(), code_hash, created_at: now, expires_at: now + lifetime };
    email_codes::replace(scope, new).await?;
    Ok(IssuedCode { flow_id, code: code.into() })
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    /// The code matched and this caller consumed it.
    Accepted { email: Email },
    /// Wrong code; this many tries remain.
    Rejected { remaining: i32 },
    /// Expired, used up, replaced by a newer code, or unknown: a new code is needed.
    NeedNewCode,
}

/// The email address a pending flow is for (to show "we sent a code to …").
pub async fn pending_email(scope: Scoped<'_>, flow_id: &str) -> StoreResult<Option<String>> {
    email_codes::open_email(scope, flow_id, now()).await
}

pub async fn verify(
    scope: Scoped<'_>,
    hasher: &CodeHasher,
    flow_id: &str,
    presented: &str,
) -> StoreResult<Verification> {
    let now = now();
    // Count the attempt first, atomically, and only while attempts remain.
    let Some(stored) = email_codes::count_attempt(scope, flow_id, MAX_ATTEMPTS, now).await? else {
        return Ok(Verification::NeedNewCode);
    };
    let presented: String = presented.chars().filter(|c| !c.is_whitespace()).collect();
    let expected = hasher.hash(&hash_context(scope.tenant_id(), flow_id), &presented);
    if !constant_time_eq(&expected, &stored.code_hash) {
        return Ok(Verification::Rejected { remaining: std::cmp::max(MAX_ATTEMPTS - stored.attempts, 0) });
    }
    let consumed = email_codes::consume(scope, flow_id, now).await?;
    match Email::parse(&stored.email) {
        Some(email) if consumed => Ok(Verification::Accepted { email }),
        _ => Ok(Verification::NeedNewCode),
    }
}
