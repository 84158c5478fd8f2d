//! Authenticator apps: at most one row per user, the secret sealed by the caller. Confirming and
//! spending a code are conditional UPDATEs, so a code is accepted once however many requests race
//! (`totp` checks the codes).

use entity::totp_authenticator;
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, QueryFilter};

use super::{Scoped, StoreResult};

pub struct StoredAuthenticator {
    pub id: String,
    pub sealed_secret: Vec<u8>,
    pub confirmed_at: Option<i64>,
}

pub async fn find(scope: Scoped<'_>, user_id: &str) -> StoreResult<Option<StoredAuthenticator>> {
    Ok(scope
        .select::<totp_authenticator::Entity>()
        .filter(totp_authenticator::Column::UserId.eq(user_id))
        .one(scope.db)
        .await?
        .map(|row| StoredAuthenticator { id: row.id, sealed_secret: row.sealed_secret, confirmed_at: row.confirmed_at }))
}

/// Stores a pending (unconfirmed) app.
pub async fn insert_pending(scope: Scoped<'_>, id: &str, user_id: &str, sealed_secret: Vec<u8>, now: i64) -> StoreResult<()> {
    let row = totp_authenticator::ActiveModel {
        id: Set(id.to_owned()),
        user_id: Set(user_id.to_owned()),
        sealed_secret: Set(sealed_secret),
        created_at: Set(now),
        confirmed_at: Set(None),
        last_used_step: Set(None),
        ..Default::default()
    };
    scope.insert::<totp_authenticator::Entity, _>(row).await
}

/// Confirms a pending app, spending `step`: true for the one caller that confirmed it.
pub async fn confirm(scope: Scoped<'_>, id: &str, step: i64, now: i64) -> StoreResult<bool> {
    let result = scope
        .update::<totp_authenticator::Entity>()
        .col_expr(totp_authenticator::Column::ConfirmedAt, now.into())
        .col_expr(totp_authenticator::Column::LastUsedStep, step.into())
        .filter(totp_authenticator::Column::Id.eq(id))
        .filter(totp_authenticator::Column::ConfirmedAt.is_null())
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Spends `step` of a confirmed app if no step as late was spent: true for one caller per step, and
/// never for an older step.
pub async fn spend_step(scope: Scoped<'_>, id: &str, step: i64) -> StoreResult<bool> {
    let result = scope
        .update::<totp_authenticator::Entity>()
        .col_expr(totp_authenticator::Column::LastUsedStep, step.into())
        .filter(totp_authenticator::Column::Id.eq(id))
        .filter(totp_authenticator::Column::ConfirmedAt.is_not_null())
        .filter(
            Condition::any()
                .add(totp_authenticator::Column::LastUsedStep.is_null())
                .add(totp_authenticator::Column::LastUsedStep.lt(step)),
        )
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Removes the user's app, pending or confirmed: whether there was one.
pub async fn remove(scope: Scoped<'_>, user_id: &str) -> StoreResult<bool> {
    let result = scope
        .delete::<totp_authenticator::Entity>()
        .filter(totp_authenticator::Column::UserId.eq(user_id))
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected > 0)
}
