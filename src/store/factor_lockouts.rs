//! Second-factor guess counters: one row per user and factor. Every change is one conditional UPDATE,
//! so a count or a lock holds however many requests race on however many nodes (`lockout` decides
//! the sequence).

use entity::factor_lockout;
use sea_orm::{ActiveValue::Set, ColumnTrait, ExprTrait, QueryFilter, UpdateMany, sea_query::Expr};

use super::{Scoped, StoreResult};

/// The row of one user's factor, for an UPDATE.
fn this(scope: Scoped<'_>, user_id: &str, factor: &str) -> UpdateMany<factor_lockout::Entity> {
    scope
        .update::<factor_lockout::Entity>()
        .filter(factor_lockout::Column::UserId.eq(user_id))
        .filter(factor_lockout::Column::Factor.eq(factor))
}

async fn changed(update: UpdateMany<factor_lockout::Entity>, scope: Scoped<'_>) -> StoreResult<bool> {
    Ok(update.exec(scope.db).await?.rows_affected > 0)
}

/// Creates the counter at zero unless it exists (of racing creators, one inserts, none fails).
pub async fn ensure(scope: Scoped<'_>, user_id: &str, factor: &str) -> StoreResult<()> {
    let fresh = factor_lockout::ActiveModel {
        user_id: Set(user_id.to_owned()),
        factor: Set(factor.to_owned()),
        attempts: Set(0),
        locked_until: Set(None),
        ..Default::default()
    };
    let key = [factor_lockout::Column::TenantId, factor_lockout::Column::UserId, factor_lockout::Column::Factor];
    scope.insert_if_absent::<factor_lockout::Entity, _>(fresh, key).await?;
    Ok(())
}

/// A lock that ran out by `now` starts a new count.
pub async fn clear_expired_lock(scope: Scoped<'_>, user_id: &str, factor: &str, now: i64) -> StoreResult<()> {
    let update = this(scope, user_id, factor)
        .col_expr(factor_lockout::Column::Attempts, 0.into())
        .col_expr(factor_lockout::Column::LockedUntil, Option::<i64>::None.into())
        .filter(factor_lockout::Column::LockedUntil.lte(now));
    changed(update, scope).await?;
    Ok(())
}

/// Counts one attempt while the factor is unlocked and fewer than `max` were counted: false when
/// the attempt may not be made.
pub async fn count_attempt(scope: Scoped<'_>, user_id: &str, factor: &str, max: i32) -> StoreResult<bool> {
    let update = this(scope, user_id, factor)
        .col_expr(factor_lockout::Column::Attempts, Expr::col(factor_lockout::Column::Attempts).add(1))
        .filter(factor_lockout::Column::LockedUntil.is_null())
        .filter(factor_lockout::Column::Attempts.lt(max));
    changed(update, scope).await
}

/// A right code: the count starts anew (unless the factor got locked meanwhile).
pub async fn reset_count(scope: Scoped<'_>, user_id: &str, factor: &str) -> StoreResult<()> {
    let update = this(scope, user_id, factor)
        .col_expr(factor_lockout::Column::Attempts, 0.into())
        .filter(factor_lockout::Column::LockedUntil.is_null());
    changed(update, scope).await?;
    Ok(())
}

/// Locks the factor until `until` once `max` attempts are counted: true for the one caller that locked it.
pub async fn lock(scope: Scoped<'_>, user_id: &str, factor: &str, max: i32, until: i64) -> StoreResult<bool> {
    let update = this(scope, user_id, factor)
        .col_expr(factor_lockout::Column::LockedUntil, until.into())
        .filter(factor_lockout::Column::LockedUntil.is_null())
        .filter(factor_lockout::Column::Attempts.gte(max));
    changed(update, scope).await
}

/// The counter's attempts and lock, if it exists.
pub async fn read(scope: Scoped<'_>, user_id: &str, factor: &str) -> StoreResult<Option<(i32, Option<i64>)>> {
    Ok(scope
        .select::<factor_lockout::Entity>()
        .filter(factor_lockout::Column::UserId.eq(user_id))
        .filter(factor_lockout::Column::Factor.eq(factor))
        .one(scope.db)
        .await?
        .map(|row| (row.attempts, row.locked_until)))
}
