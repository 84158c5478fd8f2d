//! Protected resources: one row per registered URI (`resource` checks what a registration may hold
//! and how URIs compare).

use entity::resource;
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter, QueryOrder};

use super::{Scoped, StoreResult, from_json_list, to_json_list};

/// A registered protected resource (RFC 8707): the URI clients name in `resource`, which becomes the
/// access token's `aud`, its scopes, and whether it needs a phishing-resistant sign-in.
#[derive(Debug, Clone)]
pub struct Resource {
    pub uri: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// Tokens for this resource need acr `phr` (a passkey assertion).
    pub step_up: bool,
    /// A step-up resource that nevertheless accepts machine tokens (client credentials, agent-token
    /// exchange). Without it, a step-up resource is for people only: a machine cannot show a passkey.
    pub accepts_agents: bool,
    /// What a request naming this resource without a `scope` is granted; `None`: all its scopes.
    pub default_scopes: Option<Vec<String>>,
}

fn from_row(row: resource::Model) -> StoreResult<Resource> {
    Ok(Resource {
        default_scopes: row.default_scopes.as_deref().map(from_json_list).transpose()?,
        scopes: from_json_list(&row.scopes)?,
        uri: row.uri,
        name: row.name,
        step_up: row.step_up,
        accepts_agents: row.accepts_agents,
    })
}

/// The resource registered under exactly this spelling.
pub async fn find_exact(scope: Scoped<'_>, uri: &str) -> StoreResult<Option<Resource>> {
    scope.select::<resource::Entity>().filter(resource::Column::Uri.eq(uri)).one(scope.db).await?.map(from_row).transpose()
}

/// Every resource of the tenant, by URI.
pub async fn all(scope: Scoped<'_>) -> StoreResult<Vec<Resource>> {
    scope
        .select::<resource::Entity>()
        .order_by_asc(resource::Column::Uri)
        .all(scope.db)
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

pub async fn insert(scope: Scoped<'_>, id: &str, new: &Resource, now: i64) -> StoreResult<()> {
    let row = resource::ActiveModel {
        id: Set(id.to_owned()),
        uri: Set(new.uri.clone()),
        name: Set(new.name.clone()),
        scopes: Set(to_json_list(&new.scopes)),
        step_up: Set(new.step_up),
        accepts_agents: Set(new.accepts_agents),
        default_scopes: Set(new.default_scopes.as_deref().map(to_json_list)),
        created_at: Set(now),
        ..Default::default()
    };
    scope.insert::<resource::Entity, _>(row).await
}

/// Deletes the resource registered under exactly this spelling: whether there was one.
pub async fn delete(scope: Scoped<'_>, uri: &str) -> StoreResult<bool> {
    let result = scope.delete::<resource::Entity>().filter(resource::Column::Uri.eq(uri)).exec(scope.db).await?;
    Ok(result.rows_affected > 0)
}
