//! Tenants: one row per issuer, holding its data key wrapped by the master key. Not tenant-scoped (a
//! tenant is the scope); `tenant` unwraps the key and decides what a slug may be.

use entity::tenant;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder};

use super::StoreResult;

pub use entity::tenant::Model as TenantRow;

/// One setting of a tenant's policy.
#[derive(Debug, Clone, Copy)]
pub enum Setting<'a> {
    RequireTotp(bool),
    RegistrationClientCredentials(bool),
    RegistrationPolicy(&'a str),
    /// A JSON list of type names.
    AuthorizationDetailsTypes(&'a str),
}

pub async fn find_by_slug(db: &DatabaseConnection, slug: &str) -> StoreResult<Option<TenantRow>> {
    Ok(tenant::Entity::find().filter(tenant::Column::Slug.eq(slug)).one(db).await?)
}

/// Every tenant, by slug.
pub async fn all(db: &DatabaseConnection) -> StoreResult<Vec<TenantRow>> {
    Ok(tenant::Entity::find().order_by_asc(tenant::Column::Slug).all(db).await?)
}

/// Changes one setting of the tenant with this slug: whether there is one.
pub async fn set(db: &DatabaseConnection, slug: &str, setting: Setting<'_>) -> StoreResult<bool> {
    let update = tenant::Entity::update_many().filter(tenant::Column::Slug.eq(slug));
    let update = match setting {
        Setting::RequireTotp(required) => update.col_expr(tenant::Column::RequireTotp, required.into()),
        Setting::RegistrationClientCredentials(allowed) => {
            update.col_expr(tenant::Column::RegistrationClientCredentials, allowed.into())
        }
        Setting::RegistrationPolicy(policy) => update.col_expr(tenant::Column::RegistrationPolicy, policy.into()),
        Setting::AuthorizationDetailsTypes(types) => update.col_expr(tenant::Column::AuthorizationDetailsTypes, types.into()),
    };
    Ok(update.exec(db).await?.rows_affected == 1)
}

/// Stores a tenant; a slug already taken fails on the unique index.
pub async fn insert(db: &DatabaseConnection, row: TenantRow) -> StoreResult<()> {
    tenant::Entity::insert(row.into_active_model()).exec_without_returning(db).await?;
    Ok(())
}
