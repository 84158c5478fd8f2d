//! The authorization endpoint's rows: pending requests (waiting for sign-in or consent) and issued
//! codes, kept as SHA-256. A code is consumed by one conditional UPDATE that also names the refresh
//! family it started, so a replay can find and revoke what the first use issued (`oauth::authorize`
//! and `oauth::grants::authorization_code` decide).

use entity::{authorization_code, authorization_request};
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter};

use super::{Scoped, StoreResult};

pub use entity::authorization_code::Model as CodeRow;

pub struct StoredRequest {
    pub id: String,
    /// The validated request, as JSON.
    pub params: String,
    pub created_at: i64,
}

pub async fn insert_request(scope: Scoped<'_>, id: &str, client_id: &str, params: String, now: i64, expires_at: i64) -> StoreResult<()> {
    let row = authorization_request::ActiveModel {
        id: Set(id.to_owned()),
        client_id: Set(client_id.to_owned()),
        params: Set(params),
        created_at: Set(now),
        expires_at: Set(expires_at),
        ..Default::default()
    };
    scope.insert::<authorization_request::Entity, _>(row).await
}

/// A pending request that has not expired.
pub async fn find_request(scope: Scoped<'_>, id: &str, now: i64) -> StoreResult<Option<StoredRequest>> {
    Ok(scope
        .select::<authorization_request::Entity>()
        .filter(authorization_request::Column::Id.eq(id))
        .filter(authorization_request::Column::ExpiresAt.gt(now))
        .one(scope.db)
        .await?
        .map(|row| StoredRequest { id: row.id, params: row.params, created_at: row.created_at }))
}

pub async fn delete_request(scope: Scoped<'_>, id: &str) -> StoreResult<()> {
    scope
        .delete::<authorization_request::Entity>()
        .filter(authorization_request::Column::Id.eq(id))
        .exec(scope.db)
        .await?;
    Ok(())
}

/// Stores an issued code (its row built whole: `code_hash` is the SHA-256 of the code).
pub async fn insert_code(scope: Scoped<'_>, row: CodeRow) -> StoreResult<()> {
    scope.insert::<authorization_code::Entity, _>(row).await
}

pub async fn find_code(scope: Scoped<'_>, code_hash: &str) -> StoreResult<Option<CodeRow>> {
    Ok(scope.select::<authorization_code::Entity>().filter(authorization_code::Column::CodeHash.eq(code_hash)).one(scope.db).await?)
}

/// Consumes the code for the refresh family its exchange created: true for exactly one caller.
pub async fn consume_code(scope: Scoped<'_>, code_hash: &str, family_id: &str, now: i64) -> StoreResult<bool> {
    let consumed = scope
        .update::<authorization_code::Entity>()
        .col_expr(authorization_code::Column::ConsumedAt, now.into())
        .col_expr(authorization_code::Column::FamilyId, family_id.into())
        .filter(authorization_code::Column::CodeHash.eq(code_hash))
        .filter(authorization_code::Column::ConsumedAt.is_null())
        .exec(scope.db)
        .await?;
    Ok(consumed.rows_affected == 1)
}
