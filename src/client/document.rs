//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; the MCP authorization
//! specification's preferred way for a client to introduce itself): a client whose `client_id` is an
//! https URL is described by the JSON document at that URL.
//!
//! Nothing of such a client is stored. The document is fetched when the client first shows up (through
//! `safe_fetch`, which refuses non-public addresses, other-host redirects, slow and large answers),
//! checked as a registration would be, and cached for `cache_seconds`; after that it is fetched again, so
//! the publisher stays in charge of its redirect URIs. A failure is remembered briefly so that a stream of
//! authorization requests cannot make us fetch a bad URL in a loop, and cache misses are rate-limited
//! per caller address (`Ctx::find_client`), so nobody can use us to send requests to many URLs.
//!
//! Accepted only by tenants whose registration policy is open: a document lets anyone introduce a
//! client, exactly as open registration does.

use std::{sync::Arc, time::Duration};

use serde_json::Value;
use url::Url;

use crate::{
    cache::TtlCache,
    client::Client,
    config::MetadataDocumentConfig,
    client::metadata::{ClientMetadata, SelfDescribed, checked_metadata},
    safe_fetch::{FetchPolicy, SafeFetcher},
    tenant::{RegistrationPolicy, Tenant},
};

/// Longest `client_id` URL accepted: it is stored in grants and consents.
const MAX_URL_LENGTH: usize = 255;
/// How long a failed fetch or an invalid document is remembered.
const FAILURE_TTL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, thiserror::Error)]
pub enum DocumentError {
    #[error("This sign-in service does not accept applications described by a metadata document")]
    NotAccepted,
    #[error("The application's metadata document {0}")]
    Unusable(String),
    #[error("Too many applications were looked up for your address; try again in a minute")]
    TooManyFetches,
}

/// Whether a `client_id` names a metadata document rather than a registered client.
pub fn is_document_client_id(client_id: &str) -> bool {
    client_id.starts_with("https://")
}

/// For a metadata-document `client_id`, the host that publishes the document (consent and account
/// pages name it).
pub fn document_host(client_id: &str) -> Option<String> {
    is_document_client_id(client_id)
        .then(|| Url::parse(client_id).ok()?.host_str().map(str::to_owned))
        .flatten()
}

pub fn accepted_by(tenant: &Tenant) -> bool {
    tenant.registration == RegistrationPolicy::Open
}

pub struct MetadataDocuments {
    fetcher: SafeFetcher,
    clients: TtlCache<String, Client>,
    failures: TtlCache<String, DocumentError>,
}

impl MetadataDocuments {
    pub fn new(config: &MetadataDocumentConfig) -> Result<Self, String> {
        let fetcher = SafeFetcher::new(FetchPolicy::configured(
            config.allow_loopback,
            config.timeout_ms,
            config.max_bytes,
            config.extra_root_certificates.as_deref(),
        )?)?;
        Ok(Self {
            fetcher,
            clients: TtlCache::new(Duration::from_secs(config.cache_seconds)),
            failures: TtlCache::new(FAILURE_TTL),
        })
    }

    /// What is known of `client_id` without fetching: the client, or a recent failure.
    pub fn cached(&self, client_id: &str) -> Option<Result<Arc<Client>, DocumentError>> {
        let key = client_id.to_owned();
        if let Some(client) = self.clients.get(&key) {
            return Some(Ok(client));
        }
        self.failures.get(&key).map(|failure| Err((*failure).clone()))
    }

    /// Fetches, checks and caches the document at `client_id` (a cache miss: see `cached`).
    pub async fn fetch_client(&self, client_id: &str) -> Result<Arc<Client>, DocumentError> {
        let key = client_id.to_owned();
        match self.fetch(client_id).await {
            Ok(client) => {
                let client = Arc::new(client);
                self.clients.put(key, client.clone());
                Ok(client)
            }
            Err(failure) => {
                tracing::info!(client_id, %failure, "client metadata document refused");
                self.failures.put(key, Arc::new(failure.clone()));
                Err(failure)
            }
        }
    }

    async fn fetch(&self, client_id: &str) -> Result<Client, DocumentError> {
        let unusable = |why: String| DocumentError::Unusable(why);
        let url = document_url(client_id).map_err(|why| unusable(why.into()))?;
        let body = self
            .fetcher
            .get(&url, "application/json")
            .await
            .map_err(|e| unusable(format!("at {} {e}", url.host_str().unwrap_or_default())))?;
        parse_document(client_id, &body).map_err(unusable)
    }
}

