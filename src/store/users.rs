//! People: one row per user of a tenant, unique by (tenant, email). The row type is the person as the
//! domain reads it (`user::User`).

use entity::user;
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter};

use super::{Scoped, StoreError, StoreResult};

pub use entity::user::Model as UserRow;

/// The standard profile claims (OIDC Core §5.1) a person has. Each is optional: filled by the person
/// (their name, on the account page), an operator, or later single sign-on and provisioning. Stored
/// as `user::Profile::checked` left them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub preferred_username: Option<String>,
    pub locale: Option<String>,
    pub zoneinfo: Option<String>,
    pub picture: Option<String>,
}

pub async fn find(scope: Scoped<'_>, id: &str) -> StoreResult<Option<UserRow>> {
    Ok(scope.select::<user::Entity>().filter(user::Column::Id.eq(id)).one(scope.db).await?)
}

pub async fn find_by_email(scope: Scoped<'_>, email: &str) -> StoreResult<Option<UserRow>> {
    Ok(scope.select::<user::Entity>().filter(user::Column::Email.eq(email)).one(scope.db).await?)
}

pub async fn find_by_passkey_handle(scope: Scoped<'_>, handle: &str) -> StoreResult<Option<UserRow>> {
    Ok(scope.select::<user::Entity>().filter(user::Column::PasskeyHandle.eq(handle)).one(scope.db).await?)
}

/// The user with this (verified) email, created with `id` if absent. Two nodes racing to create the
/// same user both end up with the row the unique index kept.
pub async fn find_or_insert(scope: Scoped<'_>, id: &str, email: &str, now: i64) -> StoreResult<UserRow> {
    if let Some(user) = find_by_email(scope, email).await? {
        return Ok(user);
    }
    let row = user::ActiveModel {
        id: Set(id.to_owned()),
        email: Set(email.to_owned()),
        email_verified: Set(true),
        created_at: Set(now),
        last_sign_in_at: Set(None),
        disabled_at: Set(None),
        passkey_handle: Set(None),
        ..Default::default()
    };
    if let Err(insert_error) = scope.insert::<user::Entity, _>(row).await {
        return match find_by_email(scope, email).await? {
            Some(user) => Ok(user),
            None => Err(insert_error),
        };
    }
    find_by_email(scope, email).await?.ok_or_else(|| StoreError::Corrupt("user vanished after insert".into()))
}

/// Replaces the profile and records when it changed: whether the user exists.
pub async fn set_profile(scope: Scoped<'_>, id: &str, profile: Profile, now: i64) -> StoreResult<bool> {
    let result = scope
        .update::<user::Entity>()
        .col_expr(user::Column::Name, profile.name.into())
        .col_expr(user::Column::GivenName, profile.given_name.into())
        .col_expr(user::Column::FamilyName, profile.family_name.into())
        .col_expr(user::Column::PreferredUsername, profile.preferred_username.into())
        .col_expr(user::Column::Locale, profile.locale.into())
        .col_expr(user::Column::Zoneinfo, profile.zoneinfo.into())
        .col_expr(user::Column::Picture, profile.picture.into())
        .col_expr(user::Column::UpdatedAt, now.into())
        .filter(user::Column::Id.eq(id))
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Disables the account (`Some(at)`) unless it already is, or enables it (`None`) if it is
/// disabled; returns whether this call changed it (of two racing callers, one did).
pub async fn set_disabled(scope: Scoped<'_>, id: &str, disabled_at: Option<i64>) -> StoreResult<bool> {
    let update = scope.update::<user::Entity>().col_expr(user::Column::DisabledAt, disabled_at.into()).filter(user::Column::Id.eq(id));
    let update = match disabled_at {
        Some(_) => update.filter(user::Column::DisabledAt.is_null()),
        None => update.filter(user::Column::DisabledAt.is_not_null()),
    };
    Ok(update.exec(scope.db).await?.rows_affected == 1)
}

pub async fn set_last_sign_in(scope: Scoped<'_>, id: &str, now: i64) -> StoreResult<()> {
    scope
        .update::<user::Entity>()
        .col_expr(user::Column::LastSignInAt, now.into())
        .filter(user::Column::Id.eq(id))
        .exec(scope.db)
        .await?;
    Ok(())
}

/// Sets the passkey handle only while it is empty, so racing first enrollments agree on one.
pub async fn set_passkey_handle_once(scope: Scoped<'_>, id: &str, handle: &str) -> StoreResult<()> {
    scope
        .update::<user::Entity>()
        .col_expr(user::Column::PasskeyHandle, handle.into())
        .filter(user::Column::Id.eq(id))
        .filter(user::Column::PasskeyHandle.is_null())
        .exec(scope.db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
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
                ..Default::default()
            };
            user::Entity::insert(row).exec_without_returning(&db).await.expect("insert");
        }
        migration::Migrator::up(&db, None).await.expect("migration 12");
        let emails: Vec<String> =
            user::Entity::find().order_by_asc(user::Column::Id).all(&db).await.expect("users").into_iter().map(|u| u.email).collect();
        assert_eq!(emails, ["mixed.case@example.com", "Dup@Example.com", "dup@example.com"]);
    }
}
