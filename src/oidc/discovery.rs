//! OpenID Provider metadata (OIDC Discovery 1.0 §3) and OAuth authorization server metadata (RFC 8414).
//! Advertises exactly what is implemented.

use std::sync::Arc;

use bytes::Bytes;
use latchkey_proto::Acr;
use serde_json::{Value, json};

use crate::{
    app::Ctx,
    client::GrantType,
    oauth::{metadata_document, scope::PERSON_SCOPES},
    tenant::RegistrationPolicy,
};

/// The tenant's OpenID Provider / authorization server metadata, serialised once per cache period
/// (it depends only on the issuer and the registration policy, kept beside it so a policy change is
/// seen at once).
pub fn document(ctx: &Ctx<'_>) -> Bytes {
    let registration = ctx.tenant.registration;
    let cache = &ctx.app.discovery_documents;
    if let Some(cached) = cache.get(ctx.tenant.id.as_str())
        && cached.0 == registration
    {
        return cached.1.clone();
    }
    let document = Bytes::from(
        metadata(&ctx.issuer, registration != RegistrationPolicy::Closed, metadata_document::accepted_by(&ctx.tenant))
            .to_string(),
    );
    cache.put(ctx.tenant.id.clone(), Arc::new((registration, document.clone())));
    document
}

/// What the tenant's registration policy lets in: `registration`, dynamic client registration
/// (RFC 7591); `metadata_documents`, clients identified by the URL of their metadata document.
pub fn metadata(issuer: &str, registration: bool, metadata_documents: bool) -> Value {
    let endpoint = |path: &str| format!("{issuer}/{path}");
    let mut metadata = json!({
        "issuer": issuer,
        "authorization_endpoint": endpoint("authorize"),
        "token_endpoint": endpoint("token"),
        "userinfo_endpoint": endpoint("userinfo"),
        "jwks_uri": endpoint("jwks"),
        "revocation_endpoint": endpoint("revoke"),
        "introspection_endpoint": endpoint("introspect"),
        "end_session_endpoint": endpoint("logout"),
        // The person's scopes; a resource's own scopes are in its protected resource metadata (RFC 9728).
        "scopes_supported": PERSON_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GrantType::ALL.map(GrantType::as_str),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "userinfo_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid",
            "at_hash", "email", "email_verified", "name", "given_name", "family_name", "preferred_username",
            "locale", "zoneinfo", "picture", "updated_at"],
        // The claims parameter: `acr` (docs/acr.md) and, in the ID token, the claims above by name.
        "claims_parameter_supported": true,
        "acr_values_supported": Acr::REQUESTABLE,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    });
    if registration {
        metadata["registration_endpoint"] = json!(endpoint("register"));
    }
    if metadata_documents {
        // draft-ietf-oauth-client-id-metadata-document §5.
        metadata["client_id_metadata_document_supported"] = json!(true);
    }
    metadata
}
