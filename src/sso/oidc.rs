//! The OpenID Connect relying party Latchkey is to an organization's identity provider (the
//! `openidconnect` crate): discovery, the authorization request (code + PKCE S256 + nonce + state),
//! the code exchange and ID-token validation, then what the token says about the person in
//! protocol-neutral terms (`IdpIdentity`). Everything here talks to the IdP through `SafeFetcher`
//! (https, public addresses, time and size limits) and knows nothing of storage.
//!
//! The issuer rule (OIDC Core §3.1.3.7 item 2): the `iss` of every ID token equals the discovery
//! document's issuer exactly. Microsoft Entra's multi-tenant documents (`/common`, `/organizations`)
//! publish the template `https://login.microsoftonline.com/{tenantid}/v2.0`; such a document is used
//! only by a connection that lists the directories it accepts, and a token's `iss` must then be the
//! template with the token's own `tid` substituted, that `tid` on the list — never the literal
//! template, never a `tid` the administrator did not name.

use std::{sync::Arc, time::Duration};

use latchkey_proto::{Amr, Secret};
use openidconnect::{
    AdditionalClaims, AuthenticationFlow, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardErrorResponse, StandardTokenResponse, TokenResponse,
    core::{
        CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey, CoreJsonWebKeySet,
        CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken,
        CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
    },
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{
    IdpIdentity,
    connection::{Flavor, OidcSettings},
};
use crate::{
    cache::TtlCache,
    crypto,
    safe_fetch::{FetchError, SafeFetcher},
};

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider's {what} could not be fetched: {error}")]
    Fetch { what: &'static str, error: FetchError },
    #[error("the identity provider's {0} is not valid")]
    Malformed(&'static str),
    #[error("the discovery document names issuer {found:?}, not {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("the identity provider refused the code: {0}")]
    Exchange(String),
    #[error("the identity provider returned no ID token")]
    NoIdToken,
    #[error("the ID token is not valid: {0}")]
    IdToken(String),
    #[error("the ID token's issuer {0:?} is not one this connection accepts")]
    Issuer(String),
    #[error("the ID token's directory (tid) {0:?} is not one this connection accepts")]
    Tenant(String),
    #[error("the ID token's hosted domain (hd) is {0:?}, not this organization's")]
    HostedDomain(String),
    #[error("the ID token lacks the claim {0}")]
    MissingClaim(&'static str),
}

/// Claims beyond OIDC Core that decide identity and linking (Entra: `tid`, `oid`, `xms_edov`;
/// Google: `hd`), and groups or app roles for role mapping.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdpClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    /// Entra: the email's domain is verified by the directory's owner (boolean; some tenants send it
    /// as a string or number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xms_edov: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

impl AdditionalClaims for IdpClaims {}

type IdpTokenResponse = StandardTokenResponse<
    IdTokenFields<IdpClaims, EmptyExtraTokenFields, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>,
    CoreTokenType,
>;

type IdpClient = Client<
    IdpClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    IdpTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Signature algorithms accepted on ID tokens: asymmetric only (never `none`, never HMAC keyed with
/// the client secret), SHA-256 or stronger.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 7] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Which `iss` values a connection accepts (module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerRule {
    Exact(String),
    /// Entra's multi-tenant template; `allowed_tenants` `None`: any directory (tenant-wide social
    /// sign-in), the token's `tid` substituted all the same.
    EntraTemplate { template: String, allowed_tenants: Option<Vec<String>> },
}

const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// The rule for a discovered issuer: the configured one exactly, or Entra's multi-tenant template
/// for an Entra connection that lists its directories.
pub fn issuer_rule(settings: &OidcSettings, discovered_issuer: &str) -> Result<IssuerRule, OidcError> {
    let configured = settings.issuer.trim_end_matches('/');
    if discovered_issuer.trim_end_matches('/') == configured && !discovered_issuer.contains(TENANT_PLACEHOLDER) {
        return Ok(IssuerRule::Exact(discovered_issuer.to_owned()));
    }
    if settings.flavor == Flavor::Entra && discovered_issuer.contains(TENANT_PLACEHOLDER) && (settings.any_tenant || !settings.allowed_tenants.is_empty()) {
        return Ok(IssuerRule::EntraTemplate {
            template: discovered_issuer.to_owned(),
            allowed_tenants: (!settings.any_tenant).then(|| settings.allowed_tenants.iter().map(|t| t.to_ascii_lowercase()).collect()),
        });
    }
    Err(OidcError::IssuerMismatch { expected: configured.to_owned(), found: discovered_issuer.to_owned() })
}

/// Whether a verified token's `iss` (and `tid`) is one the rule accepts.
pub fn check_issuer(rule: &IssuerRule, iss: &str, tid: Option<&str>) -> Result<(), OidcError> {
    match rule {
        IssuerRule::Exact(expected) if iss == expected => Ok(()),
        IssuerRule::Exact(_) => Err(OidcError::Issuer(iss.to_owned())),
        IssuerRule::EntraTemplate { template, allowed_tenants } => {
            let tid = tid.ok_or(OidcError::MissingClaim("tid"))?.to_ascii_lowercase();
            // Whatever the list, a tid is a directory id: it must not smuggle another issuer in.
            if uuid::Uuid::try_parse(&tid).is_err() || allowed_tenants.as_ref().is_some_and(|allowed| !allowed.contains(&tid)) {
                return Err(OidcError::Tenant(tid));
            }
            if iss != template.replace(TENANT_PLACEHOLDER, &tid) {
                return Err(OidcError::Issuer(iss.to_owned()));
            }
            Ok(())
        }
    }
}

/// A provider as discovered: its metadata (with its keys) and the issuer rule.
pub struct Discovered {
    metadata: CoreProviderMetadata,
    rule: IssuerRule,
}

/// Discovery documents and keys, per connection and settings version, for a few minutes: an IdP's
/// key rollover is seen within that time.
pub struct Providers {
    cache: TtlCache<(String, i64), Discovered>,
}

impl Providers {
    pub fn new(ttl: Duration) -> Self {
        Self { cache: TtlCache::new(ttl) }
    }

    pub async fn discover(
        &self,
        fetcher: &SafeFetcher,
        connection_id: &str,
        version: i64,
        settings: &OidcSettings,
    ) -> Result<Arc<Discovered>, OidcError> {
        let key = (connection_id.to_owned(), version);
        if let Some(found) = self.cache.get(&key) {
            return Ok(found);
        }
        let discovered = Arc::new(discover(fetcher, settings).await?);
        self.cache.put(key, discovered.clone());
        Ok(discovered)
    }
}

async fn discover(fetcher: &SafeFetcher, settings: &OidcSettings) -> Result<Discovered, OidcError> {
    let url = Url::parse(&format!("{}/.well-known/openid-configuration", settings.issuer.trim_end_matches('/')))
        .map_err(|_| OidcError::Malformed("issuer"))?;
    let body = fetcher.get(&url, "application/json").await.map_err(|error| OidcError::Fetch { what: "discovery document", error })?;
    // Parsed without openidconnect's `discover`, which insists on the exact issuer: Entra's
    // multi-tenant documents need the template rule above.
    let metadata: CoreProviderMetadata = serde_json::from_slice(&body).map_err(|_| OidcError::Malformed("discovery document"))?;
    let rule = issuer_rule(settings, metadata.issuer().as_str())?;
    let jwks_url = Url::parse(metadata.jwks_uri().as_str()).map_err(|_| OidcError::Malformed("jwks_uri"))?;
    let body = fetcher.get(&jwks_url, "application/json").await.map_err(|error| OidcError::Fetch { what: "keys", error })?;
    let jwks: CoreJsonWebKeySet = serde_json::from_slice(&body).map_err(|_| OidcError::Malformed("key set"))?;
    Ok(Discovered { metadata: metadata.set_jwks(jwks), rule })
}

fn client(discovered: &Discovered, settings: &OidcSettings, secret: Option<&Secret>, redirect_uri: &str) -> Result<IdpClient, OidcError> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|_| OidcError::Malformed("redirect URI"))?;
    Ok(IdpClient::from_provider_metadata(
        discovered.metadata.clone(),
        ClientId::new(settings.client_id.clone()),
        secret.map(|s| ClientSecret::new(s.expose().to_owned())),
    )
    .set_redirect_uri(redirect))
}

/// The values a sign-in request carries to the IdP and must find again in its answer.
pub struct Outgoing {
    pub state: Secret,
    pub nonce: Secret,
    pub verifier: Secret,
}

impl Outgoing {
    pub fn new() -> Self {
        let (_, verifier) = PkceCodeChallenge::new_random_sha256();
        Self {
            state: Secret::new(crypto::random_token("")),
            nonce: Secret::new(crypto::random_token("")),
            verifier: Secret::new(verifier.secret().to_owned()),
        }
    }
}

impl Default for Outgoing {
    fn default() -> Self {
        Self::new()
    }
}

/// The URL the browser is sent to. Entra gets `domain_hint` too, so it skips its own account picker.
pub fn authorization_url(
    discovered: &Discovered,
    settings: &OidcSettings,
    redirect_uri: &str,
    outgoing: &Outgoing,
    login_hint: Option<&str>,
) -> Result<Url, OidcError> {
    let client = client(discovered, settings, None, redirect_uri)?;
    let state = outgoing.state.expose().to_owned();
    let nonce = outgoing.nonce.expose().to_owned();
    let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(outgoing.verifier.expose().to_owned()));
    let mut request = client
        .authorize_url(AuthenticationFlow::<openidconnect::core::CoreResponseType>::AuthorizationCode, move || CsrfToken::new(state), move || Nonce::new(nonce))
        .set_pkce_challenge(challenge);
    let extra: &[String] = &settings.scopes;
    let default_scopes = ["email".to_owned(), "profile".to_owned()];
    for scope in if extra.is_empty() { &default_scopes[..] } else { extra } {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    if let Some(hint) = login_hint {
        request = request.add_extra_param("login_hint", hint.to_owned());
        if settings.flavor == Flavor::Entra
            && let Some((_, domain)) = hint.rsplit_once('@')
        {
            request = request.add_extra_param("domain_hint", domain.to_owned());
        }
    }
    let (url, _, _) = request.url();
    Ok(url)
}

fn truthy(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::String(s) => matches!(s.as_str(), "1" | "true" | "True"),
        serde_json::Value::Number(n) => n.as_i64() == Some(1),
        _ => false,
    }
}

