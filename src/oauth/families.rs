//! Refresh-token families. A family is one grant (one authorization-code exchange) and every refresh
//! token rotated from it. Each use rotates the token; presenting a rotated token again means it leaked,
//! so the whole family is revoked (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2). Only that family dies.

use entity::{
    organization, organization_member, refresh_family, refresh_token,
    user::{self, Model as User},
};
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter};
use latchkey_proto::{Acr, Secret};

use crate::{
    crypto::{self, sha256_hex},
    organization::Membership,
    store::{Scoped, StoreResult, from_json_list, now, to_json_list},
};

pub const REFRESH_TOKEN_PREFIX: &str = "lk_rt_";

#[derive(Debug, Clone)]
pub struct Family {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: Option<String>,
    pub scopes: Vec<String>,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: Acr,
    pub last_used_at: i64,
    pub absolute_expires_at: i64,
    pub revoked: bool,
    /// RFC 8707: the resource this grant's access tokens are for.
    pub resource: Option<String>,
}

impl Family {
    /// Not revoked and within its absolute lifetime. The idle lifetime is checked on the presented
    /// token (`PresentedRefreshToken::is_live`).
    pub fn is_live(&self, now: i64) -> bool {
        !self.revoked && self.absolute_expires_at > now
    }
}

fn from_row(row: refresh_family::Model) -> StoreResult<Family> {
    Ok(Family {
        id: row.id,
        client_id: row.client_id,
        user_id: row.user_id,
        session_id: row.session_id,
        scopes: row
            .scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        auth_time: row.auth_time,
        amr: from_json_list(&row.amr)?,
        acr: crate::store::stored_acr(&row.acr)?,
        last_used_at: row.last_used_at,
        absolute_expires_at: row.absolute_expires_at,
        revoked: row.revoked_at.is_some(),
        resource: row.resource,
    })
}

pub struct NewFamily<'a> {
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub session_id: Option<&'a str>,
    pub scopes: &'a [String],
    pub auth_time: i64,
    pub amr: &'a [String],
    pub acr: Acr,
    pub resource: Option<&'a str>,
}

/// Opens a family that lives at most `absolute_lifetime` seconds (`lifetimes.refresh_absolute`).
pub async fn create(scope: Scoped<'_>, absolute_lifetime: i64, new: NewFamily<'_>) -> StoreResult<String> {
    let id = crypto::random_id();
    let now = now();
    let row = refresh_family::ActiveModel {
        id: Set(id.clone()),
        client_id: Set(new.client_id.to_owned()),
        user_id: Set(new.user_id.to_owned()),
        session_id: Set(new.session_id.map(str::to_owned)),
        scope: Set(new.scopes.join(" ")),
        auth_time: Set(new.auth_time),
        amr: Set(to_json_list(new.amr)),
        acr: Set(new.acr.as_str().to_owned()),
        created_at: Set(now),
        last_used_at: Set(now),
        absolute_expires_at: Set(now + absolute_lifetime),
        revoked_at: Set(None),
        revoked_reason: Set(None),
        resource: Set(new.resource.map(str::to_owned)),
        ..Default::default()
    };
    scope.insert::<refresh_family::Entity, _>(row).await?;
    Ok(id)
}

pub async fn find(scope: Scoped<'_>, family_id: &str) -> StoreResult<Option<Family>> {
    scope
        .select::<refresh_family::Entity>()
        .filter(refresh_family::Column::Id.eq(family_id))
        .one(scope.db)
        .await?
        .map(from_row)
        .transpose()
}

/// A new refresh token in the family: the token for the client, and the row that keeps only its hash
/// (stored by `token_writes`).
pub fn new_refresh_token(family_id: &str) -> (Secret, refresh_token::ActiveModel) {
    let token = crypto::random_token(REFRESH_TOKEN_PREFIX);
    let row = refresh_token::ActiveModel {
        token_hash: Set(sha256_hex(&token)),
        family_id: Set(family_id.to_owned()),
        prefix: Set(crypto::display_prefix(&token)),
        created_at: Set(now()),
        rotated_at: Set(None),
        ..Default::default()
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
    pub user: User,
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
    let Some((row, Some(family), Some(user), member, organization)) = scope
        .select_chain::<refresh_token::Entity, refresh_family::Entity, user::Entity>()
        .find_also(user::Entity, organization_member::Entity)
        .find_also(organization_member::Entity, organization::Entity)
        .filter(scope.optional::<organization_member::Entity>())
        .filter(scope.optional::<organization::Entity>())
        .filter(refresh_token::Column::TokenHash.eq(&hash))
        .one(scope.db)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(PresentedRefreshToken {
        hash,
        rotated: row.rotated_at.is_some(),
        issued_at: row.created_at,
        family: from_row(family)?,
        user,
        membership: crate::organization::membership(member, organization)?,
    }))
}

