//! Expired rows are deleted on a schedule, so nothing that anyone (signed in or not) makes a node store
//! outlives its use: pending authorization requests, ceremonies, email codes, sessions, authorization
//! codes, tokens and refresh families that can no longer be used, unused registrations, expired
//! initial access tokens, mail given up on, stale lockout counters, and audit rows past retention.
//!
//! Safe with several nodes: every node ticks, but a run needs the job's lease, a row taken by a
//! conditional UPDATE (`held_until` in the past), so one node sweeps per interval; and each deletion
//! is idempotent anyway (a row deleted twice is deleted once). The deletes are `store::sweep`'s.
//!
//! Each kind keeps its rows exactly as long as something may still need them (the cutoffs below).

use crate::{
    config::Lifetimes,
    jwt::LEEWAY_SECONDS,
    store::{
        DatabaseConnection, Scoped, StoreResult,
        sweep::{self, Cutoffs},
    },
};

pub use crate::store::sweep::{BATCH, Swept};

/// A used or expired authorization code is kept this long: a replay after expiry still finds it
/// and revokes what its first use issued (RFC 6749 §4.1.2).
pub(crate) const CODE_MEMORY: i64 = 24 * 3600;
/// Mail that could not be delivered stays visible to the operator this long.
pub(crate) const FAILED_MAIL_MEMORY: i64 = 7 * 24 * 3600;

/// When each kind of row stops being of use, at `now`.
pub fn cutoffs(lifetimes: &Lifetimes, now: i64) -> Cutoffs {
    // An access token issued just before its grant ended stays valid this long after.
    let token_tail = lifetimes.access_token + LEEWAY_SECONDS as i64 + 120;
    Cutoffs {
        now,
        // Past either lifetime: `session::find_active` would not accept it any more.
        session_seen_before: now - lifetimes.session_idle,
        code_expired_before: now - CODE_MEMORY,
        // A refresh token minted more than the idle lifetime ago is unusable (`is_live`), spent or
        // not; a spent one younger than that is kept, so its reuse is still recognised and revokes
        // the family.
        refresh_token_created_before: now - lifetimes.refresh_idle,
        // A family is read for every access token that names it (`grant_id`), and one it cannot
        // find counts as revoked: so it stays until its last access token has expired.
        family_ended_before: now - token_tail,
        family_used_before: now - lifetimes.refresh_idle - token_tail,
        access_token_expired_before: now - LEEWAY_SECONDS as i64,
        unused_registration_created_before: now - lifetimes.unused_registration,
        mail_failed_before: now - FAILED_MAIL_MEMORY,
    }
}

/// Takes the lease on `job` for `seconds` if nobody holds it now: true for exactly one of several
/// nodes asking at once.
pub async fn take_lease(db: &DatabaseConnection, job: &str, holder: &str, seconds: i64, now: i64) -> StoreResult<bool> {
    sweep::take_lease(db, job, holder, seconds, now).await
}

/// Deletes one tenant's expired rows (audit rows past retention are `audit::forget_before`'s).
pub async fn tenant(scope: Scoped<'_>, lifetimes: &Lifetimes, now: i64) -> StoreResult<Swept> {
    sweep::tenant(scope, &cutoffs(lifetimes, now)).await
}
