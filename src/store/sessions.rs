//! Browser sessions: one row per session, named by the SHA-256 of its cookie value. Ending is a
//! conditional UPDATE (`ended_at IS NULL`), so an ended session never comes back.

use entity::session;
use latchkey_proto::{Acr, Amr};
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter, QueryOrder};

use super::{Scoped, StoreResult, stored_acr, stored_amr, to_amr_json};

pub struct NewSession<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub amr: &'a [Amr],
    pub acr: Acr,
    pub created_at: i64,
    pub expires_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A session row that has not been ended (it may still have expired).
pub struct StoredSession {
    pub id: String,
    pub user_id: String,
    pub auth_time: i64,
    pub amr: Vec<Amr>,
    pub acr: Acr,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

fn from_row(row: session::Model) -> StoreResult<StoredSession> {
    Ok(StoredSession {
        amr: stored_amr(&row.amr)?,
        acr: stored_acr(&row.acr)?,
        id: row.id,
        user_id: row.user_id,
        auth_time: row.auth_time,
        created_at: row.created_at,
        last_seen_at: row.last_seen_at,
        expires_at: row.expires_at,
        ip: row.ip,
        user_agent: row.user_agent,
    })
}

pub async fn insert(scope: Scoped<'_>, new: NewSession<'_>) -> StoreResult<()> {
    let row = session::ActiveModel {
        id: Set(new.id.to_owned()),
        user_id: Set(new.user_id.to_owned()),
        created_at: Set(new.created_at),
        last_seen_at: Set(new.created_at),
        expires_at: Set(new.expires_at),
        auth_time: Set(new.created_at),
        amr: Set(to_amr_json(new.amr)),
        acr: Set(new.acr.as_str().to_owned()),
        ip: Set(new.ip),
        user_agent: Set(new.user_agent),
        ended_at: Set(None),
        ..Default::default()
    };
    scope.insert::<session::Entity, _>(row).await
}

/// The session with this id unless it was ended.
pub async fn find_open(scope: Scoped<'_>, id: &str) -> StoreResult<Option<StoredSession>> {
    scope
        .select::<session::Entity>()
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::EndedAt.is_null())
        .one(scope.db)
        .await?
        .map(from_row)
        .transpose()
}

pub async fn touch(scope: Scoped<'_>, id: &str, now: i64) -> StoreResult<()> {
    scope
        .update::<session::Entity>()
        .col_expr(session::Column::LastSeenAt, now.into())
        .filter(session::Column::Id.eq(id))
        .exec(scope.db)
        .await?;
    Ok(())
}

/// Whether the session is open, before its absolute expiry and seen since `seen_since`.
pub async fn is_live(scope: Scoped<'_>, id: &str, now: i64, seen_since: i64) -> StoreResult<bool> {
    Ok(scope
        .select::<session::Entity>()
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::EndedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now))
        .filter(session::Column::LastSeenAt.gt(seen_since))
        .one(scope.db)
        .await?
        .is_some())
}

/// Replaces an open session's methods, level and authentication time.
pub async fn set_authentication(scope: Scoped<'_>, id: &str, amr: &[Amr], acr: Acr, auth_time: i64) -> StoreResult<()> {
    scope
        .update::<session::Entity>()
        .col_expr(session::Column::Amr, to_amr_json(amr).into())
        .col_expr(session::Column::Acr, acr.as_str().into())
        .col_expr(session::Column::AuthTime, auth_time.into())
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::EndedAt.is_null())
        .exec(scope.db)
        .await?;
    Ok(())
}

/// The user's live sessions (as [`is_live`]), most recently seen first.
pub async fn live_for_user(scope: Scoped<'_>, user_id: &str, now: i64, seen_since: i64) -> StoreResult<Vec<StoredSession>> {
    scope
        .select::<session::Entity>()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::EndedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now))
        .filter(session::Column::LastSeenAt.gt(seen_since))
        .order_by_desc(session::Column::LastSeenAt)
        .all(scope.db)
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

/// Ends every open session of the user; returns their ids.
pub async fn end_all_for_user(scope: Scoped<'_>, user_id: &str, now: i64) -> StoreResult<Vec<String>> {
    let ids: Vec<String> = scope
        .select::<session::Entity>()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::EndedAt.is_null())
        .all(scope.db)
        .await?
        .into_iter()
        .map(|row| row.id)
        .collect();
    scope
        .update::<session::Entity>()
        .col_expr(session::Column::EndedAt, now.into())
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::EndedAt.is_null())
        .exec(scope.db)
        .await?;
    Ok(ids)
}

/// Ends the session if it is open and, when `user_id` is given, that user's: true if this call ended it.
pub async fn end(scope: Scoped<'_>, id: &str, user_id: Option<&str>, now: i64) -> StoreResult<bool> {
    let mut update = scope
        .update::<session::Entity>()
        .col_expr(session::Column::EndedAt, now.into())
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::EndedAt.is_null());
    if let Some(user_id) = user_id {
        update = update.filter(session::Column::UserId.eq(user_id));
    }
    Ok(update.exec(scope.db).await?.rows_affected == 1)
}
