//! Email sign-in codes: one row per code, named by its flow id, holding only a keyed hash. Every change
//! is one conditional UPDATE, so limits and single use hold across nodes (`email_code` decides what the
//! rows mean).

use entity::email_code;
use sea_orm::{ActiveValue::Set, ColumnTrait, ExprTrait, QueryFilter, sea_query::Expr};

use super::{Scoped, StoreResult};

pub struct NewCode<'a> {
    pub flow_id: &'a str,
    pub email: &'a str,
    pub code_hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: i64,
}

pub struct StoredCode {
    pub email: String,
    pub code_hash: Vec<u8>,
    /// Checks counted so far, this one included.
    pub attempts: i32,
}

/// Stores a code and ends every earlier open code for the same address: only the newest one works.
pub async fn replace(scope: Scoped<'_>, new: NewCode<'_>) -> StoreResult<()> {
    scope
        .update::<email_code::Entity>()
        .col_expr(email_code::Column::ConsumedAt, new.created_at.into())
        .filter(email_code::Column::Email.eq(new.email))
        .filter(email_code::Column::ConsumedAt.is_null())
        .exec(scope.db)
        .await?;
    let row = email_code::ActiveModel {
        id: Set(new.flow_id.to_owned()),
        email: Set(new.email.to_owned()),
        code_hash: Set(new.code_hash),
        attempts: Set(0),
        created_at: Set(new.created_at),
        expires_at: Set(new.expires_at),
        consumed_at: Set(None),
        ..Default::default()
    };
    scope.insert::<email_code::Entity, _>(row).await
}

/// The address of a flow whose code is open (not consumed, not expired).
pub async fn open_email(scope: Scoped<'_>, flow_id: &str, now: i64) -> StoreResult<Option<String>> {
    Ok(scope
        .select::<email_code::Entity>()
        .filter(email_code::Column::Id.eq(flow_id))
        .filter(email_code::Column::ConsumedAt.is_null())
        .filter(email_code::Column::ExpiresAt.gt(now))
        .one(scope.db)
        .await?
        .map(|row| row.email))
}

/// Counts one check against an open code, atomically and only while fewer than `max_attempts` were
/// counted; then returns the code. `None`: expired, consumed, used up or unknown.
pub async fn count_attempt(scope: Scoped<'_>, flow_id: &str, max_attempts: i32, now: i64) -> StoreResult<Option<StoredCode>> {
    let counted = scope
        .update::<email_code::Entity>()
        .col_expr(email_code::Column::Attempts, Expr::col(email_code::Column::Attempts).add(1))
        .filter(email_code::Column::Id.eq(flow_id))
        .filter(email_code::Column::ConsumedAt.is_null())
        .filter(email_code::Column::ExpiresAt.gt(now))
        .filter(email_code::Column::Attempts.lt(max_attempts))
        .exec(scope.db)
        .await?;
    if counted.rows_affected == 0 {
        return Ok(None);
    }
    Ok(scope
        .select::<email_code::Entity>()
        .filter(email_code::Column::Id.eq(flow_id))
        .one(scope.db)
        .await?
        .map(|row| StoredCode { email: row.email, code_hash: row.code_hash, attempts: row.attempts }))
}

/// Consumes the code: true for exactly one of any number of callers racing.
pub async fn consume(scope: Scoped<'_>, flow_id: &str, now: i64) -> StoreResult<bool> {
    let consumed = scope
        .update::<email_code::Entity>()
        .col_expr(email_code::Column::ConsumedAt, now.into())
        .filter(email_code::Column::Id.eq(flow_id))
        .filter(email_code::Column::ConsumedAt.is_null())
        .exec(scope.db)
        .await?;
    Ok(consumed.rows_affected == 1)
}
