//! Remembered consent: per user + client, the set of scopes the user approved.

use entity::consent;
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter, QueryOrder};

use crate::{
    crypto,
    store::{Scoped, StoreResult, from_json_list, now, to_json_list},
};

pub struct Granted {
    pub scopes: Vec<String>,
    pub granted_at: i64,
}

pub async fn find(
    scope: Scoped<'_>,
    user_id: &str,
    client_id: &str,
) -> StoreResult<Option<Granted>> {
    let row = scope
        .select::<consent::Entity>()
        .filter(consent::Column::UserId.eq(user_id))
        .filter(consent::Column::ClientId.eq(client_id))
        .one(scope.db)
        .await?;
    row.map(|r| {
        Ok(Granted {
            scopes: from_json_list(&r.scopes)?,
            granted_at: r.granted_at,
        })
    })
    .transpose()
}

/// Records approval of `scopes` (merged with what was approved before).
pub async fn grant(
    scope: Scoped<'_>,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
) -> StoreResult<()> {
    let now = now();
    match find(scope, user_id, client_id).await? {
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
                .exec(scope.db)
                .await?;
        }
        None => {
            let row = consent::ActiveModel {
                id: Set(crypto::random_id()),
                tenant_id: Set(String::new()),
                user_id: Set(user_id.to_owned()),
                client_id: Set(client_id.to_owned()),
                scopes: Set(to_json_list(scopes)),
                granted_at: Set(now),
            };
            scope.insert::<consent::Entity, _>(row).await?;
        }
    }
    Ok(())
}

/// Every client the user approved, most recent first.
pub async fn list_for_user(scope: Scoped<'_>, user_id: &str) -> StoreResult<Vec<(String, Granted)>> {
    scope
        .select::<consent::Entity>()
        .filter(consent::Column::UserId.eq(user_id))
        .order_by_desc(consent::Column::GrantedAt)
        .all(scope.db)
        .await?
        .into_iter()
        .map(|r| {
            Ok((
                r.client_id,
                Granted {
                    scopes: from_json_list(&r.scopes)?,
                    granted_at: r.granted_at,
                },
            ))
        })
        .collect()
}

/// Forgets the user's approval of a client: its next authorization asks again.
pub async fn revoke(scope: Scoped<'_>, user_id: &str, client_id: &str) -> StoreResult<bool> {
    let result = scope
        .delete::<consent::Entity>()
        .filter(consent::Column::UserId.eq(user_id))
        .filter(consent::Column::ClientId.eq(client_id))
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected == 1)
}
