//! The outgoing-mail queue's table (an outbox). A message is sealed before it reaches this module and
//! stays sealed here. A worker claims a row with a lease by a conditional UPDATE, so of two nodes only
//! one sends it; a delivered (or dropped) message is deleted.

use entity::mail_queue;
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, ExprTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr};

use super::{Scoped, StoreResult};

/// A queued message as stored.
pub struct Queued {
    pub id: String,
    /// Failed attempts so far (before this claim).
    pub attempts: i32,
    pub deliver_until: i64,
    pub sealed: Vec<u8>,
}

/// Messages waiting, every tenant's: a node-wide figure for the operator's metrics, the one read of
/// this table not scoped to a tenant (it returns a count, nothing of any message).
pub async fn depth(db: &sea_orm::DatabaseConnection) -> StoreResult<u64> {
    use sea_orm::{EntityTrait, PaginatorTrait};
    Ok(mail_queue::Entity::find().count(db).await?)
}

pub async fn insert(scope: Scoped<'_>, id: &str, sealed: Vec<u8>, now: i64, deliver_until: i64) -> StoreResult<()> {
    let row = mail_queue::ActiveModel {
        id: Set(id.to_owned()),
        sealed: Set(sealed),
        created_at: Set(now),
        deliver_until: Set(deliver_until),
        next_attempt_at: Set(now),
        attempts: Set(0),
        lease_until: Set(None),
        last_error: Set(None),
        failed_at: Set(None),
        ..Default::default()
    };
    scope.insert::<mail_queue::Entity, _>(row).await
}

/// Due now, not given up on, and not leased by a live claim.
fn claimable(now: i64) -> Condition {
    Condition::all()
        .add(mail_queue::Column::FailedAt.is_null())
        .add(mail_queue::Column::NextAttemptAt.lte(now))
        .add(Condition::any().add(mail_queue::Column::LeaseUntil.is_null()).add(mail_queue::Column::LeaseUntil.lt(now)))
}

/// Up to `limit` claimable messages, the longest-waiting first (not yet claimed: see [`claim`]).
pub async fn due(scope: Scoped<'_>, now: i64, limit: u64) -> StoreResult<Vec<Queued>> {
    let rows = scope
        .select::<mail_queue::Entity>()
        .filter(claimable(now))
        .order_by_asc(mail_queue::Column::NextAttemptAt)
        .limit(limit)
        .all(scope.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| Queued { id: row.id, attempts: row.attempts, deliver_until: row.deliver_until, sealed: row.sealed })
        .collect())
}

/// Takes a lease on the message until `lease_until` and counts the attempt, if it is still
/// claimable: of concurrent claims, one wins.
pub async fn claim(scope: Scoped<'_>, id: &str, now: i64, lease_until: i64) -> StoreResult<bool> {
    let result = scope
        .update::<mail_queue::Entity>()
        .col_expr(mail_queue::Column::LeaseUntil, lease_until.into())
        .col_expr(mail_queue::Column::Attempts, Expr::col(mail_queue::Column::Attempts).add(1))
        .filter(mail_queue::Column::Id.eq(id))
        .filter(claimable(now))
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected == 1)
}

pub async fn delete(scope: Scoped<'_>, id: &str) -> StoreResult<()> {
    scope.delete::<mail_queue::Entity>().filter(mail_queue::Column::Id.eq(id)).exec(scope.db).await?;
    Ok(())
}

/// Ends a claim after a failed attempt: the lease released, why recorded, and `outcome` (the column
/// that says what happens next) set.
async fn release(scope: Scoped<'_>, id: &str, why: &str, outcome: (mail_queue::Column, i64)) -> StoreResult<()> {
    scope
        .update::<mail_queue::Entity>()
        .col_expr(outcome.0, outcome.1.into())
        .col_expr(mail_queue::Column::LeaseUntil, Option::<i64>::None.into())
        .col_expr(mail_queue::Column::LastError, why.chars().take(200).collect::<String>().into())
        .filter(mail_queue::Column::Id.eq(id))
        .exec(scope.db)
        .await?;
    Ok(())
}

/// Never tries the message again (kept, with why, until swept).
pub async fn give_up(scope: Scoped<'_>, id: &str, why: &str, now: i64) -> StoreResult<()> {
    release(scope, id, why, (mail_queue::Column::FailedAt, now)).await
}

/// Releases the lease; the message is due again at `next_attempt_at`.
pub async fn retry_at(scope: Scoped<'_>, id: &str, next_attempt_at: i64, why: &str) -> StoreResult<()> {
    release(scope, id, why, (mail_queue::Column::NextAttemptAt, next_attempt_at)).await
}
