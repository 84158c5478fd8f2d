//! Limits on guessing a second factor (authenticator-app codes, recovery codes), counted per user in
//! the database so they hold across nodes, restarts and any number of source addresses.
//!
//! Each attempt is counted *before* the code is checked, by a conditional UPDATE that succeeds only
//! while fewer than [`MAX_ATTEMPTS`] have been counted: however many requests race on however many
//! nodes, at most that many codes are ever checked per lock period. The attempt that reaches the
//! limit without success locks the factor for `lifetimes.factor_lockout` (one conditional UPDATE:
//! exactly one request sees that it locked it, and tells the owner). A success starts the count anew.

use crate::store::{Scoped, StoreResult, factor_lockouts};

/// Wrong codes allowed before the factor locks.
pub const MAX_ATTEMPTS: i32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    Totp,
    RecoveryCode,
    /// Device-flow user codes (RFC 8628 §5.1), counted per source address and per session rather
    /// than per user (the subject is `ip:…` or `session:…`).
    UserCode,
}

impl Factor {
    fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::UserCode => "user_code",
        }
    }

    /// How the factor is named to its owner.
    pub fn label(self) -> &'static str {
        match self {
            Self::Totp => "authenticator app",
            Self::RecoveryCode => "recovery codes",
            Self::UserCode => "device codes",
        }
    }
}

/// What became of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// Wrong; this many attempts remain before the factor locks.
    Rejected { remaining: i32 },
    /// Wrong, and this attempt locked the factor (until then): tell the owner, audit it.
    JustLocked { until: i64 },
    /// Locked already: the code was not even checked.
    Locked { until: i64 },
}

/// Runs `check` (which verifies, and on success spends, the presented code) under the limit.
pub async fn guarded<F>(scope: Scoped<'_>, user_id: &str, factor: Factor, lock_seconds: i64, now: i64, check: F) -> StoreResult<Outcome>
where
    F: Future<Output = StoreResult<bool>>,
{
    let factor = factor.as_str();
    factor_lockouts::ensure(scope, user_id, factor).await?;
    factor_lockouts::clear_expired_lock(scope, user_id, factor, now).await?;
    if !factor_lockouts::count_attempt(scope, user_id, factor, MAX_ATTEMPTS).await? {
        // Locked, or the last attempts are in flight elsewhere and are about to lock it.
        let until = factor_lockouts::read(scope, user_id, factor).await?.and_then(|(_, until)| until).unwrap_or(now + lock_seconds);
        return Ok(Outcome::Locked { until });
    }
    if check.await? {
        factor_lockouts::reset_count(scope, user_id, factor).await?;
        return Ok(Outcome::Accepted);
    }
    let until = now + lock_seconds;
    if factor_lockouts::lock(scope, user_id, factor, MAX_ATTEMPTS, until).await? {
        return Ok(Outcome::JustLocked { until });
    }
    let attempts = factor_lockouts::read(scope, user_id, factor).await?.map_or(MAX_ATTEMPTS, |(attempts, _)| attempts);
    Ok(Outcome::Rejected { remaining: std::cmp::max(MAX_ATTEMPTS - attempts, 0) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    /// Each task's result, in order.
    async fn join_all<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
        futures_util::future::join_all(handles).await.into_iter().map(|r| r.expect("task")).collect()
    }

    async fn scope_db() -> crate::store::DatabaseConnection {
        let db = crate::store::connect("sqlite::memory:", 1).await.expect("db");
        crate::store::migrate(&db).await.expect("migrate");
        db
    }

    #[tokio::test]
    async fn five_wrong_codes_lock_the_factor_and_a_right_one_resets_the_count() {
        let db = scope_db().await;
        let scope = Scoped::new(&db, "t");
        let attempt = |right: bool, now: i64| guarded(scope, "u", Factor::Totp, 900, now, async move { Ok(right) });
        let now = 1_000;
        assert_eq!(attempt(false, now).await.expect("1"), Outcome::Rejected { remaining: 4 });
        assert_eq!(attempt(true, now).await.expect("right"), Outcome::Accepted, "a success starts the count anew");
        for remaining in (1..=4).rev() {
            assert_eq!(attempt(false, now).await.expect("wrong"), Outcome::Rejected { remaining });
        }
        assert_eq!(attempt(false, now).await.expect("fifth"), Outcome::JustLocked { until: now + 900 });
        // Locked: even the right code is not checked, and nobody else locks it again.
        let checked = Arc::new(AtomicUsize::new(0));
        let counter = checked.clone();
        let right_but_locked = guarded(scope, "u", Factor::Totp, 900, now + 10, async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(true)
        });
        assert_eq!(right_but_locked.await.expect("locked"), Outcome::Locked { until: now + 900 });
        assert_eq!(checked.load(Ordering::SeqCst), 0);
        // Other factors and other users are counted apart.
        assert_eq!(guarded(scope, "u", Factor::RecoveryCode, 900, now, async { Ok(true) }).await.expect("rc"), Outcome::Accepted);
        assert_eq!(guarded(scope, "v", Factor::Totp, 900, now, async { Ok(true) }).await.expect("v"), Outcome::Accepted);
        // After the lock runs out, a new count begins.
        assert_eq!(attempt(true, now + 900).await.expect("after"), Outcome::Accepted);
    }

    #[tokio::test]
    async fn racing_attempts_check_at_most_five_codes() {
        let db = scope_db().await;
        let checked = Arc::new(AtomicUsize::new(0));
        let attempts = (0..20).map(|_| {
            let (db, checked) = (db.clone(), checked.clone());
            tokio::spawn(async move {
                let scope = Scoped::new(&db, "t");
                guarded(scope, "u", Factor::RecoveryCode, 900, 1_000, async move {
                    checked.fetch_add(1, Ordering::SeqCst);
                    Ok(false)
                })
                .await
                .expect("attempt")
            })
        });
        let outcomes: Vec<Outcome> = join_all(attempts).await;
        assert_eq!(checked.load(Ordering::SeqCst), MAX_ATTEMPTS as usize);
        assert_eq!(outcomes.iter().filter(|o| matches!(o, Outcome::JustLocked { .. })).count(), 1, "{outcomes:?}");
    }
}
