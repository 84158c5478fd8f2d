//! Offline verification of Latchkey access tokens (RFC 9068) against the issuers' published keys.
//!
//! Only the configured issuers are trusted; each one's JWKS is fetched from its discovery document and
//! cached, and refetched when a token names an unknown `kid` — so garbage tokens cannot make us hammer
//! the issuer: one fetch in flight per issuer (concurrent tokens wait for it instead of starting their
//! own), at most one per `jwks_refetch_seconds` counted from the attempt (a failed one too), and after
//! failures exponentially less often (twice the interval, four times, … at most ten minutes). The algorithm comes from the key, never from the
//! token alone: ES256 or RS256 only (no `none`, no HMAC, so a public key can never be used as a shared
//! secret). A verified token is remembered until it expires, so checking it again costs a lookup.

mod status;

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

use latchkey_kit::cache::TtlCache;
use latchkey_proto::{AccessClaims, crypto::sha256, jws::ACCESS_TOKEN_TYP};

/// Signed and valid, but not what `latchkey_proto::AccessClaims` says a Latchkey token carries.
const NOT_THE_CONTRACT: &str = "the claims do not follow the access-token contract";

/// The longest a verified token is remembered (its own `exp` usually comes first).
const VERIFIED_CACHE_TTL: Duration = Duration::from_secs(900);

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

/// The longest wait between fetch attempts of a failing issuer.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

struct IssuerKeys {
    jwks_uri: Option<String>,
    /// Parsed once per fetch: the key's algorithm and verifying key, or why it cannot be used.
    keys: HashMap<String, UsableKey>,
    /// No fetch before this (`None`: none attempted yet).
    next_fetch: Option<Instant>,
    /// Failed attempts in a row.
    failures: u32,
}

impl IssuerKeys {
    fn may_fetch(&self) -> bool {
        self.next_fetch.is_none_or(|at| Instant::now() >= at)
    }

    /// An unknown key while no fetch is allowed: unknown, or the issuer is failing and we have no keys.
    fn unknown(&self) -> Result<Option<UsableKey>, TokenError> {
        if self.failures > 0 && self.keys.is_empty() {
            return Err(TokenError::Unreachable("backing off after failed fetches".into()));
        }
        Ok(None)
    }

    /// Records the outcome of an attempt that started at `attempted`.
    fn attempted(&mut self, attempted: Instant, interval: Duration, ok: bool) {
        self.failures = if ok { 0 } else { self.failures.saturating_add(1) };
        self.next_fetch = Some(attempted + backoff(interval, self.failures));
    }
}

/// The wait after an attempt: the interval after a success; after `failures` failures in a row,
/// the interval doubled that many times, at most [`MAX_BACKOFF`].
fn backoff(interval: Duration, failures: u32) -> Duration {
    interval.saturating_mul(1u32 << failures.min(16)).min(MAX_BACKOFF.max(interval))
}

struct TrustedIssuer {
    keys: Mutex<IssuerKeys>,
    /// Held while a fetch is in flight: one per issuer.
    fetching: tokio::sync::Mutex<()>,
}

pub struct Verifier {
    resource: String,
    leeway: u64,
    refetch_interval: Duration,
    http: reqwest::Client,
    issuers: HashMap<String, TrustedIssuer>,
    verified: TtlCache<[u8; 32], AccessClaims>,
    status_lists: status::StatusLists,
}

#[derive(Deserialize)]
struct Discovery {
    jwks_uri: String,
}

