//! Cryptographic building blocks: random values, the hashes we store instead of secrets, constant-time
//! comparison, and envelope encryption for the secrets we must read back.

mod envelope;

pub use envelope::{DataKey, EnvelopeError, MasterKey};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::{RngCore, rngs::OsRng};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Random bytes from aws-lc's DRBG (CTR-DRBG seeded and reseeded from the operating system, fork-safe),
/// the generator that also makes our ECDSA nonces. It answers from user space, where `OsRng` made a
/// getrandom(2) system call for every value: one per token response.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // aws-lc aborts rather than report a failure; should it ever report one, ask the OS directly.
        OsRng.fill_bytes(&mut bytes);
    }
    bytes
}

/// A 256-bit random value, base64url, with a recognisable prefix (`lk_rt_`, `lk_cs_`, ...), so a leaked
/// value can be identified by secret scanners and by people.
pub fn random_token(prefix: &str) -> String {
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
}

/// An opaque random identifier (128 bits) for rows that are not secrets.
pub fn random_id() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<16>())
}

/// Six decimal digits, uniformly distributed (rejection sampling avoids modulo bias).
pub fn random_digits6() -> String {
    loop {
        let n = u32::from_le_bytes(random_bytes::<4>());
        // 4_294_000_000 is the largest multiple of 1_000_000 below 2^32.
        if n < 4_294_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

/// SHA-256, hex: how high-entropy values (tokens, codes, client secrets) are stored and looked up.
pub fn sha256_hex(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write;
        let _ = write!(out, "{byte:02x}");
    }
    out
}

pub fn sha256(value: &[u8]) -> [u8; 32] {
    Sha256::digest(value).into()
}

/// The first characters of a secret, kept for display ("lk_rt_AbCd…").
pub fn display_prefix(secret: &str) -> String {
    secret.chars().take(10).collect()
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Keyed hash for short, guessable values (6-digit codes): without the key, a database dump does not
/// let anyone brute-force the million possibilities offline.
#[derive(Clone)]
pub struct CodeHasher {
    key: [u8; 32],
}

impl CodeHasher {
    pub fn new(master: &MasterKey) -> Self {
        Self {
            key: master.derive(b"latchkey/v1/code-hash"),
        }
    }

    /// HMAC-SHA256 over a context (tenant, purpose, row id) and the value, so a hash is not portable
    /// between rows.
    pub fn hash(&self, context: &str, value: &str) -> Vec<u8> {
        hmac_sha256(&self.key, &[context.as_bytes(), &[0], value.as_bytes()]).to_vec()
    }
}

/// HMAC-SHA256 over the concatenation of `parts`, keyed with a 32-byte key.
pub fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC is defined for keys of any length (RFC 2104 §2): this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_six_and_numeric() {
        for _ in 0..1000 {
            let code = random_digits6();
            assert_eq!(code.len(), 6);
            assert!(code.chars().all(|c| c.is_ascii_digit()));
        }
    }

    #[test]
    fn code_hash_depends_on_context_and_key() {
        let a = CodeHasher::new(&MasterKey::from_bytes([1; 32]));
        let b = CodeHasher::new(&MasterKey::from_bytes([2; 32]));
        assert_eq!(a.hash("x", "123456"), a.hash("x", "123456"));
        assert_ne!(a.hash("x", "123456"), a.hash("y", "123456"));
        assert_ne!(a.hash("x", "123456"), b.hash("x", "123456"));
    }
}
