//! Signing keys: one row per key, its private key sealed by the caller, its public JWK in clear. A
//! retired key stays published until `publish_until` (`keys` generates, seals and loads them).

use entity::signing_key;
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, QueryFilter, QueryOrder};

use super::{Scoped, StoreResult};

pub use entity::signing_key::Model as SigningKeyRow;

pub struct NewKey<'a> {
    pub kid: &'a str,
    pub alg: &'a str,
    pub sealed_private_key: Vec<u8>,
    pub public_jwk: String,
    pub created_at: i64,
}

pub async fn insert(scope: Scoped<'_>, new: NewKey<'_>) -> StoreResult<()> {
    let row = signing_key::ActiveModel {
        kid: Set(new.kid.to_owned()),
        alg: Set(new.alg.to_owned()),
        sealed_private_key: Set(new.sealed_private_key),
        public_jwk: Set(new.public_jwk),
        created_at: Set(new.created_at),
        retired_at: Set(None),
        publish_until: Set(None),
        ..Default::default()
    };
    scope.insert::<signing_key::Entity, _>(row).await
}

/// Retires every current key, published until `publish_until`, and deletes keys whose publication
/// ended before `now`.
pub async fn retire_current(scope: Scoped<'_>, now: i64, publish_until: i64) -> StoreResult<()> {
    scope
        .update::<signing_key::Entity>()
        .col_expr(signing_key::Column::RetiredAt, now.into())
        .col_expr(signing_key::Column::PublishUntil, publish_until.into())
        .filter(signing_key::Column::RetiredAt.is_null())
        .exec(scope.db)
        .await?;
    scope.delete::<signing_key::Entity>().filter(signing_key::Column::PublishUntil.lt(now)).exec(scope.db).await?;
    Ok(())
}

/// The keys to publish at `now` (current ones and retired ones still in their window), newest first.
pub async fn published(scope: Scoped<'_>, now: i64) -> StoreResult<Vec<SigningKeyRow>> {
    Ok(scope
        .select::<signing_key::Entity>()
        .filter(Condition::any().add(signing_key::Column::RetiredAt.is_null()).add(signing_key::Column::PublishUntil.gt(now)))
        .order_by_desc(signing_key::Column::CreatedAt)
        .all(scope.db)
        .await?)
}
