//! Refresh-token families and their refresh tokens. A token row keeps only the SHA-256 of the token;
//! spending one is a conditional UPDATE (`rotated_at IS NULL`), so of two requests presenting the same
//! token, on whichever nodes, exactly one wins (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2). Revoking a family
//! is a conditional UPDATE too: it is revoked once, by one caller.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use entity::{organization, organization_member, refresh_family, refresh_token, user};
use latchkey_proto::{Acr, Amr};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, DatabaseTransaction, QueryFilter, TransactionTrait};

use super::{
    Scoped, StoreResult, organizations::Membership, stored_acr, stored_amr, to_amr_json, users::UserRow,
};

#[derive(Debug, Clone)]
pub struct Family {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: Option<String>,
    pub scopes: Vec<String>,
    pub auth_time: i64,
    pub amr: Vec<Amr>,
    pub acr: Acr,
    pub last_used_at: i64,
    pub absolute_expires_at: i64,
    pub revoked: bool,
    /// RFC 8707: the resource this grant's access tokens are for.
    pub resource: Option<String>,
    /// Its entry in the tenant's token status list (`store::status_lists`).
    pub status_index: Option<u64>,
}

fn from_row(row: refresh_family::Model) -> StoreResult<Family> {
    Ok(Family {
        id: row.id,
        client_id: row.client_id,
        user_id: row.user_id,
        session_id: row.session_id,
        scopes: row.scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        auth_time: row.auth_time,
        amr: stored_amr(&row.amr)?,
        acr: stored_acr(&row.acr)?,
        last_used_at: row.last_used_at,
        absolute_expires_at: row.absolute_expires_at,
        revoked: row.revoked_at.is_some(),
        resource: row.resource,
        status_index: row.status_index.and_then(|i| u64::try_from(i).ok()),
    })
}

pub struct NewFamily<'a> {
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub session_id: Option<&'a str>,
    pub scopes: &'a [String],
    pub auth_time: i64,
    pub amr: &'a [Amr],
    pub acr: Acr,
    pub resource: Option<&'a str>,
}

/// Stores a new family with an entry of its own in the tenant's token status list; returns the entry.
pub async fn insert(scope: Scoped<'_>, id: &str, new: NewFamily<'_>, now: i64, absolute_expires_at: i64) -> StoreResult<u64> {
    let status_index = super::status_lists::allocate(scope).await?;
    let row = refresh_family::ActiveModel {
        id: Set(id.to_owned()),
        client_id: Set(new.client_id.to_owned()),
        user_id: Set(new.user_id.to_owned()),
        session_id: Set(new.session_id.map(str::to_owned)),
        scope: Set(new.scopes.join(" ")),
        auth_time: Set(new.auth_time),
        amr: Set(to_amr_json(new.amr)),
        acr: Set(new.acr.as_str().to_owned()),
        created_at: Set(now),
        last_used_at: Set(now),
        absolute_expires_at: Set(absolute_expires_at),
        revoked_at: Set(None),
        revoked_reason: Set(None),
        resource: Set(new.resource.map(str::to_owned)),
        status_index: Set(i64::try_from(status_index).ok()),
        ..Default::default()
    };
    scope.insert::<refresh_family::Entity, _>(row).await?;
    Ok(status_index)
}

pub async fn find(scope: Scoped<'_>, id: &str) -> StoreResult<Option<Family>> {
    scope
        .select::<refresh_family::Entity>()
        .filter(refresh_family::Column::Id.eq(id))
        .one(scope.db)
        .await?
        .map(from_row)
        .transpose()
}

/// A refresh token's row as stored: the hash, never the token.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub token_hash: String,
    pub family_id: String,
    /// The first characters of the token, for display.
    pub prefix: String,
    pub created_at: i64,
}

/// A stored refresh token with its family, the family's user and that user's organization membership
/// as stored now: one statement, since a rotation is one read.
pub struct StoredRefreshToken {
    pub rotated: bool,
    pub created_at: i64,
    pub family: Family,
    pub user: UserRow,
    pub membership: Option<Membership>,
}

pub async fn find_token(scope: Scoped<'_>, token_hash: &str) -> StoreResult<Option<StoredRefreshToken>> {
    let Some((row, Some(family), Some(user), member, organization)) = scope
        .select_chain::<refresh_token::Entity, refresh_family::Entity, user::Entity>()
        .find_also(user::Entity, organization_member::Entity)
        .find_also(organization_member::Entity, organization::Entity)
        .filter(scope.optional::<organization_member::Entity>())
        .filter(scope.optional::<organization::Entity>())
        .filter(refresh_token::Column::TokenHash.eq(token_hash))
        .one(scope.db)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(StoredRefreshToken {
        rotated: row.rotated_at.is_some(),
        created_at: row.created_at,
        family: from_row(family)?,
        user,
        membership: super::organizations::membership(member, organization)?,
    }))
}

pub async fn set_last_used(scope: Scoped<'_>, id: &str, now: i64) -> StoreResult<()> {
    scope
        .update::<refresh_family::Entity>()
        .col_expr(refresh_family::Column::LastUsedAt, now.into())
        .filter(refresh_family::Column::Id.eq(id))
        .exec(scope.db)
        .await?;
    Ok(())
}

