//! Service accounts and their agent tokens (hashes and display prefixes only). An active agent token
//! holds one of a few numbered slots, unique per account in the database, so the cap on active tokens
//! holds however many nodes create tokens at once.

use entity::{agent_token, organization, service_account};
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, SqlErr};

use super::{Scoped, StoreError, StoreResult, organizations::{self, Organization}};

pub use entity::{agent_token::Model as AgentTokenRow, service_account::Model as ServiceAccountRow};

/// The `slot` of a token that no longer counts toward the cap.
const NO_SLOT: Option<i32> = None;

pub async fn insert(scope: Scoped<'_>, row: ServiceAccountRow) -> StoreResult<()> {
    scope.insert::<service_account::Entity, _>(row).await
}

/// The account with its organization, in one query (it runs on every exchange, service-account
/// client_credentials grant and introspection of a service account's token).
pub async fn find(scope: Scoped<'_>, id: &str) -> StoreResult<Option<(ServiceAccountRow, Organization)>> {
    let found = scope
        .select_with::<service_account::Entity, organization::Entity>()
        .filter(service_account::Column::Id.eq(id))
        .one(scope.db)
        .await?;
    // The join is tenant-scoped on both sides: an account always comes with its organization.
    Ok(match found {
        Some((row, Some(org))) => Some((row, organizations::from_row(org))),
        _ => None,
    })
}

pub async fn for_organization(scope: Scoped<'_>, organization_id: &str) -> StoreResult<Vec<ServiceAccountRow>> {
    Ok(scope
        .select::<service_account::Entity>()
        .filter(service_account::Column::OrganizationId.eq(organization_id))
        .order_by_asc(service_account::Column::CreatedAt)
        .all(scope.db)
        .await?)
}

/// Disables the account and revokes its live agent tokens. `None`: no such account, or it already
/// was disabled; otherwise how many tokens were revoked with it.
pub async fn disable(scope: Scoped<'_>, id: &str, now: i64) -> StoreResult<Option<u64>> {
    let updated = scope
        .update::<service_account::Entity>()
        .col_expr(service_account::Column::DisabledAt, now.into())
        .filter(service_account::Column::Id.eq(id))
        .filter(service_account::Column::DisabledAt.is_null())
        .exec(scope.db)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(None);
    }
    let revoked = scope
        .update::<agent_token::Entity>()
        .col_expr(agent_token::Column::RevokedAt, now.into())
        .col_expr(agent_token::Column::Slot, NO_SLOT.into())
        .filter(agent_token::Column::ServiceAccountId.eq(id))
        .filter(agent_token::Column::RevokedAt.is_null())
        .exec(scope.db)
        .await?;
    Ok(Some(revoked.rows_affected))
}

/// Frees the slots of the account's tokens that have expired by `now`.
pub async fn release_expired_slots(scope: Scoped<'_>, account_id: &str, now: i64) -> StoreResult<()> {
    scope
        .update::<agent_token::Entity>()
        .col_expr(agent_token::Column::Slot, NO_SLOT.into())
        .filter(agent_token::Column::ServiceAccountId.eq(account_id))
        .filter(agent_token::Column::ExpiresAt.lte(now))
        .filter(agent_token::Column::Slot.is_not_null())
        .exec(scope.db)
        .await?;
    Ok(())
}

/// The slots the account's tokens hold now.
pub async fn taken_slots(scope: Scoped<'_>, account_id: &str) -> StoreResult<Vec<i32>> {
    Ok(scope
        .select::<agent_token::Entity>()
        .filter(agent_token::Column::ServiceAccountId.eq(account_id))
        .filter(agent_token::Column::Slot.is_not_null())
        .all(scope.db)
        .await?
        .into_iter()
        .filter_map(|t| t.slot)
        .collect())
}

/// Stores a token in the slot its row names; `false` when a concurrent creator took that slot first.
pub async fn insert_token(scope: Scoped<'_>, row: AgentTokenRow) -> StoreResult<bool> {
    match scope.insert::<agent_token::Entity, _>(row).await {
        Ok(()) => Ok(true),
        Err(StoreError::Db(error)) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Every token of the account, oldest first.
pub async fn tokens(scope: Scoped<'_>, account_id: &str) -> StoreResult<Vec<AgentTokenRow>> {
    Ok(scope
        .select::<agent_token::Entity>()
        .filter(agent_token::Column::ServiceAccountId.eq(account_id))
        .order_by_asc(agent_token::Column::CreatedAt)
        .all(scope.db)
        .await?)
}

/// Revokes one live token of the account (freeing its slot); returns whether this call did.
pub async fn revoke_token(scope: Scoped<'_>, account_id: &str, token_id: &str, now: i64) -> StoreResult<bool> {
    let result = scope
        .update::<agent_token::Entity>()
        .col_expr(agent_token::Column::RevokedAt, now.into())
        .col_expr(agent_token::Column::Slot, NO_SLOT.into())
        .filter(agent_token::Column::ServiceAccountId.eq(account_id))
        .filter(agent_token::Column::Id.eq(token_id))
        .filter(agent_token::Column::RevokedAt.is_null())
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// The unrevoked, unexpired token with this hash.
pub async fn find_live_token(scope: Scoped<'_>, token_hash: &str, now: i64) -> StoreResult<Option<AgentTokenRow>> {
    Ok(scope
        .select::<agent_token::Entity>()
        .filter(agent_token::Column::TokenHash.eq(token_hash))
        .filter(agent_token::Column::RevokedAt.is_null())
        .filter(agent_token::Column::ExpiresAt.gt(now))
        .one(scope.db)
        .await?)
}

pub async fn mark_token_used(scope: Scoped<'_>, token_id: &str, now: i64) -> StoreResult<()> {
    scope
        .update::<agent_token::Entity>()
        .col_expr(agent_token::Column::LastUsedAt, now.into())
        .filter(agent_token::Column::Id.eq(token_id))
        .exec(scope.db)
        .await?;
    Ok(())
}
