//! OpenID Provider metadata (OIDC Discovery 1.0 §3) and OAuth authorization server metadata (RFC 8414).
//! Advertises exactly what is implemented.

use std::sync::Arc;

use bytes::Bytes;
use latchkey_proto::Acr;
use serde_json::{Value, json};

use crate::{
    context::Ctx,
    client::GrantType,
    keys::SigningAlg,
    client::{AuthMethod, PERSON_SCOPES, document},
    oauth::{authorize::PROMPTS, pkce},
    tenant::RegistrationPolicy,
};

/// The tenant's OpenID Provider / authorization server metadata, serialised once per cache period
/// (it depends only on the issuer, the registration policy and the authorization details types,
/// kept beside it so a policy change is seen at once).
pub fn document(ctx: &Ctx<'_>) -> Bytes {
    let registration = ctx.tenant.registration;
    let types = &ctx.tenant.authorization_details_types;
    let cache = &ctx.services.discovery_documents;
    if let Some(cached) = cache.get(ctx.tenant.id.as_str())
        && cached.0 == registration
        && cached.1 == *types
    {
        return cached.2.clone();
    }
    let document = Bytes::from(
        metadata(&ctx.issuer, registration != RegistrationPolicy::Closed, document::accepted_by(&ctx.tenant), types)
            .to_string(),
    );
    cache.put(ctx.tenant.id.clone(), Arc::new((registration, types.clone(), document.clone())));
    document
}

/// What the tenant's registration policy lets in: `registration`, dynamic client registration
/// (RFC 7591); `metadata_documents`, clients identified by the URL of their metadata document;
/// `authorization_details_types`, RFC 9396 §10.
pub fn metadata(issuer: &str, registration: bool, metadata_documents: bool, authorization_details_types: &[String]) -> Value {
    let endpoint = |path: &str| format!("{issuer}/{path}");
    let algs = SigningAlg::ADVERTISED.map(SigningAlg::as_str);
    let auth_methods = AuthMethod::ALL.map(AuthMethod::as_str);
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
        "id_token_signing_alg_values_supported": algs,
        "userinfo_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": AuthMethod::WITH_SECRET.map(AuthMethod::as_str),
        "code_challenge_methods_supported": [pkce::METHOD],
        "prompt_values_supported": PROMPTS,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid",
            "at_hash", "email", "email_verified", "name", "given_name", "family_name", "preferred_username",
            "locale", "zoneinfo", "picture", "updated_at"],
        // The claims parameter: `acr` (docs/acr.md) and, in the ID token, the claims above by name.
        "claims_parameter_supported": true,
        "acr_values_supported": Acr::REQUESTABLE,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        // OpenID CIBA Core §4, poll mode only; approvals are confirmed with a passkey, no user code.
        "device_authorization_endpoint": endpoint("device_authorization"),
        "backchannel_authentication_endpoint": endpoint("bc-authorize"),
        "backchannel_token_delivery_modes_supported": ["poll"],
        "backchannel_user_code_parameter_supported": false,
        "authorization_details_types_supported": authorization_details_types,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(document: &Value, field: &str) -> Vec<String> {
        let values = document[field].as_array().unwrap_or_else(|| panic!("{field} is a list"));
        values.iter().map(|v| v.as_str().expect("a string").to_owned()).collect()
    }

    /// Each advertised value is one the code that handles it accepts: the lists come from the types
    /// those parsers use, so a value cannot be advertised without being served.
    #[test]
    fn every_advertised_value_is_one_the_server_accepts() {
        let document = metadata("https://id.example/t/acme", true, true, &["tool_call".to_owned()]);
        for alg in strings(&document, "id_token_signing_alg_values_supported") {
            assert!(alg.parse::<SigningAlg>().is_ok(), "{alg}");
        }
        assert_eq!(document["id_token_signing_alg_values_supported"], document["userinfo_signing_alg_values_supported"]);
        let mut advertised = SigningAlg::ADVERTISED.to_vec();
        advertised.sort_by_key(|a| a.as_str());
        let mut all = SigningAlg::ALL.to_vec();
        all.sort_by_key(|a| a.as_str());
        assert_eq!(advertised, all, "every algorithm is advertised, and only those");
        for field in ["token_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"] {
            let methods = strings(&document, field);
            assert!(methods.iter().all(|m| AuthMethod::parse(m).is_some()), "{field}: {methods:?}");
        }
        let introspection = strings(&document, "introspection_endpoint_auth_methods_supported");
        assert!(introspection.iter().all(|m| AuthMethod::parse(m).is_some_and(AuthMethod::uses_secret)), "{introspection:?}");
        for grant in strings(&document, "grant_types_supported") {
            assert!(GrantType::parse(&grant).is_some(), "{grant}");
        }
        for acr in strings(&document, "acr_values_supported") {
            assert!(Acr::parse(&acr).is_some_and(|a| a.rank().is_some()), "{acr}");
        }
        assert_eq!(strings(&document, "code_challenge_methods_supported"), ["S256"], "PKCE with S256 only");
        assert_eq!(strings(&document, "prompt_values_supported"), ["none", "login", "consent"]);
        assert!(metadata("https://id.example/t/acme", false, false, &[]).get("registration_endpoint").is_none());
        assert_eq!(strings(&document, "backchannel_token_delivery_modes_supported"), ["poll"]);
        assert_eq!(strings(&document, "authorization_details_types_supported"), ["tool_call"]);
        assert!(GrantType::parse(crate::client::GrantType::Ciba.as_str()).is_some());
    }
}
