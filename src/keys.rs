//! Per-tenant signing keys: ES256 (access tokens by default) and RS256 (the OIDC default for ID tokens).
//!
//! Private keys are sealed under the tenant's data key. The JWKS publishes the current key of each
//! algorithm plus retired keys until `publish_until`, by which time every token they signed has expired.
//! `kid` is the RFC 7638 thumbprint of the public key.

use std::{collections::HashMap, str::FromStr};

use bytes::Bytes;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey,
    jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash},
};
use aws_lc_rs::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair},
};
use rand::rngs::OsRng;

use crate::{
    crypto::DataKey,
    store::{Scoped, StoreError, StoreResult, now, signing_keys},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    ES256,
    RS256,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 2] = [SigningAlg::ES256, SigningAlg::RS256];
    /// Every algorithm, in the order discovery lists them: RS256 first, the one OIDC Core §15.1
    /// requires of every provider, for clients that take the first listed.
    pub const ADVERTISED: [SigningAlg; 2] = [SigningAlg::RS256, SigningAlg::ES256];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }

    pub fn jwt_algorithm(self) -> Algorithm {
        match self {
            Self::ES256 => Algorithm::ES256,
            Self::RS256 => Algorithm::RS256,
        }
    }
}

impl FromStr for SigningAlg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ES256" => Ok(Self::ES256),
            "RS256" => Ok(Self::RS256),
            other => Err(format!(
                "unsupported signing algorithm {other:?} (ES256 or RS256)"
            )),
        }
    }
}

/// A current private key, parsed once when the keyring is loaded. jsonwebtoken's `encode` re-parses and
/// re-validates the DER key on every signature, which measured at two thirds of an ES256 signature's
/// cost; holding the parsed aws-lc key pair removes that from the token endpoint's hot path.
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    private: PrivateKey,
}

enum PrivateKey {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl SigningKey {
    fn parse(kid: String, alg: SigningAlg, der: &[u8]) -> Result<Self, KeyError> {
        let private = match alg {
            SigningAlg::ES256 => PrivateKey::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|e| KeyError::Generate(e.to_string()))?,
            ),
            SigningAlg::RS256 => PrivateKey::Rsa(
                RsaKeyPair::from_der(der).map_err(|e| KeyError::Generate(e.to_string()))?,
            ),
        };
        Ok(Self { kid, alg, private })
    }

    /// The JWS signature over `message` (RFC 7518 §3.3 RSASSA-PKCS1-v1_5, §3.4 ECDSA in the fixed
    /// R||S form JWS requires).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match &self.private {
            PrivateKey::Ec(pair) => pair
                .sign(&rng, message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|e| KeyError::Sign(e.to_string())),
            PrivateKey::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(|e| KeyError::Sign(e.to_string()))?;
                Ok(signature)
            }
        }
    }
}

pub struct VerifyingKey {
    pub alg: SigningAlg,
    pub decoding: DecodingKey,
}

/// Everything a node needs to sign and verify for one tenant, loaded once per cache period.
pub struct Keyring {
    current: HashMap<SigningAlg, SigningKey>,
    verifying: HashMap<String, VerifyingKey>,
    /// The JWKS document, serialised once and shared with every response.
    pub jwks_json: Bytes,
}

impl Keyring {
    pub fn signing_key(&self, alg: SigningAlg) -> Option<&SigningKey> {
        self.current.get(&alg)
    }