/// Records that the family was used, for display ("last used"). Written at most once a minute per
/// family: a client refreshing in a tight loop should not cost a second write per rotation.
pub async fn touch(scope: Scoped<'_>, family: &Family) -> StoreResult<()> {
    let now = now();
    if now - family.last_used_at < TOUCH_INTERVAL_SECONDS {
        return Ok(());
    }
    scope
        .update::<refresh_family::Entity>()
        .col_expr(refresh_family::Column::LastUsedAt, now.into())
        .filter(refresh_family::Column::Id.eq(&family.id))
        .exec(scope.db)
        .await?;
    Ok(())
}

const TOUCH_INTERVAL_SECONDS: i64 = 60;

/// Revokes a family: its refresh tokens stop working, and so do its access tokens (each names the family
/// in `grant_id`; `revocation_check` reads the family's row). Returns whether this call revoked it.
pub async fn revoke(scope: Scoped<'_>, family_id: &str, reason: &str) -> StoreResult<bool> {
    let result = scope
        .update::<refresh_family::Entity>()
        .col_expr(refresh_family::Column::RevokedAt, now().into())
        .col_expr(refresh_family::Column::RevokedReason, reason.into())
        .filter(refresh_family::Column::Id.eq(family_id))
        .filter(refresh_family::Column::RevokedAt.is_null())
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Revokes every family the query selects that is still live; returns how many this call revoked.
async fn revoke_selected(
    scope: Scoped<'_>,
    query: sea_orm::Select<refresh_family::Entity>,
    reason: &str,
) -> StoreResult<usize> {
    let families = query
        .filter(refresh_family::Column::RevokedAt.is_null())
        .all(scope.db)
        .await?;
    let mut revoked = 0;
    for family in families {
        if revoke(scope, &family.id, reason).await? {
            revoked += 1;
        }
    }
    Ok(revoked)
}

/// Revokes every live family bound to a browser session (sign-out).
pub async fn revoke_for_session(
    scope: Scoped<'_>,
    session_id: &str,
    reason: &str,
) -> StoreResult<usize> {
    let query = scope
        .select::<refresh_family::Entity>()
        .filter(refresh_family::Column::SessionId.eq(session_id));
    revoke_selected(scope, query, reason).await
}

/// Revokes every live family of the user, or only those held by one client: "sign out everywhere",
/// "remove this app's access", deprovisioning.
pub async fn revoke_for_user(
    scope: Scoped<'_>,
    user_id: &str,
    client_id: Option<&str>,
    reason: &str,
) -> StoreResult<usize> {
    let mut query = scope
        .select::<refresh_family::Entity>()
        .filter(refresh_family::Column::UserId.eq(user_id));
    if let Some(client_id) = client_id {
        query = query.filter(refresh_family::Column::ClientId.eq(client_id));
    }
    revoke_selected(scope, query, reason).await
}

/// Revokes every live family a client holds, for every user (the client was deleted).
pub async fn revoke_for_client(scope: Scoped<'_>, client_id: &str, reason: &str) -> StoreResult<usize> {
    let query = scope
        .select::<refresh_family::Entity>()
        .filter(refresh_family::Column::ClientId.eq(client_id));
    revoke_selected(scope, query, reason).await
}

/// How many live grants each client holds for the user (the account page's "apps with access").
pub async fn live_count_by_client(
    scope: Scoped<'_>,
    user_id: &str,
) -> StoreResult<std::collections::BTreeMap<String, usize>> {
    let now = now();
    let mut counts = std::collections::BTreeMap::new();
    let rows = scope
        .select::<refresh_family::Entity>()
        .filter(refresh_family::Column::UserId.eq(user_id))
        .filter(refresh_family::Column::RevokedAt.is_null())
        .filter(refresh_family::Column::AbsoluteExpiresAt.gt(now))
        .all(scope.db)
        .await?;
    for row in rows {
        *counts.entry(row.client_id).or_insert(0) += 1;
    }
    Ok(counts)
}
