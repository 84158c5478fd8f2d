//! Signed tokens: RFC 9068 JWT access tokens and OpenID Connect ID tokens.

use jsonwebtoken::{Validation, decode, decode_header};
use serde::{Deserialize, Serialize};

pub use latchkey_proto::{AccessClaims, jws::ACCESS_TOKEN_TYP};
use latchkey_proto::jws::{SignError, compact_jws};

use crate::{
    crypto::base64url,
    keys::{Keyring, SigningAlg, SigningKey},
};
/// `typ` of an ID token (OIDC Core §2 leaves it open; `JWT` tells it from an access token).
pub const ID_TOKEN_TYP: &str = "JWT";
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
    pub acr: latchkey_proto::Acr,
    pub amr: Vec<latchkey_proto::Amr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// Claims the `claims` request parameter asked for (OIDC Core §5.5), e.g. `name`.
    #[serde(flatten)]
    pub requested: serde_json::Map<String, serde_json::Value>,
}

pub fn sign<T: Serialize>(
    keyring: &Keyring,
    alg: SigningAlg,
    typ: &str,
    claims: &T,
) -> Result<String, JwtError> {
    let key = keyring
        .signing_key(alg)
        .ok_or(JwtError::NoKey(alg.as_str()))?;
    sign_with(key, typ, claims)
}

/// A compact JWS over `claims` with one parsed key.
pub fn sign_with<T: Serialize>(key: &SigningKey, typ: &str, claims: &T) -> Result<String, JwtError> {
    compact_jws(key.alg.as_str(), typ, &key.kid, claims, |input| key.sign(input).map_err(|e| SignError(e.to_string())))
        .map_err(|e| JwtError::Sign(e.0))
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
    sign(keyring, alg, ID_TOKEN_TYP, claims)
}

/// A signed UserInfo response (OIDC Core §5.3.2). No `exp`: it is not a credential, and without
/// one it can never pass for an ID token (ours require `exp`).
pub fn sign_userinfo(keyring: &Keyring, alg: SigningAlg, claims: &serde_json::Value) -> Result<String, JwtError> {
    sign(keyring, alg, ID_TOKEN_TYP, claims)
}

/// `at_hash` (OIDC Core §3.1.3.6): left half of the SHA-256 of the access token, base64url. Both our
/// algorithms use SHA-256.
pub fn at_hash(access_token: &str) -> String {
    let digest = crate::crypto::sha256(access_token.as_bytes());
    base64url(&digest[..16])
}

/// Decodes a token we signed: its `kid` must name one of our published keys, its `alg` must be the one
/// that key is for (no `none`, no algorithm confusion), and `iss` must be ours. `typ` is checked when given.
fn verify<T: serde::de::DeserializeOwned>(
    keyring: &Keyring,
    issuer: &str,
    token: &str,
    typ: Option<&str>,
    configure: impl FnOnce(&mut Validation),
) -> Result<T, JwtError> {
    let header = decode_header(token).map_err(|_| JwtError::Invalid)?;
    if let Some(typ) = typ
        && !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(typ))
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
    configure(&mut validation);
    decode::<T>(token, &key.decoding, &validation)
        .map(|data| data.claims)
        .map_err(|_| JwtError::Invalid)
}

/// Verifies one of our own access tokens (RFC 9068 §4): `typ` at+jwt, not expired. Audience is the
/// caller's decision.
pub fn verify_access_token(keyring: &Keyring, issuer: &str, token: &str) -> Result<AccessClaims, JwtError> {
    verify(keyring, issuer, token, Some(ACCESS_TOKEN_TYP), |v| {
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
    })
}

/// Verifies an ID token we issued (used as `id_token_hint`); it may have expired.
pub fn verify_id_token_hint(keyring: &Keyring, issuer: &str, token: &str) -> Result<IdTokenClaims, JwtError> {
    // `typ` JWT, as we sign ID tokens: an access token (`at+jwt`, RFC 9068 §2.1) is not a hint.
    verify(keyring, issuer, token, Some(ID_TOKEN_TYP), |v| {
        v.validate_exp = false;
        v.set_required_spec_claims(&["iss", "sub"]);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{crypto::DataKey, keys};

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "https://issuer".into(), sub: "s".into(), aud: "a".into(), client_id: "c".into(),
            scope: "x".into(), exp: 2_000_000_000, iat: 1, jti: "j".into(), auth_time: None, acr: None, amr: None, sid: None,
            caller: latchkey_proto::Caller::Person, org: None, roles: None,
            grant_id: None,
            status: None,
            authorization_details: None,
        }
    }

    fn keyring() -> Keyring {
        let rt = tokio::runtime::Runtime::new().expect("rt");
        rt.block_on(async {
            let db = crate::store::connect("sqlite::memory:", 1).await.expect("db");
            crate::store::migrate(&db).await.expect("migrate");
            let data_key = DataKey::generate();
            let scope = crate::store::Scoped::new(&db, "t");
            keys::generate_current_keys(scope, &data_key).await.expect("keys");
            keys::load_keyring(scope, &data_key).await.expect("keyring")
        })
    }

    /// Our compact JWS must verify with an independent implementation (jsonwebtoken's decoder, against
    /// the JWK we publish), and a changed signature or payload must not.
    #[test]
    fn signed_tokens_verify_against_published_keys() {
        let keyring = keyring();
        for alg in SigningAlg::ALL {
            let token = sign_access_token(&keyring, alg, &claims()).expect("sign");
            let header = decode_header(&token).expect("header");
            assert_eq!(header.alg, alg.jwt_algorithm());
            assert_eq!(header.typ.as_deref(), Some(ACCESS_TOKEN_TYP));
            let verified = verify_access_token(&keyring, "https://issuer", &token).expect("verifies");
            assert_eq!(verified.jti, "j");

            let (message, signature) = token.rsplit_once('.').expect("three parts");
            let mut flipped = signature.as_bytes().to_vec();
            flipped[4] = if flipped[4] == b'A' { b'B' } else { b'A' };
            let forged = format!("{message}.{}", String::from_utf8(flipped).expect("ascii"));
            assert!(verify_access_token(&keyring, "https://issuer", &forged).is_err());

            let mut other = claims();
            other.sub = "someone-else".into();
            let (_, other_payload, _) = split3(&sign_access_token(&keyring, alg, &other).expect("sign"));
            let (head, _, sig) = split3(&token);
            let spliced = format!("{head}.{other_payload}.{sig}");
            assert!(verify_access_token(&keyring, "https://issuer", &spliced).is_err());
        }
    }

    fn split3(token: &str) -> (String, String, String) {
        let parts: Vec<&str> = token.split('.').collect();
        (parts[0].into(), parts[1].into(), parts[2].into())
    }

    /// `cargo test --release --lib jwt::tests::signing_cost -- --ignored --nocapture`: cost of one
    /// signature and one verification per algorithm.
    #[test]
    #[ignore = "measurement"]
    fn signing_cost() {
        let keyring = keyring();
        for alg in SigningAlg::ALL {
            let n = if alg == SigningAlg::ES256 { 5000 } else { 300 };
            let start = std::time::Instant::now();
            let mut token = String::new();
            for _ in 0..n {
                token = sign_access_token(&keyring, alg, &claims()).expect("sign");
            }
            let sign = start.elapsed() / n;
            let start = std::time::Instant::now();
            for _ in 0..n {
                verify_access_token(&keyring, "https://issuer", &token).expect("verify");
            }
            println!("{}: sign {:?}, verify {:?}", alg.as_str(), sign, start.elapsed() / n);
        }
    }
}
