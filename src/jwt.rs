//! Signed tokens: RFC 9068 JWT access tokens and OpenID Connect ID tokens.

use jsonwebtoken::{Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};

use crate::{
    crypto::base64url,
    keys::{Keyring, SigningAlg},
};

/// `typ` of an access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Clock skew tolerated when checking `exp`/`nbf`.
pub const LEEWAY_SECONDS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("no current {0} signing key")]
    NoKey(&'static str),
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("token is not valid")]
    Invalid,
}

/// RFC 9068 §2.2 claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl AccessClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }
}

/// OpenID Connect Core §2 and §3.1.3.6.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub acr: String,
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

fn sign<T: Serialize>(
    keyring: &Keyring,
    alg: SigningAlg,
    typ: &str,
    claims: &T,
) -> Result<String, JwtError> {
    let key = keyring
        .signing_key(alg)
        .ok_or(JwtError::NoKey(alg.as_str()))?;
    let mut header = Header::new(alg.jwt_algorithm());
    header.typ = Some(typ.to_owned());
    header.kid = Some(key.kid.clone());
    encode(&header, claims, &key.encoding).map_err(|e| JwtError::Sign(e.to_string()))
}

pub fn sign_access_token(
    keyring: &Keyring,
    alg: SigningAlg,
    claims: &AccessClaims,
) -> Result<String, JwtError> {
    sign(keyring, alg, ACCESS_TOKEN_TYP, claims)
}

pub fn sign_id_token(
    keyring: &Keyring,
    alg: SigningAlg,
    claims: &IdTokenClaims,
) -> Result<String, JwtError> {
    sign(keyring, alg, "JWT", claims)
}

/// `at_hash` (OIDC Core §3.1.3.6): left half of the SHA-256 of the access token, base64url. Both our
/// algorithms use SHA-256.
pub fn at_hash(access_token: &str) -> String {
    let digest = crate::crypto::sha256(access_token.as_bytes());
    base64url(&digest[..16])
}

/// Verifies one of our own access tokens: known `kid`, the algorithm that key is for, `typ` at+jwt,
/// our issuer, not expired. Audience is the caller's decision.
pub fn verify_access_token(
    keyring: &Keyring,
    issuer: &str,
    token: &str,
) -> Result<AccessClaims, JwtError> {
    let header = decode_header(token).map_err(|_| JwtError::Invalid)?;
    if header
        .typ
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
        != Some(ACCESS_TOKEN_TYP)
    {
        return Err(JwtError::Invalid);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| keyring.verifying_key(kid))
        .ok_or(JwtError::Invalid)?;
    if header.alg != key.alg.jwt_algorithm() {
        return Err(JwtError::Invalid);
    }
    let mut validation = Validation::new(key.alg.jwt_algorithm());
    validation.set_issuer(&[issuer]);
    validation.validate_aud = false;
    validation.leeway = LEEWAY_SECONDS;
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    decode::<AccessClaims>(token, &key.decoding, &validation)
        .map(|data| data.claims)
        .map_err(|_| JwtError::Invalid)
}

/// Verifies an ID token we issued (used as `id_token_hint`); expiry is not required to hold.
pub fn verify_id_token_hint(
    keyring: &Keyring,
    issuer: &str,
    token: &str,
) -> Result<IdTokenClaims, JwtError> {
    let header = decode_header(token).map_err(|_| JwtError::Invalid)?;
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| keyring.verifying_key(kid))
        .ok_or(JwtError::Invalid)?;
    if header.alg != key.alg.jwt_algorithm() {
        return Err(JwtError::Invalid);
    }
    let mut validation = Validation::new(key.alg.jwt_algorithm());
    validation.set_issuer(&[issuer]);
    validation.validate_aud = false;
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss", "sub"]);
    decode::<IdTokenClaims>(token, &key.decoding, &validation)
        .map(|data| data.claims)
        .map_err(|_| JwtError::Invalid)
}
