//! RFC 7515 compact JWS, as Latchkey signs its tokens and the permission API its receipts.

use serde::Serialize;

use crate::crypto::base64url;

/// `typ` of an access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

#[derive(Debug, thiserror::Error)]
#[error("signing failed: {0}")]
pub struct SignError(pub String);

/// RFC 7515 §7.1 compact serialisation: BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(sig),
/// `sign` producing the signature over the first two parts.
pub fn compact_jws<T: Serialize>(
    alg: &'static str,
    typ: &str,
    kid: &str,
    claims: &T,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, SignError>,
) -> Result<String, SignError> {
    let mut token = encode_part(&JwsHeader { alg, typ, kid })?;
    token.push('.');
    token.push_str(&encode_part(claims)?);
    let signature = sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&base64url(&signature));
    Ok(token)
}

#[derive(Serialize)]
struct JwsHeader<'a> {
    alg: &'static str,
    typ: &'a str,
    kid: &'a str,
}

fn encode_part<T: Serialize>(value: &T) -> Result<String, SignError> {
    let json = serde_json::to_vec(value).map_err(|e| SignError(e.to_string()))?;
    Ok(base64url(&json))
}
