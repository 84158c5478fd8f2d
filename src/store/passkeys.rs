//! Passkeys and their WebAuthn ceremonies. A credential row holds webauthn-rs's serialised credential;
//! a ceremony row holds the challenge state between the options and the response, taken once by a
//! conditional UPDATE (`passkey` runs the ceremonies).

use entity::{passkey, webauthn_ceremony};
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter, QueryOrder};

use super::{Scoped, StoreResult};

pub use entity::passkey::Model as PasskeyRow;

pub struct NewCeremony<'a> {
    /// SHA-256 of the ceremony id the browser holds.
    pub id_hash: String,
    pub kind: &'a str,
    pub user_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub state: String,
    pub created_at: i64,
    pub expires_at: i64,
}

pub struct TakenCeremony {
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub state: String,
}

pub async fn insert_ceremony(scope: Scoped<'_>, new: NewCeremony<'_>) -> StoreResult<()> {
    let row = webauthn_ceremony::ActiveModel {
        id: Set(new.id_hash),
        kind: Set(new.kind.to_owned()),
        user_id: Set(new.user_id.map(str::to_owned)),
        session_id: Set(new.session_id.map(str::to_owned)),
        state: Set(new.state),
        created_at: Set(new.created_at),
        expires_at: Set(new.expires_at),
        consumed_at: Set(None),
        ..Default::default()
    };
    scope.insert::<webauthn_ceremony::Entity, _>(row).await
}

/// Takes an open ceremony of this kind: exactly one caller gets it; expired, used or unknown is `None`.
pub async fn take_ceremony(scope: Scoped<'_>, id_hash: &str, kind: &str, now: i64) -> StoreResult<Option<TakenCeremony>> {
    let claimed = scope
        .update::<webauthn_ceremony::Entity>()
        .col_expr(webauthn_ceremony::Column::ConsumedAt, now.into())
        .filter(webauthn_ceremony::Column::Id.eq(id_hash))
        .filter(webauthn_ceremony::Column::Kind.eq(kind))
        .filter(webauthn_ceremony::Column::ConsumedAt.is_null())
        .filter(webauthn_ceremony::Column::ExpiresAt.gt(now))
        .exec(scope.db)
        .await?;
    if claimed.rows_affected != 1 {
        return Ok(None);
    }
    Ok(scope
        .select::<webauthn_ceremony::Entity>()
        .filter(webauthn_ceremony::Column::Id.eq(id_hash))
        .one(scope.db)
        .await?
        .map(|row| TakenCeremony { user_id: row.user_id, session_id: row.session_id, state: row.state }))
}

/// The user's passkeys, oldest first.
pub async fn for_user(scope: Scoped<'_>, user_id: &str) -> StoreResult<Vec<PasskeyRow>> {
    Ok(scope
        .select::<passkey::Entity>()
        .filter(passkey::Column::UserId.eq(user_id))
        .order_by_asc(passkey::Column::CreatedAt)
        .all(scope.db)
        .await?)
}

pub async fn find_by_credential_id(scope: Scoped<'_>, credential_id: &str) -> StoreResult<Option<PasskeyRow>> {
    Ok(scope.select::<passkey::Entity>().filter(passkey::Column::CredentialId.eq(credential_id)).one(scope.db).await?)
}

/// Stores a passkey; a credential id already registered in the tenant fails on the unique index.
pub async fn insert(scope: Scoped<'_>, row: PasskeyRow) -> StoreResult<()> {
    scope.insert::<passkey::Entity, _>(row).await
}

/// Records an assertion: the credential webauthn-rs updated (its counter) and when it was used.
pub async fn record_use(scope: Scoped<'_>, id: &str, credential: String, now: i64) -> StoreResult<()> {
    scope
        .update::<passkey::Entity>()
        .col_expr(passkey::Column::Credential, credential.into())
        .col_expr(passkey::Column::LastUsedAt, now.into())
        .filter(passkey::Column::Id.eq(id))
        .exec(scope.db)
        .await?;
    Ok(())
}

/// Renames the user's passkey: whether it is theirs.
pub async fn rename(scope: Scoped<'_>, user_id: &str, id: &str, name: &str) -> StoreResult<bool> {
    let result = scope
        .update::<passkey::Entity>()
        .col_expr(passkey::Column::Name, name.into())
        .filter(passkey::Column::UserId.eq(user_id))
        .filter(passkey::Column::Id.eq(id))
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Removes the user's passkey: whether it was theirs.
pub async fn remove(scope: Scoped<'_>, user_id: &str, id: &str) -> StoreResult<bool> {
    let result = scope
        .delete::<passkey::Entity>()
        .filter(passkey::Column::UserId.eq(user_id))
        .filter(passkey::Column::Id.eq(id))
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected == 1)
}
