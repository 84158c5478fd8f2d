//! Recovery codes: one row per code, holding only its keyed hash. Use is one conditional UPDATE
//! (`used_at IS NULL`), so a code works once however many requests race.

use entity::recovery_code;
use sea_orm::{ActiveValue::Set, ColumnTrait, PaginatorTrait, QueryFilter};

use super::{Scoped, StoreResult};

/// Deletes the user's codes and stores `code_hashes` as the new set.
pub async fn replace_set(scope: Scoped<'_>, user_id: &str, code_hashes: Vec<String>, now: i64) -> StoreResult<()> {
    scope
        .delete::<recovery_code::Entity>()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .exec(scope.db)
        .await?;
    let rows = code_hashes.into_iter().map(|code_hash| recovery_code::ActiveModel {
        code_hash: Set(code_hash),
        user_id: Set(user_id.to_owned()),
        created_at: Set(now),
        used_at: Set(None),
        ..Default::default()
    });
    scope.insert_many::<recovery_code::Entity, _>(rows).await
}

/// Marks the user's unused code with this hash used: true for exactly one of any callers racing.
pub async fn use_once(scope: Scoped<'_>, user_id: &str, code_hash: &str, now: i64) -> StoreResult<bool> {
    let result = scope
        .update::<recovery_code::Entity>()
        .col_expr(recovery_code::Column::UsedAt, now.into())
        .filter(recovery_code::Column::UserId.eq(user_id))
        .filter(recovery_code::Column::CodeHash.eq(code_hash))
        .filter(recovery_code::Column::UsedAt.is_null())
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// How many of the user's codes there are: unused ones only, or all ever stored in the current set.
pub async fn count(scope: Scoped<'_>, user_id: &str, unused_only: bool) -> StoreResult<u64> {
    let mut select = scope.select::<recovery_code::Entity>().filter(recovery_code::Column::UserId.eq(user_id));
    if unused_only {
        select = select.filter(recovery_code::Column::UsedAt.is_null());
    }
    Ok(select.count(scope.db).await?)
}
