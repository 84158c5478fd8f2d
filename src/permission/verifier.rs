//! Offline verification of Latchkey access tokens (RFC 9068) against the issuers' published keys.
//!
//! Only the configured issuers are trusted; each one's JWKS is fetched from its discovery document and
//! cached, and refetched when a token names an unknown `kid` — at most once per `jwks_refetch_seconds`,
//! so garbage tokens cannot make us hammer the issuer. The algorithm comes from the key, never from the
//! token alone: ES256 or RS256 only (no `none`, no HMAC, so a public key can never be used as a shared
//! secret). A verified token is remembered until it expires, so checking it again costs a lookup.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation, decode,
    jwk::{Jwk, JwkSet},
};
use serde::Deserialize;

use crate::{cache::TtlCache, crypto::sha256, jwt::ACCESS_TOKEN_TYP};

/// The longest a verified token is remembered (its own `exp` usually comes first).
const VERIFIED_CACHE_TTL: Duration = Duration::from_secs(900);

/// The claims the permission API acts on.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenClaims {
    pub iss: String,
    pub sub: String,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    pub exp: i64,
    pub jti: String,
    pub auth_time: Option<i64>,
    pub acr: Option<String>,
    /// `person` or `agent`, as Latchkey says.
    #[serde(default)]
    pub caller: Option<String>,
    /// The subject's organization (slug) and its roles there.
    #[serde(default)]
    pub org: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