impl Verifier {
    pub fn new(issuers: &[String], resource: &str, leeway: u64, refetch_interval: Duration, status_interval: Duration) -> Self {
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
                .map(|iss| {
                    let keys = IssuerKeys { jwks_uri: None, keys: HashMap::new(), next_fetch: None, failures: 0 };
                    (iss.clone(), TrustedIssuer { keys: Mutex::new(keys), fetching: tokio::sync::Mutex::new(()) })
                })
                .collect(),
            verified: TtlCache::new(VERIFIED_CACHE_TTL),
            status_lists: status::StatusLists::new(status_interval),
        }
    }

    /// Verifies `token`: signature with the issuer's key for its `kid`, `typ` at+jwt, `iss` one of
    /// ours, `aud` our resource, `exp`/`nbf` with the leeway; and, when it names one, that its entry
    /// in the issuer's status list is not set (`status`), every time.
    pub async fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, TokenError> {
        let claims = self.verify_signature(token).await?;
        self.check_status(&claims).await?;
        Ok(claims)
    }

    async fn verify_signature(&self, token: &str) -> Result<Arc<AccessClaims>, TokenError> {
        let cache_key = sha256(token.as_bytes());
        if let Some(claims) = self.verified.get(&cache_key) {
            if claims.exp + self.leeway as i64 > latchkey_proto::now() {
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
        // Signature and the registered claims first (jsonwebtoken checks them on a generic map), then
        // the contract: a token can be signed, current and for us, and still not say what a Latchkey
        // token says.
        let verified = decode::<serde_json::Map<String, serde_json::Value>>(token, &decoding, &validation)
            .map_err(|e| TokenError::Invalid(reason(e.kind())))?
            .claims;
        let claims: AccessClaims = serde_json::from_value(verified.into())
            .map_err(|_| TokenError::Invalid(NOT_THE_CONTRACT))?;
        let claims = Arc::new(claims);
        self.verified.put(cache_key, claims.clone());
        Ok(claims)
    }

    /// Another JWS a trusted issuer signs (its status list): `typ`, the algorithm the issuer's key
    /// has, the signature, `exp`/`nbf` when present and the `required` claims; its own claims are the
    /// caller's to check.
    async fn verify_issued<T: serde::de::DeserializeOwned>(
        &self,
        issuer: &str,
        token: &str,
        typ: &str,
        required: &[&str],
    ) -> Result<T, TokenError> {
        let header: Header = decode_part(token, 0).ok_or(TokenError::Invalid("malformed"))?;
        if !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(typ)) {
            return Err(TokenError::Invalid("unexpected typ"));
        }
        let kid = header.kid.ok_or(TokenError::Invalid("no kid"))?;
        let keys = self.issuers.get(issuer).ok_or(TokenError::Invalid("untrusted issuer"))?;
        let (key_alg, decoding) =
            self.key_for(issuer, keys, &kid).await?.ok_or(TokenError::Invalid("unknown key"))?.map_err(TokenError::Invalid)?;
        let alg = match header.alg.as_str() {
            "ES256" => Algorithm::ES256,
            "RS256" => Algorithm::RS256,
            _ => return Err(TokenError::Invalid("algorithm not accepted")),
        };
        if key_alg != alg {
            return Err(TokenError::Invalid("algorithm does not match the key"));
        }
        let mut validation = Validation::new(key_alg);
        validation.validate_aud = false;
        validation.set_required_spec_claims(required);
        validation.validate_nbf = true;
        validation.leeway = self.leeway;
        decode::<T>(token, &decoding, &validation).map(|data| data.claims).map_err(|e| TokenError::Invalid(reason(e.kind())))
    }

    /// The issuer's key named `kid`, refetching the JWKS when it is unknown (one fetch in flight per
    /// issuer, spaced by the refetch interval and backed off on failures).
    async fn key_for(&self, issuer: &str, state: &TrustedIssuer, kid: &str) -> Result<Option<UsableKey>, TokenError> {
        let lock = || state.keys.lock().unwrap_or_else(|p| p.into_inner());
        {
            let keys = lock();
            if let Some(known) = keys.keys.get(kid) {
                return Ok(Some(known.clone()));
            }
            if !keys.may_fetch() {
                return keys.unknown();
            }
        }
        // Concurrent tokens with unknown kids queue here; whoever gets the fetch first does it, and
        // the rest find its result (or that no fetch is allowed yet) when they get their turn.
        let _fetching = state.fetching.lock().await;
        let jwks_uri = {
            let keys = lock();
            if let Some(known) = keys.keys.get(kid) {
                return Ok(Some(known.clone()));
            }
            if !keys.may_fetch() {
                return keys.unknown();
            }
            keys.jwks_uri.clone()
        };
        let attempted = Instant::now();
        let fetched = self.fetch_keys(issuer, jwks_uri).await;
        let mut keys = lock();
        keys.attempted(attempted, self.refetch_interval, fetched.is_ok());
        let (jwks_uri, fetched) = fetched?;
        keys.jwks_uri = Some(jwks_uri);
        keys.keys = fetched.keys.iter().filter_map(|jwk| Some((jwk.common.key_id.clone()?, usable(jwk)))).collect();
        Ok(keys.keys.get(kid).cloned())
    }

    /// The issuer's JWKS (through its discovery document, the first time).
    async fn fetch_keys(&self, issuer: &str, jwks_uri: Option<String>) -> Result<(String, JwkSet), TokenError> {
        let jwks_uri = match jwks_uri {
            Some(uri) => uri,
            None => self.fetch_json::<Discovery>(&format!("{issuer}/.well-known/openid-configuration")).await?.jwks_uri,
        };
        let fetched: JwkSet = self.fetch_json(&jwks_uri).await?;
        Ok((jwks_uri, fetched))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_exponentially_up_to_ten_minutes() {
        let interval = Duration::from_secs(30);
        let waits: Vec<u64> = (0..7).map(|failures| backoff(interval, failures).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(backoff(Duration::from_secs(900), 3), Duration::from_secs(900), "never below the interval itself");
    }
}