/// Exchanges the code (with the PKCE verifier, authenticating with the client secret), validates the
/// ID token (signature by a key of the IdP's set and an allowed algorithm, audience, expiry, nonce,
/// issuer rule) and reads the identity.
/// How the token request authenticates Latchkey.
pub enum Credential<'a> {
    Secret(Option<&'a Secret>),
    /// A `private_key_jwt` key (PKCS#8 DER) and its certificate (base64 DER).
    Key { pkcs8: &'a [u8], certificate: &'a str },
}

/// RFC 7523 §2.2 `client_assertion_type`.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A `private_key_jwt` client assertion (RFC 7523 §3, OIDC Core §9): `iss` = `sub` = the client id,
/// `aud` the token endpoint, a random `jti`, five minutes of life; RS256, with the key's thumbprints
/// in the header (`kid`, and `x5t` / `x5t#S256`, which Entra looks keys up by).
pub fn client_assertion(client_id: &str, token_endpoint: &str, pkcs8: &[u8], certificate: &str, now: i64) -> Result<String, OidcError> {
    use base64::Engine as _;
    use openssl::{hash::MessageDigest, pkey::PKey, sign::Signer};
    let fail = |_| OidcError::Malformed("client assertion key");
    let der = base64::engine::general_purpose::STANDARD.decode(certificate).map_err(|_| OidcError::Malformed("client certificate"))?;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let sha1 = openssl::sha::sha1(&der);
    let sha256 = openssl::sha::sha256(&der);
    let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": b64(&sha256), "x5t": b64(&sha1), "x5t#S256": b64(&sha256) });
    let claims = serde_json::json!({
        "iss": client_id, "sub": client_id, "aud": token_endpoint, "jti": crypto::random_id(),
        "iat": now, "nbf": now, "exp": now + 300,
    });
    let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let key = PKey::private_key_from_pkcs8(pkcs8).map_err(fail)?;
    let mut signer = Signer::new(MessageDigest::sha256(), &key).map_err(fail)?;
    let signature = signer.sign_oneshot_to_vec(signing_input.as_bytes()).map_err(fail)?;
    Ok(format!("{signing_input}.{}", b64(&signature)))
}