impl TokenClaims {
    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scope.split(' ').any(|s| s == wanted)
    }

    /// Latchkey's `caller` claim says; a token without it is an agent when it has no user sign-in and
    /// its subject is the client itself (client credentials).
    pub fn is_agent(&self) -> bool {
        match self.caller.as_deref() {
            Some(caller) => caller == "agent",
            None => self.sub == self.client_id && self.auth_time.is_none(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is not valid: {0}")]
    Invalid(&'static str),
    #[error("the issuer's keys could not be fetched: {0}")]
    Unreachable(String),
}

type UsableKey = Result<(Algorithm, DecodingKey), &'static str>;

fn usable(jwk: &Jwk) -> UsableKey {
    let alg = jwk_algorithm(jwk).ok_or("key algorithm not accepted")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "unusable key")?;
    Ok((alg, key))
}

struct IssuerKeys {
    jwks_uri: Option<String>,
    /// Parsed once per fetch: the key's algorithm and verifying key, or why it cannot be used.
    keys: HashMap<String, UsableKey>,
    last_fetch: Option<Instant>,
}

pub struct Verifier {
    resource: String,
    leeway: u64,
    refetch_interval: Duration,
    http: reqwest::Client,
    issuers: HashMap<String, Mutex<IssuerKeys>>,
    verified: TtlCache<[u8; 32], TokenClaims>,
}

#[derive(Deserialize)]
struct Discovery {
    jwks_uri: String,
}

impl Verifier {
    pub fn new(issuers: &[String], resource: &str, leeway: u64, refetch_interval: Duration) -> Self {
        Self {
            resource: resource.to_owned(),
            leeway,
            refetch_interval,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            issuers: issuers
                .iter()
                .map(|iss| (iss.clone(), Mutex::new(IssuerKeys { jwks_uri: None, keys: HashMap::new(), last_fetch: None })))
                .collect(),
            verified: TtlCache::new(VERIFIED_CACHE_TTL),
        }
    }

    /// Verifies `token`: signature with the issuer's key for its `kid`, `typ` at+jwt, `iss` one of
    /// ours, `aud` our resource, `exp`/`nbf` with the leeway.
    pub async fn verify(&self, token: &str) -> Result<Arc<TokenClaims>, TokenError> {
        let cache_key = sha256(token.as_bytes());
        if let Some(claims) = self.verified.get(&cache_key) {
            if claims.exp + self.leeway as i64 > crate::store::now() {
                return Ok(claims);
            }
            return Err(TokenError::Invalid("expired"));
        }
        // Read the header ourselves: jsonwebtoken cannot even name `none`, and we want to say why.
        let header: Header = decode_part(token, 0).ok_or(TokenError::Invalid("malformed"))?;
        if !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)) {
            return Err(TokenError::Invalid("not an access token (typ must be at+jwt)"));
        }
        let alg = match header.alg.as_str() {
            "ES256" => Algorithm::ES256,
            "RS256" => Algorithm::RS256,
            _ => return Err(TokenError::Invalid("algorithm not accepted")),
        };
        let kid = header.kid.ok_or(TokenError::Invalid("no kid"))?;
        // `iss` is read unverified only to pick the issuer's keys; the signature check below covers it.
        let Issuer { iss: issuer } = decode_part(token, 1).ok_or(TokenError::Invalid("malformed"))?;
        let keys = self.issuers.get(&issuer).ok_or(TokenError::Invalid("untrusted issuer"))?;
        let (key_alg, decoding) = self
            .key_for(&issuer, keys, &kid)
            .await?
            .ok_or(TokenError::Invalid("unknown key"))?
            .map_err(TokenError::Invalid)?;
        // The key decides the algorithm: a token claiming another one for this key is refused.
        if key_alg != alg {
            return Err(TokenError::Invalid("algorithm does not match the key"));
        }
        let mut validation = Validation::new(key_alg);
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&self.resource]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway;
        let claims = decode::<TokenClaims>(token, &decoding, &validation)
            .map_err(|e| TokenError::Invalid(reason(e.kind())))?
            .claims;
        let claims = Arc::new(claims);
        self.verified.put(cache_key, claims.clone());
        Ok(claims)
    }

    /// The issuer's key named `kid`, refetching the JWKS when it is unknown (rate-limited).
    async fn key_for(&self, issuer: &str, keys: &Mutex<IssuerKeys>, kid: &str) -> Result<Option<UsableKey>, TokenError> {
        let (known, may_fetch, jwks_uri) = {
            let state = keys.lock().unwrap_or_else(|p| p.into_inner());
            let known = state.keys.get(kid).cloned();
            let may_fetch = state.last_fetch.is_none_or(|at| at.elapsed() >= self.refetch_interval);
            (known, may_fetch, state.jwks_uri.clone())
        };
        if known.is_some() || !may_fetch {
            return Ok(known);
        }
        let jwks_uri = match jwks_uri {
            Some(uri) => uri,
            None => {
                let discovery: Discovery = self
                    .fetch_json(&format!("{issuer}/.well-known/openid-configuration"))
                    .await?;
                discovery.jwks_uri
            }
        };
        let fetched: JwkSet = self.fetch_json(&jwks_uri).await?;
        let mut state = keys.lock().unwrap_or_else(|p| p.into_inner());
        state.jwks_uri = Some(jwks_uri);
        state.keys = fetched
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, usable(jwk))))
            .collect();
        state.last_fetch = Some(Instant::now());
        Ok(state.keys.get(kid).cloned())
    }

    async fn fetch_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, TokenError> {
        let response = self.http.get(url).send().await.map_err(|e| TokenError::Unreachable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(TokenError::Unreachable(format!("{url}: {}", response.status())));
        }
        response.json().await.map_err(|e| TokenError::Unreachable(e.to_string()))
    }
}

fn jwk_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm};
    match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256)) if ec.curve == EllipticCurve::P256 => {
            Some(Algorithm::ES256)
        }
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Some(Algorithm::RS256),
        _ => None,
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Issuer {
    iss: String,
}

/// Part `index` of a compact JWS, base64url-decoded and parsed, without any verification.
fn decode_part<T: serde::de::DeserializeOwned>(token: &str, index: usize) -> Option<T> {
    use base64::Engine;
    let part = token.split('.').nth(index)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn reason(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::ImmatureSignature => "not yet valid",
        ErrorKind::InvalidAudience => "not for this resource",
        ErrorKind::InvalidIssuer => "untrusted issuer",
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
        _ => "malformed",
    }
}
