//! Refresh-token families. A family is one grant (one authorization-code exchange) and every refresh
//! token rotated from it. Each use rotates the token; presenting a rotated token again means it leaked,
//! so the whole family is revoked (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2). Only that family dies.
//! The rows and their atomic updates are `store::refresh_families`'.

use latchkey_proto::Secret;

use crate::{
    crypto::{self, sha256_hex},
    organization::Membership,
    store::{
        Scoped, StoreResult, now,
        refresh_families::{self, Holding, NewRefreshToken},
        users::UserRow,
    },
};

pub use crate::store::refresh_families::{Family, NewFamily};

pub const REFRESH_TOKEN_PREFIX: &str = "lk_rt_";

impl Family {
    /// Not revoked and within its absolute lifetime. The idle lifetime is checked on the presented
    /// token (`PresentedRefreshToken::is_live`).
    pub fn is_live(&self, now: i64) -> bool {
        !self.revoked && self.absolute_expires_at > now
    }
}

/// A new family: its id, and its entry in the tenant's token status list (which its access tokens
/// name, so revoking the family reaches resource servers that validate offline).
pub struct Created {
    pub id: String,
    pub status_index: u64,
}

/// Opens a family that lives at most `absolute_lifetime` seconds (`lifetimes.refresh_absolute`).
pub async fn create(scope: Scoped<'_>, absolute_lifetime: i64, new: NewFamily<'_>) -> StoreResult<Created> {
    let id = crypto::random_id();
    let now = now();
    let status_index = refresh_families::insert(scope, &id, new, now, now + absolute_lifetime).await?;
    Ok(Created { id, status_index })
}

pub async fn find(scope: Scoped<'_>, family_id: &str) -> StoreResult<Option<Family>> {
    refresh_families::find(scope, family_id).await
}

/// A new refresh token in the family: the token for the client, and the row that keeps only its hash
/// (stored by `token_writes`).
pub fn new_refresh_token(family_id: &str) -> (Secret, NewRefreshToken) {
    let token = crypto::random_token(REFRESH_TOKEN_PREFIX);
    let row = NewRefreshToken {
        token_hash: sha256_hex(&token),
        family_id: family_id.to_owned(),
        prefix: crypto::display_prefix(&token),
        created_at: now(),
    };
    (Secret::new(token), row)
}

pub struct PresentedRefreshToken {
    pub hash: String,
    pub rotated: bool,
    /// When this token was minted, i.e. the family's last use: the idle lifetime runs from here.
    pub issued_at: i64,
    pub family: Family,
    /// The family's user and their organization membership as stored now (read in the same statement:
    /// a rotation is one read).
    pub user: UserRow,
    pub membership: Option<Membership>,
}

impl PresentedRefreshToken {
    /// Usable: the family is live (not revoked, within its absolute lifetime) and this token was
    /// minted less than the idle lifetime ago.
    pub fn is_live(&self, idle_lifetime: i64, now: i64) -> bool {
        self.family.is_live(now) && self.issued_at + idle_lifetime > now
    }
}

pub async fn find_refresh_token(
    scope: Scoped<'_>,
    token: &str,
) -> StoreResult<Option<PresentedRefreshToken>> {
    if !token.starts_with(REFRESH_TOKEN_PREFIX) {
        return Ok(None);
    }
    let hash = sha256_hex(token);
    let Some(stored) = refresh_families::find_token(scope, &hash).await? else {
        return Ok(None);
    };
    Ok(Some(PresentedRefreshToken {
        hash,
        rotated: stored.rotated,
        issued_at: stored.created_at,
        family: stored.family,
        user: stored.user,
        membership: stored.membership,
    }))
}

/// Records that the family was used, for display ("last used"). Written at most once a minute per
/// family: a client refreshing in a tight loop should not cost a second write per rotation.
pub async fn touch(scope: Scoped<'_>, family: &Family) -> StoreResult<()> {
    let now = now();
    if now - family.last_used_at < TOUCH_INTERVAL_SECONDS {
        return Ok(());
    }
    refresh_families::set_last_used(scope, &family.id, now).await
}

const TOUCH_INTERVAL_SECONDS: i64 = 60;

/// Revokes a family: its refresh tokens stop working, and so do its access tokens (each names the family
/// in `grant_id`; `revocation_check` reads the family's row). Returns whether this call revoked it.
pub async fn revoke(scope: Scoped<'_>, family_id: &str, reason: &str) -> StoreResult<bool> {
    refresh_families::revoke(scope, family_id, reason, now()).await
}

/// Revokes every live family bound to a browser session (sign-out).
pub async fn revoke_for_session(scope: Scoped<'_>, session_id: &str, reason: &str) -> StoreResult<usize> {
    refresh_families::revoke_held(scope, Holding::Session(session_id), reason, now()).await
}

/// Revokes every live family of the user, or only those held by one client: "sign out everywhere",
/// "remove this app's access", deprovisioning.
pub async fn revoke_for_user(
    scope: Scoped<'_>,
    user_id: &str,
    client_id: Option<&str>,
    reason: &str,
) -> StoreResult<usize> {
    refresh_families::revoke_held(scope, Holding::User { user_id, client_id }, reason, now()).await
}

/// Revokes every live family a client holds, for every user (the client was deleted).
pub async fn revoke_for_client(scope: Scoped<'_>, client_id: &str, reason: &str) -> StoreResult<usize> {
    refresh_families::revoke_held(scope, Holding::Client(client_id), reason, now()).await
}

/// How many live grants each client holds for the user (the account page's "apps with access").
pub async fn live_count_by_client(
    scope: Scoped<'_>,
    user_id: &str,
) -> StoreResult<std::collections::BTreeMap<String, usize>> {
    refresh_families::live_count_by_client(scope, user_id, now()).await
}
