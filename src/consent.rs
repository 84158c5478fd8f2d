//! Remembered consent: per user, client and resource, the set of scopes the user approved. The
//! resource is part of the key (RFC 8707): approving `files:read` for one resource says nothing about
//! another resource that happens to use the same scope name.

use entity::consent;
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter, QueryOrder};

use crate::{
    crypto,
    store::{Scoped, StoreResult, from_json_list, now, to_json_list},
};

/// The tenant's own endpoints (no `resource`) are stored as ''.
fn key(resource: Option<&str>) -> &str {
    resource.unwrap_or("")
}

pub struct Granted {
    /// The resource the scopes were approved for; `None`: the tenant's own endpoints.
    pub resource: Option<String>,
    pub scopes: Vec<String>,
    pub granted_at: i64,
}

fn from_row(row: consent::Model) -> StoreResult<Granted> {
    Ok(Granted {
        resource: (!row.resource.is_empty()).then_some(row.resource),
        scopes: from_json_list(&row.scopes)?,
        granted_at: row.granted_at,
    })
}

pub async fn find(scope: Scoped<'_>, user_id: &str, client_id: &str, resource: Option<&str>) -> StoreResult<Option<Granted>> {
    let row = scope
        .select::<consent::Entity>()
        .filter(consent::Column::UserId.eq(user_id))
        .filter(consent::Column::ClientId.eq(client_id))
        .filter(consent::Column::Resource.eq(key(resource)))
        .one(scope.db)
        .await?;
    row.map(from_row).transpose()
}

/// Records approval of `scopes` for `resource` (merged with what was approved for it before).
pub async fn grant(scope: Scoped<'_>, user_id: &str, client_id: &str, resource: Option<&str>, scopes: &[String]) -> StoreResult<()> {
    let now = now();
    match find(scope, user_id, client_id, resource).await? {
        Some(existing) => {
            let mut merged = existing.scopes;
            for s in scopes {
                if !merged.contains(s) {
                    merged.push(s.clone());
                }
            }
            scope
                .update::<consent::Entity>()
                .col_expr(consent::Column::Scopes, to_json_list(&merged).into())
                .col_expr(consent::Column::GrantedAt, now.into())
                .filter(consent::Column::UserId.eq(user_id))
                .filter(consent::Column::ClientId.eq(client_id))
                .filter(consent::Column::Resource.eq(key(resource)))
                .exec(scope.db)
                .await?;
        }
        None => {
            let row = consent::ActiveModel {
                id: Set(crypto::random_id()),
                user_id: Set(user_id.to_owned()),
                client_id: Set(client_id.to_owned()),
                resource: Set(key(resource).to_owned()),
                scopes: Set(to_json_list(scopes)),
                granted_at: Set(now),
                ..Default::default()
            };
            scope.insert::<consent::Entity, _>(row).await?;
        }
    }
    Ok(())
}

/// Every approval the user gave, most recent first: (client id, what was approved).
pub async fn list_for_user(scope: Scoped<'_>, user_id: &str) -> StoreResult<Vec<(String, Granted)>> {
    scope
        .select::<consent::Entity>()
        .filter(consent::Column::UserId.eq(user_id))
        .order_by_desc(consent::Column::GrantedAt)
        .all(scope.db)
        .await?
        .into_iter()
        .map(|row| Ok((row.client_id.clone(), from_row(row)?)))
        .collect()
}

/// Forgets the user's approvals of a client, for every resource: its next authorization asks again.
pub async fn revoke(scope: Scoped<'_>, user_id: &str, client_id: &str) -> StoreResult<bool> {
    let result = scope
        .delete::<consent::Entity>()
        .filter(consent::Column::UserId.eq(user_id))
        .filter(consent::Column::ClientId.eq(client_id))
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected > 0)
}
