//! End users of a tenant, identified by a verified email address.

use entity::user;
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter};

use crate::{
    crypto,
    store::{Scoped, StoreResult, now},
};

pub use entity::user::Model as User;

/// An email address as Latchkey keeps and compares it: trimmed, lower-cased, a plausible
/// `local@domain` shape (the real check is receiving the code). Users are found by address only
/// through this type, so an address typed in any case, on a page or in the CLI, names one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Option<Self> {
        let email = input.trim().to_lowercase();
        let (local, domain) = email.split_once('@')?;
        let plausible = !local.is_empty()
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && email.len() <= 254
            && !email
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
        plausible.then_some(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Email {
    type Err = String;
    fn from_str(input: &str) -> Result<Self, String> {
        Self::parse(input).ok_or_else(|| format!("{input:?} is not an email address"))
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub async fn find_by_email(scope: Scoped<'_>, email: &Email) -> StoreResult<Option<User>> {
    Ok(scope
        .select::<user::Entity>()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(scope.db)
        .await?)
}

pub async fn find(scope: Scoped<'_>, id: &str) -> StoreResult<Option<User>> {
    Ok(scope
        .select::<user::Entity>()
        .filter(user::Column::Id.eq(id))
        .one(scope.db)
        .await?)
}

/// Returns the user with this (verified) email, creating it if absent. Two nodes racing to create the
/// same user both end up with the row the unique index kept.
pub async fn find_or_create(scope: Scoped<'_>, email: &Email) -> StoreResult<User> {
    if let Some(user) = find_by_email(scope, email).await? {
        return Ok(user);
    }
    let row = user::ActiveModel {
        id: Set(crypto::random_id()),
        tenant_id: Set(String::new()),
        email: Set(email.as_str().to_owned()),
        email_verified: Set(true),
        created_at: Set(now()),
        last_sign_in_at: Set(None),
        disabled_at: Set(None),
        passkey_handle: Set(None),
    };
    if let Err(insert_error) = scope.insert::<user::Entity, _>(row).await {
        return match find_by_email(scope, email).await? {
            Some(user) => Ok(user),
            None => Err(insert_error),
        };
    }
    find_by_email(scope, email)
        .await?
        .ok_or_else(|| crate::store::StoreError::Corrupt("user vanished after insert".into()))
}

pub async fn mark_signed_in(scope: Scoped<'_>, user_id: &str) -> StoreResult<()> {
    scope
        .update::<user::Entity>()
        .col_expr(user::Column::LastSignInAt, now().into())
        .filter(user::Column::Id.eq(user_id))
        .exec(scope.db)
        .await?;
    Ok(())
}

/// The user's WebAuthn user handle, created on first use. A random UUID: the authenticator stores it,
/// so it must not be the user id or anything personal (WebAuthn §14.6.1).
pub async fn passkey_handle(scope: Scoped<'_>, user: &User) -> StoreResult<uuid::Uuid> {
    if let Some(handle) = user.passkey_handle.as_deref().and_then(|h| h.parse().ok()) {
        return Ok(handle);
    }
    let handle = uuid::Uuid::from_bytes(crypto::random_bytes::<16>());
    // Only set when still empty, so two first enrollments racing agree on one handle.
    scope
        .update::<user::Entity>()
        .col_expr(user::Column::PasskeyHandle, handle.to_string().into())
        .filter(user::Column::Id.eq(&user.id))
        .filter(user::Column::PasskeyHandle.is_null())
        .exec(scope.db)
        .await?;
    find(scope, &user.id)
        .await?
        .and_then(|u| u.passkey_handle)
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| crate::store::StoreError::Corrupt("passkey handle not stored".into()))
}

pub async fn find_by_passkey_handle(
    scope: Scoped<'_>,
    handle: &uuid::Uuid,
) -> StoreResult<Option<User>> {
    Ok(scope
        .select::<user::Entity>()
        .filter(user::Column::PasskeyHandle.eq(handle.to_string()))
        .one(scope.db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::Email;
    use entity::user;
    use migration::MigratorTrait;
    use sea_orm::{ActiveValue::Set, EntityTrait, QueryOrder};

    /// Migration 12 lower-cases addresses the CLI stored as typed, except where that would collide.
    #[tokio::test]
    async fn addresses_stored_as_typed_are_lower_cased_once() {
        let db = crate::store::connect("sqlite::memory:", 1).await.expect("db");
        migration::Migrator::up(&db, Some(11)).await.expect("migrations before 12");
        for (id, email) in [("u1", "Mixed.Case@Example.COM"), ("u2", "Dup@Example.com"), ("u3", "dup@example.com")] {
            let row = user::ActiveModel {
                id: Set(id.into()),
                tenant_id: Set("t".into()),
                email: Set(email.into()),
                email_verified: Set(true),
                created_at: Set(0),
                last_sign_in_at: Set(None),
                disabled_at: Set(None),
                passkey_handle: Set(None),
            };
            user::Entity::insert(row).exec_without_returning(&db).await.expect("insert");
        }
        migration::Migrator::up(&db, None).await.expect("migration 12");
        let emails: Vec<String> =
            user::Entity::find().order_by_asc(user::Column::Id).all(&db).await.expect("users").into_iter().map(|u| u.email).collect();
        assert_eq!(emails, ["mixed.case@example.com", "Dup@Example.com", "dup@example.com"]);
    }

    #[test]
    fn addresses_are_kept_in_one_form() {
        for (typed, kept) in [
            ("Mixed.Case@Example.COM", Some("mixed.case@example.com")),
            ("  ada@example.com\t", Some("ada@example.com")),
            ("ada@localhost", None),
            ("ada@@example.com", None),
            ("@example.com", None),
            ("ada@.example.com", None),
            ("a da@example.com", None),
            ("<ada@example.com>", None),
        ] {
            assert_eq!(Email::parse(typed).as_ref().map(Email::as_str), kept, "{typed:?}");
        }
    }
}
