//! Device authorization requests (RFC 8628; `oauth::device` decides what they mean). Each promise is
//! one conditional statement: a request is answered once, while pending and unexpired; an approved
//! one is redeemed once however many polls race; a pending one's polls are paced (RFC 8628 §3.5).

use entity::device_authorization;
use sea_orm::{ColumnTrait, QueryFilter, sea_query::Expr};

use super::{Scoped, StoreError, StoreResult, unique_violation};

pub use device_authorization::Model as DeviceRow;

pub const PENDING: &str = "pending";
pub const APPROVED: &str = "approved";
pub const DENIED: &str = "denied";

/// Stores a new request; `Ok(false)` when its user code's hash is taken (draw another code).
pub async fn insert(scope: Scoped<'_>, row: DeviceRow) -> StoreResult<bool> {
    match scope.insert::<device_authorization::Entity, _>(row).await {
        Ok(()) => Ok(true),
        Err(e) if unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The request a typed user code names, if it is still waiting for an answer.
pub async fn pending_by_user_code(scope: Scoped<'_>, user_code_hash: &str, now: i64) -> StoreResult<Option<DeviceRow>> {
    Ok(scope
        .select::<device_authorization::Entity>()
        .filter(device_authorization::Column::UserCodeHash.eq(user_code_hash))
        .filter(device_authorization::Column::Status.eq(PENDING))
        .filter(device_authorization::Column::ExpiresAt.gt(now))
        .one(scope.db)
        .await?)
}

pub async fn by_public_id(scope: Scoped<'_>, public_id: &str) -> StoreResult<Option<DeviceRow>> {
    Ok(scope
        .select::<device_authorization::Entity>()
        .filter(device_authorization::Column::PublicId.eq(public_id))
        .one(scope.db)
        .await?)
}

/// The person's answer, and for a yes the authentication it rests on.
pub enum Answer<'a> {
    Approve { user_id: &'a str, session_id: &'a str, auth_time: i64, amr: String, acr: &'a str },
    Deny,
}

/// Records the answer once, while pending and unexpired.
pub async fn answer(scope: Scoped<'_>, public_id: &str, answer: Answer<'_>, now: i64) -> StoreResult<bool> {
    let update = scope.update::<device_authorization::Entity>().col_expr(device_authorization::Column::DecidedAt, Expr::value(now));
    let update = match answer {
        Answer::Approve { user_id, session_id, auth_time, amr, acr } => update
            .col_expr(device_authorization::Column::Status, Expr::value(APPROVED))
            .col_expr(device_authorization::Column::UserId, Expr::value(user_id))
            .col_expr(device_authorization::Column::SessionId, Expr::value(session_id))
            .col_expr(device_authorization::Column::AuthTime, Expr::value(auth_time))
            .col_expr(device_authorization::Column::Amr, Expr::value(amr))
            .col_expr(device_authorization::Column::Acr, Expr::value(acr)),
        Answer::Deny => update.col_expr(device_authorization::Column::Status, Expr::value(DENIED)),
    };
    let done = update
        .filter(device_authorization::Column::PublicId.eq(public_id))
        .filter(device_authorization::Column::Status.eq(PENDING))
        .filter(device_authorization::Column::ExpiresAt.gt(now))
        .exec(scope.db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// What a poll of the token endpoint finds (RFC 8628 §3.5).
#[derive(Debug)]
pub enum Poll {
    /// No such device code, or another client's.
    Unknown,
    Expired,
    /// Faster than the interval: the interval is now five seconds longer.
    SlowDown,
    Pending,
    Denied,
    /// Approved, and redeemed by this poll: issue the tokens.
    Approved(Box<DeviceRow>),
    /// Approved, and already redeemed.
    Redeemed,
}

pub async fn poll(scope: Scoped<'_>, id: &str, client_id: &str, now: i64) -> StoreResult<Poll> {
    let row = scope.select::<device_authorization::Entity>().filter(device_authorization::Column::Id.eq(id)).one(scope.db).await?;
    let Some(row) = row.filter(|r| r.client_id == client_id) else {
        return Ok(Poll::Unknown);
    };
    if row.expires_at <= now {
        return Ok(Poll::Expired);
    }
    match row.status.as_str() {
        APPROVED => {
            let redeemed = scope
                .update::<device_authorization::Entity>()
                .col_expr(device_authorization::Column::RedeemedAt, Expr::value(now))
                .filter(device_authorization::Column::Id.eq(id))
                .filter(device_authorization::Column::RedeemedAt.is_null())
                .exec(scope.db)
                .await?;
            Ok(if redeemed.rows_affected == 1 { Poll::Approved(Box::new(row)) } else { Poll::Redeemed })
        }
        DENIED => Ok(Poll::Denied),
        PENDING => {
            use device_authorization::Column;
            let on_time = super::paced_poll::<device_authorization::Entity>(scope, (Column::Id, id), Column::LastPolledAt, Column::PollInterval, now).await?;
            Ok(if on_time { Poll::Pending } else { Poll::SlowDown })
        }
        other => Err(StoreError::Corrupt(format!("device authorization status {other:?}"))),
    }
}