/// The JWKS of a `private_key_jwt` connection: its one public key, with the certificate (`x5c`).
pub fn client_jwks(certificate: &str) -> Result<serde_json::Value, OidcError> {
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD.decode(certificate).map_err(|_| OidcError::Malformed("client certificate"))?;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let fail = |_| OidcError::Malformed("client certificate");
    let cert = openssl::x509::X509::from_der(&der).map_err(fail)?;
    let rsa = cert.public_key().and_then(|key| key.rsa()).map_err(fail)?;
    let sha256 = openssl::sha::sha256(&der);
    Ok(serde_json::json!({ "keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": b64(&sha256),
        "n": b64(&rsa.n().to_vec()), "e": b64(&rsa.e().to_vec()), "x5c": [certificate],
        "x5t": b64(&openssl::sha::sha1(&der)), "x5t#S256": b64(&sha256),
    }]}))
}

pub async fn finish(
    fetcher: &SafeFetcher,
    discovered: &Discovered,
    settings: &OidcSettings,
    credential: Credential<'_>,
    redirect_uri: &str,
    code: &str,
    verifier: &Secret,
    nonce_hash: &str,
) -> Result<IdpIdentity, OidcError> {
    let secret = match credential {
        Credential::Secret(secret) => secret,
        Credential::Key { .. } => None,
    };
    let client = client(discovered, settings, secret, redirect_uri)?;
    let http = |request| fetcher.request(request);
    let mut exchange = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|_| OidcError::Malformed("token endpoint"))?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().to_owned()));
    if let Credential::Key { pkcs8, certificate } = credential {
        let token_endpoint = discovered.metadata.token_endpoint().ok_or(OidcError::Malformed("token endpoint"))?.as_str();
        let assertion = client_assertion(&settings.client_id, token_endpoint, pkcs8, certificate, crate::store::now())?;
        exchange = exchange.add_extra_param("client_assertion_type", JWT_BEARER).add_extra_param("client_assertion", assertion);
    }
    let response = exchange.request_async(&http).await.map_err(|e| OidcError::Exchange(describe_exchange_error(&e)))?;
    let id_token = response.id_token().ok_or(OidcError::NoIdToken)?;
    let exact = matches!(discovered.rule, IssuerRule::Exact(_));
    let token_verifier = client.id_token_verifier().set_allowed_algs(ALLOWED_ALGS).require_issuer_match(exact);
    let nonce_check = |nonce: Option<&Nonce>| match nonce {
        Some(nonce) if crypto::constant_time_eq(crypto::sha256_hex(nonce.secret()).as_bytes(), nonce_hash.as_bytes()) => Ok(()),
        _ => Err("nonce mismatch".to_owned()),
    };
    let claims = id_token.claims(&token_verifier, nonce_check).map_err(|e| OidcError::IdToken(e.to_string()))?;
    let extra = claims.additional_claims();
    check_issuer(&discovered.rule, claims.issuer().as_str(), extra.tid.as_deref())?;
    identity(settings, claims.issuer().as_str(), claims.subject().as_str(), claims, extra)
}