/// Revokes the family unless it already was; returns whether this call revoked it.
pub async fn revoke(scope: Scoped<'_>, id: &str, reason: &str, now: i64) -> StoreResult<bool> {
    let result = scope
        .update::<refresh_family::Entity>()
        .col_expr(refresh_family::Column::RevokedAt, now.into())
        .col_expr(refresh_family::Column::RevokedReason, reason.into())
        .filter(refresh_family::Column::Id.eq(id))
        .filter(refresh_family::Column::RevokedAt.is_null())
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Which live families to revoke at once.
#[derive(Debug, Clone, Copy)]
pub enum Holding<'a> {
    /// Those bound to one browser session (sign-out).
    Session(&'a str),
    /// A user's, optionally only those one client holds.
    User { user_id: &'a str, client_id: Option<&'a str> },
    /// Every user's families held by one client.
    Client(&'a str),
}

/// Revokes every live family `holding` selects; returns how many this call revoked. Each is revoked
/// by its own conditional UPDATE, so a family revoked concurrently is counted by one caller only.
pub async fn revoke_held(scope: Scoped<'_>, holding: Holding<'_>, reason: &str, now: i64) -> StoreResult<usize> {
    let query = scope.select::<refresh_family::Entity>().filter(refresh_family::Column::RevokedAt.is_null());
    let query = match holding {
        Holding::Session(session_id) => query.filter(refresh_family::Column::SessionId.eq(session_id)),
        Holding::User { user_id, client_id } => {
            let query = query.filter(refresh_family::Column::UserId.eq(user_id));
            match client_id {
                Some(client_id) => query.filter(refresh_family::Column::ClientId.eq(client_id)),
                None => query,
            }
        }
        Holding::Client(client_id) => query.filter(refresh_family::Column::ClientId.eq(client_id)),
    };
    let mut revoked = 0;
    for family in query.all(scope.db).await? {
        if revoke(scope, &family.id, reason, now).await? {
            revoked += 1;
        }
    }
    Ok(revoked)
}

/// How many live (not revoked, not past their absolute lifetime) families each client holds for a user.
pub async fn live_count_by_client(scope: Scoped<'_>, user_id: &str, now: i64) -> StoreResult<BTreeMap<String, usize>> {
    let rows = scope
        .select::<refresh_family::Entity>()
        .filter(refresh_family::Column::UserId.eq(user_id))
        .filter(refresh_family::Column::RevokedAt.is_null())
        .filter(refresh_family::Column::AbsoluteExpiresAt.gt(now))
        .all(scope.db)
        .await?;
    let mut counts = BTreeMap::new();
    for row in rows {
        *counts.entry(row.client_id).or_insert(0) += 1;
    }
    Ok(counts)
}

/// One token response's storage: the refresh token it issues, and the one it spends (a rotation).
pub struct TokenWrite {
    pub tenant_id: String,
    /// SHA-256 (hex) of the refresh token this response replaces.
    pub spends: Option<String>,
    pub issues: Option<NewRefreshToken>,
}

/// Stores many token responses in one transaction; per write, whether it was stored. A write that
/// spends a token is stored only if this transaction spent that token: `false` means it had been spent
/// before (reuse), or by an earlier write of the same batch.
pub async fn write_batch(db: &DatabaseConnection, writes: Vec<TokenWrite>, now: i64) -> StoreResult<Vec<bool>> {
    let txn = db.begin().await?;
    let mut spent = spend(&txn, &writes, now).await?;
    let mut stored = Vec::with_capacity(writes.len());
    let mut rows_by_tenant: HashMap<String, Vec<refresh_token::ActiveModel>> = HashMap::new();
    for write in writes {
        // `remove`: a token presented twice in one batch is spent by the first only.
        let wins = match &write.spends {
            None => true,
            Some(hash) => spent.get_mut(&write.tenant_id).is_some_and(|hashes| hashes.remove(hash)),
        };
        stored.push(wins);
        if wins && let Some(new) = write.issues {
            let row = refresh_token::ActiveModel {
                token_hash: Set(new.token_hash),
                family_id: Set(new.family_id),
                prefix: Set(new.prefix),
                created_at: Set(new.created_at),
                rotated_at: Set(None),
                ..Default::default()
            };
            rows_by_tenant.entry(write.tenant_id).or_default().push(row);
        }
    }
    for (tenant_id, rows) in rows_by_tenant {
        Scoped::new(&txn, &tenant_id).insert_many::<refresh_token::Entity, _>(rows).await?;
    }
    txn.commit().await?;
    Ok(stored)
}

/// Marks every refresh token the batch presents as rotated, if it was not; returns, per tenant, the
/// hashes this transaction spent.
async fn spend(txn: &DatabaseTransaction, writes: &[TokenWrite], now: i64) -> StoreResult<HashMap<String, HashSet<String>>> {
    let mut by_tenant: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for write in writes {
        if let Some(hash) = &write.spends {
            by_tenant.entry(&write.tenant_id).or_default().insert(hash);
        }
    }
    let mut spent = HashMap::new();
    for (tenant_id, hashes) in by_tenant {
        let rows = Scoped::new(txn, tenant_id)
            .update::<refresh_token::Entity>()
            .col_expr(refresh_token::Column::RotatedAt, now.into())
            .filter(refresh_token::Column::TokenHash.is_in(hashes))
            .filter(refresh_token::Column::RotatedAt.is_null())
            .exec_with_returning(txn)
            .await?;
        spent.insert(tenant_id.to_owned(), rows.into_iter().map(|row| row.token_hash).collect());
    }
    Ok(spent)
}
