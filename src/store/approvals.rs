//! Approvals and the CIBA requests that poll them (`approval` and `oauth::backchannel` decide what
//! they mean). Each promise is one conditional statement, so two nodes racing agree:
//! - an approval is opened once per open key (a unique index), and joined by later identical
//!   requests only while open, at most `MAX_HANDLES` times;
//! - it is answered once, by its own person, while pending and unexpired;
//! - an approved one is redeemed (a token issued) once;
//! - a poll of a pending approval faster than the request's interval is refused and the interval
//!   raised (CIBA §7.3); an answer, once given, is returned at once.

use entity::{approval, ciba_request};
use sea_orm::{ColumnTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr};

use super::{Scoped, StoreError, StoreResult, unique_violation};

pub use approval::Model as ApprovalRow;
pub use ciba_request::Model as CibaRequestRow;

/// How many `auth_req_id`s may point at one approval (every join adds one).
pub const MAX_HANDLES: i32 = 50;

/// What the status column holds.
pub const PENDING: &str = "pending";
pub const APPROVED: &str = "approved";
pub const DENIED: &str = "denied";

/// Open approvals a client, or a person, may have at once.
pub struct Caps {
    pub per_client: u64,
    pub per_user: u64,
}

pub enum Opened {
    /// A new approval: the person is to be told.
    New(ApprovalRow),
    /// An identical open approval, now also reachable through the new handle.
    Joined(ApprovalRow),
    /// Too many open approvals for this client or person, or handles on the one to join.
    TooMany,
}

async fn open_count(scope: Scoped<'_>, column: approval::Column, value: &str, now: i64) -> StoreResult<u64> {
    use sea_orm::PaginatorTrait;
    Ok(scope
        .select::<approval::Entity>()
        .filter(column.eq(value))
        .filter(approval::Column::Status.eq(PENDING))
        .filter(approval::Column::ExpiresAt.gt(now))
        .count(scope.db)
        .await?)
}

