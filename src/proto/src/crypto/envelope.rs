//! Envelope encryption. A master key (operator-supplied, or generated for development) wraps one data
//! key per tenant; data keys seal the secrets we must read back (private signing keys, later SSO client
//! secrets, TOTP seeds, webhook secrets). Rotating the master key re-wraps data keys only.
//!
//! Sealed format: `version (1) || nonce (24) || ciphertext+tag`, XChaCha20-Poly1305 (random 192-bit
//! nonces are safe without a counter), with the purpose and owner bound in as associated data so a
//! ciphertext cannot be moved to another row or tenant.

use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, KeyInit, Payload},
};
use zeroize::Zeroizing;

type Secret32 = Zeroizing<[u8; 32]>;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value failed authentication (wrong key or tampered)")]
    Unauthentic,
    #[error("master key must be 32 bytes of base64")]
    BadMasterKey,
}

fn seal_with(key: &[u8; 32], aad: &str, plaintext: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(&(*key).into());
    let nonce_bytes = super::random_bytes::<NONCE_LEN>();
    let nonce = XNonce::from(nonce_bytes);
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: aad.as_bytes(),
            },
        )
        .expect("encryption of an in-memory buffer cannot fail");
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&ciphertext);
    out
}

fn open_with(key: &[u8; 32], aad: &str, sealed: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
        return Err(EnvelopeError::Malformed);
    }
    let cipher = XChaCha20Poly1305::new(&(*key).into());
    let nonce =
        XNonce::try_from(&sealed[1..1 + NONCE_LEN]).map_err(|_| EnvelopeError::Malformed)?;
    cipher
        .decrypt(
            &nonce,
            Payload {
                msg: &sealed[1 + NONCE_LEN..],
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| EnvelopeError::Unauthentic)
}

#[derive(Clone)]
pub struct MasterKey(Secret32);

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn generate() -> Self {
        Self::from_bytes(super::random_bytes::<32>())
    }

    pub fn from_base64(text: &str) -> Result<Self, EnvelopeError> {
        use base64::{Engine, engine::general_purpose::STANDARD};
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| EnvelopeError::BadMasterKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| EnvelopeError::BadMasterKey)?;
        Ok(Self::from_bytes(bytes))
    }

    pub fn to_base64(&self) -> String {
        use base64::{Engine, engine::general_purpose::STANDARD};
        STANDARD.encode(*self.0)
    }

    /// A sub-key for one purpose (HMAC-SHA256 as a PRF), so the master key itself never keys anything
    /// but data-key wrapping.
    pub fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        super::hmac_sha256(&self.0, &[purpose])
    }

    pub fn wrap(&self, tenant_id: &str, data_key: &DataKey) -> Vec<u8> {
        seal_with(
            &self.0,
            &format!("latchkey/v1/data-key/{tenant_id}"),
            &*data_key.0,
        )
    }

    pub fn unwrap(&self, tenant_id: &str, wrapped: &[u8]) -> Result<DataKey, EnvelopeError> {
        let bytes = open_with(
            &self.0,
            &format!("latchkey/v1/data-key/{tenant_id}"),
            wrapped,
        )?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| EnvelopeError::Malformed)?;
        Ok(DataKey(Zeroizing::new(bytes)))
    }
}

impl MasterKey {
    /// The master key given inline (base64), else read from `path`; when that file does not exist (the
    /// embedded default), a new key is generated into it (0600) with a loud warning naming
    /// `how_to_supply`.
    pub fn load_or_generate(inline: Option<&str>, path: &std::path::Path, how_to_supply: &str) -> Result<Self, String> {
        if let Some(text) = inline {
            return Self::from_base64(text).map_err(|e| e.to_string());
        }
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                crate::fsutil::write_new_secret_file(path, key.to_base64().as_bytes())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                tracing::warn!(
                    path = %path.display(),
                    "GENERATED A NEW MASTER KEY. Fine for development; in production supply your own \
                     ({how_to_supply}) and keep it outside the data directory."
                );
                Ok(key)
            }
            Err(error) => Err(format!("{}: {error}", path.display())),
        }
    }
}

/// A tenant's data key. `purpose` names what is sealed and whose it is (e.g. `signing-key/{kid}`).
#[derive(Clone)]
pub struct DataKey(Secret32);

impl DataKey {
    pub fn generate() -> Self {
        Self(Zeroizing::new(super::random_bytes::<32>()))
    }

    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Vec<u8> {
        seal_with(&self.0, &format!("latchkey/v1/{purpose}"), plaintext)
    }

    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        open_with(&self.0, &format!("latchkey/v1/{purpose}"), sealed)
    }
}

// Key material never appears in debug output or logs.
impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_and_seal_round_trip_and_bind_context() {
        let master = MasterKey::generate();
        let data_key = DataKey::generate();
        let wrapped = master.wrap("tenant-a", &data_key);
        assert!(
            master.unwrap("tenant-b", &wrapped).is_err(),
            "a data key is bound to its tenant"
        );
        let unwrapped = master.unwrap("tenant-a", &wrapped).expect("unwrap");

        let sealed = data_key.seal("signing-key/k1", b"secret");
        assert_eq!(
            unwrapped.open("signing-key/k1", &sealed).expect("open"),
            b"secret"
        );
        assert!(
            unwrapped.open("signing-key/k2", &sealed).is_err(),
            "sealed value bound to its purpose"
        );
        assert!(
            MasterKey::generate().unwrap("tenant-a", &wrapped).is_err(),
            "wrong master key"
        );

        let mut tampered = sealed.clone();
        *tampered.last_mut().expect("non-empty") ^= 1;
        assert!(matches!(
            data_key.open("signing-key/k1", &tampered),
            Err(EnvelopeError::Unauthentic)
        ));
        assert!(matches!(
            data_key.open("signing-key/k1", &[1, 2, 3]),
            Err(EnvelopeError::Malformed)
        ));
    }
}
