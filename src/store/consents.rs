//! Remembered consent: one row per user, client and resource key (`consent` decides the key and how
//! approvals merge).

use entity::consent;
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter, QueryOrder};

use super::{Scoped, StoreResult, from_json_list, to_json_list};

pub struct StoredConsent {
    pub client_id: String,
    /// The resource key: the resource URI, or '' for the tenant's own endpoints.
    pub resource: String,
    pub scopes: Vec<String>,
    pub granted_at: i64,
}

fn from_row(row: consent::Model) -> StoreResult<StoredConsent> {
    Ok(StoredConsent {
        scopes: from_json_list(&row.scopes)?,
        client_id: row.client_id,
        resource: row.resource,
        granted_at: row.granted_at,
    })
}

pub async fn find(scope: Scoped<'_>, user_id: &str, client_id: &str, resource: &str) -> StoreResult<Option<StoredConsent>> {
    scope
        .select::<consent::Entity>()
        .filter(consent::Column::UserId.eq(user_id))
        .filter(consent::Column::ClientId.eq(client_id))
        .filter(consent::Column::Resource.eq(resource))
        .one(scope.db)
        .await?
        .map(from_row)
        .transpose()
}

pub async fn insert(scope: Scoped<'_>, id: &str, user_id: &str, client_id: &str, resource: &str, scopes: &[String], now: i64) -> StoreResult<()> {
    let row = consent::ActiveModel {
        id: Set(id.to_owned()),
        user_id: Set(user_id.to_owned()),
        client_id: Set(client_id.to_owned()),
        resource: Set(resource.to_owned()),
        scopes: Set(to_json_list(scopes)),
        granted_at: Set(now),
        ..Default::default()
    };
    scope.insert::<consent::Entity, _>(row).await
}

pub async fn set_scopes(scope: Scoped<'_>, user_id: &str, client_id: &str, resource: &str, scopes: &[String], now: i64) -> StoreResult<()> {
    scope
        .update::<consent::Entity>()
        .col_expr(consent::Column::Scopes, to_json_list(scopes).into())
        .col_expr(consent::Column::GrantedAt, now.into())
        .filter(consent::Column::UserId.eq(user_id))
        .filter(consent::Column::ClientId.eq(client_id))
        .filter(consent::Column::Resource.eq(resource))
        .exec(scope.db)
        .await?;
    Ok(())
}

/// Every approval of the user, most recent first.
pub async fn for_user(scope: Scoped<'_>, user_id: &str) -> StoreResult<Vec<StoredConsent>> {
    scope
        .select::<consent::Entity>()
        .filter(consent::Column::UserId.eq(user_id))
        .order_by_desc(consent::Column::GrantedAt)
        .all(scope.db)
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

/// Deletes the user's approvals of a client, every resource: whether there were any.
pub async fn delete_for_client(scope: Scoped<'_>, user_id: &str, client_id: &str) -> StoreResult<bool> {
    let result = scope
        .delete::<consent::Entity>()
        .filter(consent::Column::UserId.eq(user_id))
        .filter(consent::Column::ClientId.eq(client_id))
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected > 0)
}