/// Opens `row` (its `open_key` set), or joins the open approval with the same key, and stores the
/// handle `handle` (its `approval_id` and `expires_at` are filled in here).
pub async fn open_or_join(scope: Scoped<'_>, row: ApprovalRow, mut handle: CibaRequestRow, caps: &Caps, now: i64) -> StoreResult<Opened> {
    let key = row.open_key.clone().ok_or_else(|| StoreError::Corrupt("an approval opened without a key".into()))?;
    for _ in 0..3 {
        let existing = scope.select::<approval::Entity>().filter(approval::Column::OpenKey.eq(&key)).one(scope.db).await?;
        if let Some(existing) = existing {
            if existing.expires_at <= now {
                // Expired: it no longer holds the key, and a new approval is asked for.
                scope
                    .update::<approval::Entity>()
                    .col_expr(approval::Column::OpenKey, Expr::value(Option::<String>::None))
                    .filter(approval::Column::Id.eq(&existing.id))
                    .filter(approval::Column::OpenKey.eq(&key))
                    .exec(scope.db)
                    .await?;
                continue;
            }
            let joined = scope
                .update::<approval::Entity>()
                .col_expr(approval::Column::Handles, Expr::col(approval::Column::Handles).add(1))
                .filter(approval::Column::Id.eq(&existing.id))
                .filter(approval::Column::OpenKey.eq(&key))
                .filter(approval::Column::Handles.lt(MAX_HANDLES))
                .exec(scope.db)
                .await?;
            if joined.rows_affected == 0 {
                return Ok(Opened::TooMany);
            }
            handle.approval_id = existing.id.clone();
            handle.expires_at = existing.expires_at;
            scope.insert::<ciba_request::Entity, _>(handle).await?;
            return Ok(Opened::Joined(existing));
        }
        if open_count(scope, approval::Column::ClientId, &row.client_id, now).await? >= caps.per_client
            || open_count(scope, approval::Column::UserId, &row.user_id, now).await? >= caps.per_user
        {
            return Ok(Opened::TooMany);
        }
        match scope.insert::<approval::Entity, _>(ApprovalRow { handles: 1, ..row.clone() }).await {
            Ok(()) => {
                handle.approval_id = row.id.clone();
                handle.expires_at = row.expires_at;
                scope.insert::<ciba_request::Entity, _>(handle).await?;
                return Ok(Opened::New(row));
            }
            // Another node opened the same approval a moment ago: join it.
            Err(e) if unique_violation(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(Opened::TooMany)
}

/// What a poll of the token endpoint finds (CIBA §11).
#[derive(Debug)]
pub enum Poll {
    /// No such handle, or another client's.
    Unknown,
    Expired,
    /// Faster than the interval: the interval is now five seconds longer.
    SlowDown,
    Pending,
    Denied,
    /// Approved, and redeemed by this poll: issue the token.
    Approved(Box<ApprovalRow>),
    /// Approved, and already redeemed (by this handle or another).
    Redeemed,
}

pub async fn poll(scope: Scoped<'_>, handle_id: &str, client_id: &str, now: i64) -> StoreResult<Poll> {
    let handle = scope.select::<ciba_request::Entity>().filter(ciba_request::Column::Id.eq(handle_id)).one(scope.db).await?;
    let Some(handle) = handle.filter(|h| h.client_id == client_id) else {
        return Ok(Poll::Unknown);
    };
    if handle.expires_at <= now {
        return Ok(Poll::Expired);
    }
    let Some(approval) = find(scope, &handle.approval_id).await? else {
        return Ok(Poll::Unknown);
    };
    match approval.status.as_str() {
        PENDING if approval.expires_at <= now => Ok(Poll::Expired),
        // Only waiting is paced: an answer, once there, is given at once.
        PENDING => {
            let c = ciba_request::Column::Id;
            let on_time = super::paced_poll::<ciba_request::Entity>(scope, (c, handle_id), ciba_request::Column::LastPolledAt, ciba_request::Column::PollInterval, now).await?;
            Ok(if on_time { Poll::Pending } else { Poll::SlowDown })
        }
        DENIED => Ok(Poll::Denied),
        APPROVED => {
            let redeemed = scope
                .update::<approval::Entity>()
                .col_expr(approval::Column::RedeemedAt, Expr::value(now))
                .col_expr(approval::Column::OpenKey, Expr::value(Option::<String>::None))
                .filter(approval::Column::Id.eq(&approval.id))
                .filter(approval::Column::Status.eq(APPROVED))
                .filter(approval::Column::RedeemedAt.is_null())
                .exec(scope.db)
                .await?;
            Ok(if redeemed.rows_affected == 1 { Poll::Approved(Box::new(approval)) } else { Poll::Redeemed })
        }
        other => Err(StoreError::Corrupt(format!("approval status {other:?}"))),
    }
}

/// The person's answer.
pub enum Answer<'a> {
    Approve { auth_time: i64, amr: String, session_id: &'a str },
    Deny,
}

/// Records the person's answer: only theirs, only while pending and unexpired, only once.
pub async fn answer(scope: Scoped<'_>, id: &str, user_id: &str, answer: Answer<'_>, now: i64) -> StoreResult<bool> {
    let update = scope.update::<approval::Entity>().col_expr(approval::Column::DecidedAt, Expr::value(now));
    let update = match answer {
        Answer::Approve { auth_time, amr, session_id } => update
            .col_expr(approval::Column::Status, Expr::value(APPROVED))
            .col_expr(approval::Column::AuthTime, Expr::value(auth_time))
            .col_expr(approval::Column::Amr, Expr::value(amr))
            .col_expr(approval::Column::SessionId, Expr::value(session_id)),
        Answer::Deny => update.col_expr(approval::Column::Status, Expr::value(DENIED)),
    };
    let done = update
        .filter(approval::Column::Id.eq(id))
        .filter(approval::Column::UserId.eq(user_id))
        .filter(approval::Column::Status.eq(PENDING))
        .filter(approval::Column::ExpiresAt.gt(now))
        .exec(scope.db)
        .await?;
    Ok(done.rows_affected == 1)
}

pub async fn find(scope: Scoped<'_>, id: &str) -> StoreResult<Option<ApprovalRow>> {
    Ok(scope.select::<approval::Entity>().filter(approval::Column::Id.eq(id)).one(scope.db).await?)
}

/// A person's approvals still waiting for an answer, newest first.
pub async fn pending_for(scope: Scoped<'_>, user_id: &str, now: i64, limit: u64) -> StoreResult<Vec<ApprovalRow>> {
    Ok(scope
        .select::<approval::Entity>()
        .filter(approval::Column::UserId.eq(user_id))
        .filter(approval::Column::Status.eq(PENDING))
        .filter(approval::Column::ExpiresAt.gt(now))
        .order_by_desc(approval::Column::CreatedAt)
        .limit(limit)
        .all(scope.db)
        .await?)
}