    pub fn verifying_key(&self, kid: &str) -> Option<&VerifyingKey> {
        self.verifying.get(kid)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// An ES256 key outside any tenant (tests use it to play an issuer of their own): loaded from its
/// PKCS#8 DER, or generated. Returns the key, its public JWK (`kid` = thumbprint) and the DER to persist.
pub fn standalone_es256(der: Option<Vec<u8>>) -> Result<(SigningKey, Jwk, Vec<u8>), KeyError> {
    let der = match der {
        Some(der) => der,
        None => generate_private_der(SigningAlg::ES256)?,
    };
    let jwk = public_jwk(SigningAlg::ES256, &encoding_key(SigningAlg::ES256, &der))?;
    let kid = jwk.common.key_id.clone().unwrap_or_default();
    let key = SigningKey::parse(kid, SigningAlg::ES256, &der)?;
    Ok((key, jwk, der))
}

/// A new private key, DER-encoded as jsonwebtoken expects it (PKCS#8 for EC, PKCS#1 for RSA).
fn generate_private_der(alg: SigningAlg) -> Result<Vec<u8>, KeyError> {
    match alg {
        SigningAlg::ES256 => {
            use p256::pkcs8::EncodePrivateKey;
            let key = p256::SecretKey::random(&mut OsRng);
            Ok(key
                .to_pkcs8_der()
                .map_err(|e| KeyError::Generate(e.to_string()))?
                .as_bytes()
                .to_vec())
        }
        SigningAlg::RS256 => {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            let key = rsa::RsaPrivateKey::new(&mut OsRng, 2048)
                .map_err(|e| KeyError::Generate(e.to_string()))?;
            Ok(key
                .to_pkcs1_der()
                .map_err(|e| KeyError::Generate(e.to_string()))?
                .as_bytes()
                .to_vec())
        }
    }
}

fn encoding_key(alg: SigningAlg, der: &[u8]) -> EncodingKey {
    match alg {
        SigningAlg::ES256 => EncodingKey::from_ec_der(der),
        SigningAlg::RS256 => EncodingKey::from_rsa_der(der),
    }
}

fn public_jwk(alg: SigningAlg, encoding: &EncodingKey) -> Result<Jwk, KeyError> {
    let mut jwk = Jwk::from_encoding_key(encoding, alg.jwt_algorithm())
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    jwk.common.key_id = Some(kid);
    Ok(jwk)
}

/// Generates one key per algorithm and makes them current; previously current keys are retired but stay
/// published for `publish_grace` seconds. Keys past their publication window are deleted.
pub async fn rotate(
    scope: Scoped<'_>,
    data_key: &DataKey,
    publish_grace: i64,
) -> StoreResult<Vec<String>> {
    let now = now();
    signing_keys::retire_current(scope, now, now + publish_grace).await?;
    generate_current_keys(scope, data_key).await
}

pub async fn generate_current_keys(
    scope: Scoped<'_>,
    data_key: &DataKey,
) -> StoreResult<Vec<String>> {
    let mut kids = Vec::new();
    for alg in SigningAlg::ALL {
        // RSA key generation takes a noticeable time: keep it off the async executor.
        let der = tokio::task::spawn_blocking(move || generate_private_der(alg))
            .await
            .map_err(|e| StoreError::Corrupt(format!("key generation task: {e}")))?
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let jwk = public_jwk(alg, &encoding_key(alg, &der))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        let new = signing_keys::NewKey {
            kid: &kid,
            alg: alg.as_str(),
            sealed_private_key: data_key.seal(&format!("signing-key/{kid}"), &der),
            public_jwk: serde_json::to_string(&jwk).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            created_at: now(),
        };
        signing_keys::insert(scope, new).await?;
        kids.push(kid);
    }
    Ok(kids)
}

/// Loads the tenant's published keys, unseals the current private keys, and prepares the JWKS.
pub async fn load_keyring(scope: Scoped<'_>, data_key: &DataKey) -> StoreResult<Keyring> {
    let now = now();
    let rows = signing_keys::published(scope, now).await?;
    let mut current = HashMap::new();
    let mut verifying = HashMap::new();
    let mut jwks = JwkSet { keys: Vec::new() };
    for row in rows {
        let alg: SigningAlg = row.alg.parse().map_err(StoreError::Corrupt)?;
        let jwk: Jwk = serde_json::from_str(&row.public_jwk)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let decoding =
            DecodingKey::from_jwk(&jwk).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        verifying.insert(row.kid.clone(), VerifyingKey { alg, decoding });
        jwks.keys.push(jwk);
        if row.retired_at.is_none() && !current.contains_key(&alg) {
            let der = data_key
                .open(&format!("signing-key/{}", row.kid), &row.sealed_private_key)
                .map_err(|e| StoreError::Corrupt(format!("signing key {}: {e}", row.kid)))?;
            let key = SigningKey::parse(row.kid.clone(), alg, &der)
                .map_err(|e| StoreError::Corrupt(format!("signing key {}: {e}", row.kid)))?;
            current.insert(alg, key);
        }
    }
    let jwks_json = serde_json::to_vec(&jwks)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?
        .into();
    Ok(Keyring {
        current,
        verifying,
        jwks_json,
    })
}