fn describe_exchange_error<E: std::error::Error>(error: &openidconnect::RequestTokenError<E, StandardErrorResponse<CoreErrorResponseType>>) -> String {
    match error {
        openidconnect::RequestTokenError::ServerResponse(response) => response.error().to_string(),
        other => other.to_string(),
    }
}

fn identity(
    settings: &OidcSettings,
    iss: &str,
    sub: &str,
    claims: &openidconnect::IdTokenClaims<IdpClaims, CoreGenderClaim>,
    extra: &IdpClaims,
) -> Result<IdpIdentity, OidcError> {
    let email = claims.email().map(|e| e.as_str().to_owned());
    let email_verified = claims.email_verified() == Some(true);
    let (subject, email_proven) = match settings.flavor {
        Flavor::Entra => {
            let tid = extra.tid.as_deref().ok_or(OidcError::MissingClaim("tid"))?;
            let oid = extra.oid.as_deref().ok_or(OidcError::MissingClaim("oid"))?;
            (format!("entra:{}:{}", tid.to_ascii_lowercase(), oid.to_ascii_lowercase()), extra.xms_edov.as_ref().is_some_and(truthy))
        }
        Flavor::Google => {
            let hd = extra.hd.as_deref().unwrap_or_default();
            let wanted = settings.hosted_domain.as_deref().unwrap_or_default();
            if !hd.eq_ignore_ascii_case(wanted) {
                return Err(OidcError::HostedDomain(hd.to_owned()));
            }
            (format!("oidc:{iss}#{sub}"), email_verified)
        }
        Flavor::Generic => (format!("oidc:{iss}#{sub}"), email_verified),
    };
    let mut groups = extra.groups.clone().unwrap_or_default();
    groups.extend(extra.roles.clone().unwrap_or_default());
    let amr = claims
        .auth_method_refs()
        .into_iter()
        .flatten()
        .filter_map(|value| Amr::parse(value.as_str()))
        .collect();
    let directory_id = match (settings.flavor, extra.oid.as_deref()) {
        (Flavor::Entra, Some(oid)) => oid.to_ascii_lowercase(),
        _ => sub.to_owned(),
    };
    Ok(IdpIdentity {
        subject,
        directory_id,
        email,
        email_proven,
        name: claims.name().and_then(|c| c.get(None)).map(|v| v.as_str().to_owned()),
        given_name: claims.given_name().and_then(|c| c.get(None)).map(|v| v.as_str().to_owned()),
        family_name: claims.family_name().and_then(|c| c.get(None)).map(|v| v.as_str().to_owned()),
        groups,
        amr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT_A: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
    const TENANT_B: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    fn settings(flavor: Flavor, issuer: &str, allowed: &[&str]) -> OidcSettings {
        OidcSettings {
            issuer: issuer.into(),
            client_id: "app".into(),
            flavor,
            allowed_tenants: allowed.iter().map(|t| (*t).to_owned()).collect(),
            any_tenant: false,
            hosted_domain: None,
            scopes: vec![],
            client_auth: Default::default(),
            client_certificate: None,
            role_map: vec![],
        }
    }

    #[test]
    fn the_issuer_rule_of_each_kind_of_document() {
        let single = format!("https://login.microsoftonline.com/{TENANT_A}/v2.0");
        let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
        let common = "https://login.microsoftonline.com/organizations/v2.0";
        assert_eq!(issuer_rule(&settings(Flavor::Entra, &single, &[]), &single).ok(), Some(IssuerRule::Exact(single.clone())));
        // A multi-tenant document only for an Entra connection that names its directories.
        assert!(issuer_rule(&settings(Flavor::Entra, common, &[]), template).is_err());
        assert!(issuer_rule(&settings(Flavor::Generic, common, &[]), template).is_err());
        assert!(matches!(issuer_rule(&settings(Flavor::Entra, common, &[TENANT_A]), template), Ok(IssuerRule::EntraTemplate { .. })));
        // Tenant-wide "Continue with Microsoft": any directory, its own tid substituted.
        let anyone = OidcSettings { any_tenant: true, ..settings(Flavor::Entra, common, &[]) };
        let rule = issuer_rule(&anyone, template).expect("any tenant");
        assert!(check_issuer(&rule, &format!("https://login.microsoftonline.com/{TENANT_B}/v2.0"), Some(TENANT_B)).is_ok());
        assert!(check_issuer(&rule, &format!("https://login.microsoftonline.com/{TENANT_A}/v2.0"), Some(TENANT_B)).is_err(), "iss of another tid");
        assert!(check_issuer(&rule, "https://evil.example/v2.0", Some("evil.example")).is_err(), "a tid that is no directory id");
        // A document naming another issuer than the one configured.
        assert!(issuer_rule(&settings(Flavor::Generic, "https://idp.example", &[]), "https://evil.example").is_err());
        // A "single-tenant" configuration whose document turns out to be the template is not exact.
        assert!(issuer_rule(&settings(Flavor::Generic, template, &[]), template).is_err());
    }

    #[test]
    fn tokens_are_held_to_the_rule() {
        let exact = IssuerRule::Exact(format!("https://login.microsoftonline.com/{TENANT_A}/v2.0"));
        let multi = IssuerRule::EntraTemplate {
            template: "https://login.microsoftonline.com/{tenantid}/v2.0".into(),
            allowed_tenants: Some(vec![TENANT_A.into()]),
        };
        let iss_a = format!("https://login.microsoftonline.com/{TENANT_A}/v2.0");
        let iss_b = format!("https://login.microsoftonline.com/{TENANT_B}/v2.0");
        for (rule, iss, tid, ok) in [
            (&exact, iss_a.as_str(), Some(TENANT_A), true),
            (&exact, iss_b.as_str(), Some(TENANT_B), false),
            (&multi, iss_a.as_str(), Some(TENANT_A), true),
            (&multi, iss_a.as_str(), Some(&TENANT_A.to_ascii_uppercase()[..]), true),
            // A directory the administrator did not name.
            (&multi, iss_b.as_str(), Some(TENANT_B), false),
            // `tid` and `iss` disagree: one directory's token claiming to be another's.
            (&multi, iss_b.as_str(), Some(TENANT_A), false),
            // The literal template is never an issuer.
            (&multi, "https://login.microsoftonline.com/{tenantid}/v2.0", Some(TENANT_A), false),
            (&multi, iss_a.as_str(), None, false),
        ] {
            assert_eq!(check_issuer(rule, iss, tid).is_ok(), ok, "{rule:?} {iss} {tid:?}");
        }
    }

    #[test]
    fn xms_edov_is_read_in_the_shapes_entra_sends() {
        for (value, proven) in [
            (serde_json::json!(true), true),
            (serde_json::json!("1"), true),
            (serde_json::json!(1), true),
            (serde_json::json!(false), false),
            (serde_json::json!("0"), false),
            (serde_json::json!(null), false),
        ] {
            assert_eq!(truthy(&value), proven, "{value}");
        }
    }
}
