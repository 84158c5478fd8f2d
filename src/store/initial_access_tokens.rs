//! Initial access tokens (RFC 7591 §3.1) for the `token` registration policy: the SHA-256 of each
//! token and its display prefix, never the token.

use entity::initial_access_token;
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter};

use super::{Scoped, StoreResult};

pub async fn insert(scope: Scoped<'_>, token_hash: String, prefix: String, now: i64, expires_at: i64) -> StoreResult<()> {
    let row = initial_access_token::ActiveModel {
        token_hash: Set(token_hash),
        prefix: Set(prefix),
        created_at: Set(now),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        ..Default::default()
    };
    scope.insert::<initial_access_token::Entity, _>(row).await
}

/// Whether a token with this hash exists, unrevoked and unexpired at `now`.
pub async fn is_valid(scope: Scoped<'_>, token_hash: &str, now: i64) -> StoreResult<bool> {
    let row = scope
        .select::<initial_access_token::Entity>()
        .filter(initial_access_token::Column::TokenHash.eq(token_hash))
        .filter(initial_access_token::Column::RevokedAt.is_null())
        .filter(initial_access_token::Column::ExpiresAt.gt(now))
        .one(scope.db)
        .await?;
    Ok(row.is_some())
}
