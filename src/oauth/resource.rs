//! Protected resources a tenant registers (RFC 8707): the URL clients name in `resource`, which
//! becomes the access token's `aud`, the scopes a token for it may carry, and whether it needs a
//! phishing-resistant sign-in. An unregistered resource is refused with `invalid_target`.

use url::Url;

use crate::{
    client::valid_scope_token,
    crypto,
    oauth::error::{ErrorCode, OAuthError},
    store::{Scoped, StoreError, StoreResult, now, resources},
};

pub use crate::store::resources::Resource;

impl Resource {
    /// The scopes granted when a request names this resource and no scope.
    pub fn defaults(&self) -> &[String] {
        self.default_scopes.as_deref().unwrap_or(&self.scopes)
    }

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
    #[error("default scope {0:?} is not one of the resource's scopes")]
    UnknownDefault(String),
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

/// The form two spellings of one resource share: scheme and host lower-cased and a default port
/// dropped (both by the URL parser, RFC 3986 §6.2.2–6.2.3), and no trailing slash on a non-root path,
/// so `https://MCP.example.com:443/mcp/` names `https://mcp.example.com/mcp`.
pub fn canonical(uri: &str) -> Option<String> {
    let mut url = Url::parse(uri).ok()?;
    let path = url.path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/').to_owned();
        url.set_path(if trimmed.is_empty() { "/" } else { &trimmed });
    }
    Some(url.to_string())
}

/// Whether two resource values name the same resource (`canonical`); two absent ones do too.
pub fn same(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a == b || (canonical(a).is_some() && canonical(a) == canonical(b)),
        _ => false,
    }
}

/// The registered resource `uri` names, spelled as registered or in any equivalent form
/// (`canonical`). The resource keeps its registered spelling: it is the tokens' `aud`.
pub async fn find(scope: Scoped<'_>, uri: &str) -> StoreResult<Option<Resource>> {
    // The spelling clients copy from the resource's metadata, answered by the index.
    if let Some(exact) = resources::find_exact(scope, uri).await? {
        return Ok(Some(exact));
    }
    // Otherwise compare canonical forms. A tenant has few resources (operators register them), and
    // this runs only for a spelling that missed.
    let Some(wanted) = canonical(uri) else { return Ok(None) };
    Ok(list(scope).await?.into_iter().find(|r| canonical(&r.uri).as_deref() == Some(wanted.as_str())))
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
    resources::all(scope).await
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
    if let Some(bad) = new.default_scopes.iter().flatten().find(|s| !new.scopes.contains(s)) {
        return Err(ResourceError::UnknownDefault(bad.clone()));
    }
    resources::insert(scope, &crypto::random_id(), &new, now()).await?;
    Ok(new)
}

pub async fn delete(scope: Scoped<'_>, uri: &str) -> StoreResult<bool> {
    resources::delete(scope, uri).await
}

#[cfg(test)]
mod tests {
    use super::{canonical, valid_uri};

    #[test]
    fn spellings_of_one_resource() {
        let same = [
            "https://mcp.example.com/mcp",
            "https://MCP.Example.com/mcp",
            "HTTPS://mcp.example.com/mcp",
            "https://mcp.example.com:443/mcp",
            "https://mcp.example.com/mcp/",
        ];
        for uri in same {
            assert_eq!(canonical(uri).as_deref(), Some("https://mcp.example.com/mcp"), "{uri}");
        }
        assert_eq!(canonical("https://api.example.com").as_deref(), Some("https://api.example.com/"));
        assert_eq!(canonical("https://api.example.com/").as_deref(), Some("https://api.example.com/"));
        // Paths are case-sensitive (RFC 3986 §6.2.2.1), and another port is another resource.
        assert_ne!(canonical("https://mcp.example.com/MCP"), canonical("https://mcp.example.com/mcp"));
        assert_ne!(canonical("https://mcp.example.com:8443/mcp"), canonical("https://mcp.example.com/mcp"));
    }

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
