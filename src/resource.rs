//! Protected resources a tenant registers (RFC 8707): the URL clients name in `resource`, which
//! becomes the access token's `aud`, the scopes a token for it may carry, and whether it needs a
//! phishing-resistant sign-in. An unregistered resource is refused with `invalid_target`.

use entity::resource;
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter, QueryOrder};
use url::Url;

use crate::{
    client::valid_scope_token,
    crypto,
    oauth::error::{ErrorCode, OAuthError},
    store::{Scoped, StoreError, StoreResult, from_json_list, now, to_json_list},
};

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
}

impl Resource {
    /// Whether a token without a person (client credentials, an exchanged agent token) may name it.
    pub fn admits_machines(&self) -> bool {
        !self.step_up || self.accepts_agents
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("resource {0:?} must be an absolute https URI (http only on localhost) without a fragment")]
    InvalidUri(String),
    #[error("invalid scope {0:?}")]
    InvalidScope(String),
    #[error("resource {0:?} is already registered")]
    Exists(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// RFC 8707 §2: an absolute URI without a fragment. We also require https (http for loopback
/// development), since the value is an audience that tokens are sent to.
pub fn valid_uri(uri: &str) -> bool {
    let Ok(parsed) = Url::parse(uri) else { return false };
    let loopback = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    parsed.fragment().is_none()
        && parsed.host().is_some()
        && (parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback))
}

fn from_row(row: resource::Model) -> StoreResult<Resource> {
    Ok(Resource {
        scopes: from_json_list(&row.scopes)?,
        uri: row.uri,
        name: row.name,
        step_up: row.step_up,
        accepts_agents: row.accepts_agents,
    })
}

pub async fn find(scope: Scoped<'_>, uri: &str) -> StoreResult<Option<Resource>> {
    scope
        .select::<resource::Entity>()
        .filter(resource::Column::Uri.eq(uri))
        .one(scope.db)
        .await?
        .map(from_row)
        .transpose()
}

/// The registered resource a request names, or the RFC 8707 `invalid_target` error.
pub async fn requested(scope: Scoped<'_>, uri: &str) -> Result<Resource, OAuthError> {
    if !valid_uri(uri) {
        return Err(OAuthError::new(ErrorCode::InvalidTarget, "resource must be an absolute https URI without a fragment"));
    }
    find(scope, uri)
        .await?
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidTarget, "this resource is not registered here"))
}

pub async fn list(scope: Scoped<'_>) -> StoreResult<Vec<Resource>> {
    scope
        .select::<resource::Entity>()
        .order_by_asc(resource::Column::Uri)
        .all(scope.db)
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

pub async fn create(scope: Scoped<'_>, new: Resource) -> Result<Resource, ResourceError> {
    if !valid_uri(&new.uri) {
        return Err(ResourceError::InvalidUri(new.uri));
    }
    if let Some(bad) = new.scopes.iter().find(|s| !valid_scope_token(s)) {
        return Err(ResourceError::InvalidScope(bad.clone()));
    }
    if find(scope, &new.uri).await?.is_some() {
        return Err(ResourceError::Exists(new.uri));
    }
    let row = resource::ActiveModel {
        id: Set(crypto::random_id()),
        tenant_id: Set(String::new()),
        uri: Set(new.uri.clone()),
        name: Set(new.name.clone()),
        scopes: Set(to_json_list(&new.scopes)),
        step_up: Set(new.step_up),
        accepts_agents: Set(new.accepts_agents),
        created_at: Set(now()),
    };
    scope.insert::<resource::Entity, _>(row).await?;
    Ok(new)
}

pub async fn delete(scope: Scoped<'_>, uri: &str) -> StoreResult<bool> {
    let result = scope
        .delete::<resource::Entity>()
        .filter(resource::Column::Uri.eq(uri))
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected > 0)
}

#[cfg(test)]
mod tests {
    use super::valid_uri;

    #[test]
    fn resource_uris() {
        assert!(valid_uri("https://mcp.example.com/mcp"));
        assert!(valid_uri("http://localhost:8787/mcp"));
        assert!(!valid_uri("http://mcp.example.com/mcp"));
        assert!(!valid_uri("https://mcp.example.com/mcp#x"));
        assert!(!valid_uri("/mcp"));
        assert!(!valid_uri("urn:example:api"));
    }
}
