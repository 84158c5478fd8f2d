//! Decision receipts: compact JWS (`typ` decision+jwt) signed with the permission API's own Ed25519 key
//! (RFC 8037 `EdDSA`), published as an OKP JWK at `/.well-known/jwks.json`.
//!
//! Ed25519 rather than ES256 because a receipt is signed for every decision and Ed25519 signs in about a
//! third of the time (docs/benchmarks.md), deterministically, with no per-signature randomness to get
//! wrong. The private key is kept sealed: its PKCS#8 under a data key, the data key wrapped by the
//! master key — the envelope the identity server uses for its signing keys.

use std::path::Path;

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{Ed25519KeyPair, KeyPair},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroize::Zeroizing;

use latchkey_proto::{
    crypto::{self, DataKey, MasterKey, base64url},
    jws,
};

pub const RECEIPT_TYP: &str = "decision+jwt";
/// The JWS `alg` of every receipt (also advertised in the RFC 9728 metadata).
pub const RECEIPT_ALG: &str = "EdDSA";
const KEY_FILE: &str = "receipt-key-ed25519.sealed";
const OWNER: &str = "permission-api";
const PURPOSE: &str = "receipt-key";

pub struct ReceiptKey {
    kid: String,
    pair: Ed25519KeyPair,
    /// `{"keys":[…]}`, serialised once.
    pub jwks: String,
}

/// The file on disk.
#[derive(Serialize, Deserialize)]
struct SealedReceiptKey {
    wrapped_data_key: String,
    sealed_key: String,
}

impl ReceiptKey {
    fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, String> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| e.to_string())?;
        let x = base64url(pair.public_key().as_ref());
        // RFC 7638 §3.2 / RFC 8037 §2: the thumbprint of the required members in lexicographic order.
        let kid = base64url(&crypto::sha256(format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#).as_bytes()));
        let jwks = json!({ "keys": [{
            "kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA", "use": "sig", "kid": kid,
        }] })
        .to_string();
        Ok(Self { kid, pair, jwks })
    }

    /// Opens the sealed key in `data_dir`, or generates and seals one on first start.
    pub fn load_or_generate(data_dir: &Path, master: &MasterKey) -> Result<Self, String> {
        let path = data_dir.join(KEY_FILE);
        let error = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        match std::fs::read(&path) {
            Ok(bytes) => {
                let stored: SealedReceiptKey = serde_json::from_slice(&bytes).map_err(|e| error(&e))?;
                let wrapped = STANDARD.decode(stored.wrapped_data_key).map_err(|e| error(&e))?;
                let sealed = STANDARD.decode(stored.sealed_key).map_err(|e| error(&e))?;
                let data_key = master.unwrap(OWNER, &wrapped).map_err(|e| error(&e))?;
                let pkcs8 = Zeroizing::new(data_key.open(PURPOSE, &sealed).map_err(|e| error(&e))?);
                Self::from_pkcs8(&pkcs8).map_err(|e| error(&e))
            }
            Err(missing) if missing.kind() == std::io::ErrorKind::NotFound => {
                let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|e| error(&e))?;
                let pkcs8 = Zeroizing::new(document.as_ref().to_vec());
                let data_key = DataKey::generate();
                let stored = SealedReceiptKey {
                    wrapped_data_key: STANDARD.encode(master.wrap(OWNER, &data_key)),
                    sealed_key: STANDARD.encode(data_key.seal(PURPOSE, &pkcs8)),
                };
                let json = serde_json::to_vec(&stored).map_err(|e| error(&e))?;
                latchkey_proto::fsutil::write_new_secret_file(&path, &json).map_err(|e| error(&e))?;
                Self::from_pkcs8(&pkcs8).map_err(|e| error(&e))
            }
            Err(other) => Err(error(&other)),
        }
    }

    pub fn sign<T: Serialize>(&self, receipt: &T) -> Result<String, jws::SignError> {
        jws::compact_jws(RECEIPT_ALG, RECEIPT_TYP, &self.kid, receipt, |input| Ok(self.pair.sign(input).as_ref().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_verify_against_the_published_key_and_the_key_survives_a_restart() {
        let dir = tempfile::tempdir().expect("dir");
        let master = MasterKey::from_bytes([7; 32]);
        let key = ReceiptKey::load_or_generate(dir.path(), &master).expect("generate");
        let signed = key.sign(&json!({ "decision": "allow" })).expect("sign");
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&key.jwks).expect("jwks");
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).expect("key");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let verified = jsonwebtoken::decode::<serde_json::Value>(&signed, &decoding, &validation).expect("verifies");
        assert_eq!(verified.claims["decision"], "allow");
        assert_eq!(verified.header.kid, jwks.keys[0].common.key_id);

        let reopened = ReceiptKey::load_or_generate(dir.path(), &master).expect("reopen");
        assert_eq!(reopened.jwks, key.jwks, "the same key after a restart");
        assert!(ReceiptKey::load_or_generate(dir.path(), &MasterKey::from_bytes([8; 32])).is_err(), "sealed under the master key");
    }
}