/// draft-ietf-oauth-client-id-metadata-document §3: an https URL with a path, without fragment,
/// credentials or dot segments.
fn document_url(client_id: &str) -> Result<Url, &'static str> {
    if client_id.len() > MAX_URL_LENGTH {
        return Err("URL is too long");
    }
    let url = Url::parse(client_id).map_err(|_| "URL is not valid")?;
    let dot_segment = client_id.split(['/', '?']).any(|segment| segment == "." || segment == "..");
    if url.scheme() != "https"
        || url.host_str().is_none()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
        || dot_segment
    {
        return Err("URL must be https, without fragment, credentials or dot segments");
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err("URL must have a path");
    }
    Ok(url)
}

/// §4: the document's `client_id` is the URL, by simple string comparison; no shared secret; then the
/// same checks as a dynamic registration, defaulting to a public client.
fn parse_document(client_id: &str, body: &[u8]) -> Result<Client, String> {
    let document: Value = serde_json::from_slice(body).map_err(|_| "is not JSON".to_owned())?;
    let Value::Object(fields) = &document else {
        return Err("is not a JSON object".into());
    };
    if fields.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return Err("does not name this URL as its client_id".into());
    }
    if fields.contains_key("client_secret") || fields.contains_key("client_secret_expires_at") {
        return Err("must not carry a client secret".into());
    }
    let metadata: ClientMetadata =
        serde_json::from_value(document.clone()).map_err(|e| format!("has invalid metadata: {e}"))?;
    if metadata.redirect_uris.is_empty() {
        return Err("lists no redirect_uris".into());
    }
    let (new, kept) = checked_metadata(&metadata, "none", SelfDescribed { client_credentials: false }).map_err(|e| format!("is not acceptable: {e}"))?;
    if new.confidential {
        return Err("asks for a shared-secret authentication method; only \"none\" is possible".into());
    }
    Client::from_metadata_document(client_id.to_owned(), new, kept).map_err(|e| format!("is not acceptable: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://app.example/oauth/client.json";

    fn document(extra: Value) -> Vec<u8> {
        let mut doc = serde_json::json!({
            "client_id": URL,
            "client_name": "Example App",
            "redirect_uris": ["http://127.0.0.1/callback"],
        });
        if let (Value::Object(doc), Value::Object(extra)) = (&mut doc, extra) {
            doc.extend(extra);
        }
        serde_json::to_vec(&doc).expect("json")
    }

    #[test]
    fn urls_must_be_https_with_a_path() {
        assert!(document_url(URL).is_ok());
        for bad in [
            "http://app.example/client.json",
            "https://app.example",
            "https://app.example/",
            "https://app.example/a/../client.json",
            "https://user:pw@app.example/client.json",
            "https://app.example/client.json#x",
        ] {
            assert!(document_url(bad).is_err(), "{bad}");
        }
        assert!(document_url(&format!("https://app.example/{}", "a".repeat(300))).is_err());
    }

    #[test]
    fn a_document_describes_a_public_client() {
        let client = parse_document(URL, &document(serde_json::json!({}))).expect("valid");
        assert!(client.metadata_document && !client.is_confidential() && !client.first_party);
        assert_eq!(client.name, "Example App");
        assert!(client.redirect_uri_registered("http://127.0.0.1:4711/callback"));
        assert_eq!(document_host(&client.client_id).as_deref(), Some("app.example"));
    }

    #[test]
    fn documents_that_do_not_fit_are_refused() {
        let refused = |extra: Value| parse_document(URL, &document(extra)).is_err();
        assert!(refused(serde_json::json!({ "client_id": "https://other.example/client.json" })));
        assert!(refused(serde_json::json!({ "client_secret": "s" })));
        assert!(refused(serde_json::json!({ "token_endpoint_auth_method": "client_secret_basic" })));
        assert!(refused(serde_json::json!({ "redirect_uris": [] })));
        assert!(refused(serde_json::json!({ "redirect_uris": ["https://*.example/cb"] })));
        assert!(refused(serde_json::json!({ "grant_types": ["client_credentials"] })));
        assert!(parse_document(URL, b"[]").is_err());
        assert!(parse_document(URL, b"not json").is_err());
    }
}
