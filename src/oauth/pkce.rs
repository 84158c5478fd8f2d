//! PKCE (RFC 7636) with S256 only: OAuth 2.1 §4.1.1 forbids `plain` where S256 is possible, and we
//! require it of every client.

use oauth2::{PkceCodeChallenge, PkceCodeVerifier};

use crate::crypto::constant_time_eq;

/// The one `code_challenge_method` accepted (and advertised).
pub const METHOD: &str = "S256";

/// A code challenge is the base64url of a SHA-256: exactly 43 characters of the base64url alphabet.
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.1: 43-128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)) must equal the stored challenge.
pub fn verifier_matches(verifier: &str, stored_challenge: &str) -> bool {
    if !valid_verifier(verifier) {
        return false;
    }
    let computed =
        PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.to_owned()));
    constant_time_eq(computed.as_str().as_bytes(), stored_challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(valid_challenge(challenge));
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
            challenge
        ));
        assert!(!verifier_matches("short", challenge));
    }
}
