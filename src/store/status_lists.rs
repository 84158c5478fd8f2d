//! Token status lists (draft-ietf-oauth-status-list): each tenant's list hands out entries from a
//! counter row, and a list's set entries are its revoked refresh families (`refresh_families`'
//! `status_index` where `revoked_at` is set). The list itself is never stored: it is built from
//! these when published (`oauth::status_list`).

use entity::{refresh_family, status_list};
use sea_orm::{ColumnTrait, ExprTrait, QueryFilter, QuerySelect, sea_query::Expr};

use super::{Scoped, StoreError, StoreResult};

/// The one list a tenant has (its id in the URI).
pub const LIST_ID: i32 = 0;

/// Hands out the tenant's next list entry, once: the counter is incremented and read back in one
/// statement, so families made at once on any number of nodes get distinct entries.
pub async fn allocate(scope: Scoped<'_>) -> StoreResult<u64> {
    for _ in 0..2 {
        let counted = scope
            .update::<status_list::Entity>()
            .col_expr(status_list::Column::Size, Expr::col(status_list::Column::Size).add(1))
            .filter(status_list::Column::Id.eq(LIST_ID))
            .exec_with_returning(scope.db)
            .await?;
        if let Some(row) = counted.first() {
            return u64::try_from(row.size - 1).map_err(|_| StoreError::Corrupt(format!("status list size {}", row.size)));
        }
        // The tenant's first entry: make its counter (a racing node may make it first).
        let counter = status_list::ActiveModel { id: sea_orm::Set(LIST_ID), size: sea_orm::Set(0), ..Default::default() };
        scope.insert_if_absent::<status_list::Entity, _>(counter, [status_list::Column::TenantId, status_list::Column::Id]).await?;
    }
    Err(StoreError::Corrupt("the status list counter was not made".into()))
}

/// How many entries the tenant's list has handed out, and which of them are set (revoked families
/// not yet swept: a family is kept until its last access token has expired).
pub async fn entries(scope: Scoped<'_>) -> StoreResult<(u64, Vec<u64>)> {
    let size = scope
        .select::<status_list::Entity>()
        .filter(status_list::Column::Id.eq(LIST_ID))
        .one(scope.db)
        .await?
        .map_or(0, |row| u64::try_from(row.size).unwrap_or(0));
    let revoked: Vec<Option<i64>> = scope
        .select::<refresh_family::Entity>()
        .select_only()
        .column(refresh_family::Column::StatusIndex)
        .filter(refresh_family::Column::RevokedAt.is_not_null())
        .filter(refresh_family::Column::StatusIndex.is_not_null())
        .into_tuple()
        .all(scope.db)
        .await?;
    Ok((size, revoked.into_iter().flatten().filter_map(|i| u64::try_from(i).ok()).collect()))
}
