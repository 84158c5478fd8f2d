//! Strict parsing of OAuth parameters from a query string or an `application/x-www-form-urlencoded`
//! body: a parameter may appear at most once (RFC 6749 §3.1, §3.2), sizes are bounded, and bytes that
//! are not UTF-8 are rejected rather than guessed at.

use super::error::OAuthError;

/// Larger than any legitimate parameter (an ID token hint is a few KB).
pub const MAX_VALUE_LEN: usize = 8 * 1024;
pub const MAX_PARAMS: usize = 64;

#[derive(Debug, Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

fn percent_decode(raw: &[u8]) -> Result<String, OAuthError> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let decoded: Vec<u8> = percent_encoding::percent_decode(&plus_as_space).collect();
    let text = String::from_utf8(decoded)
        .map_err(|_| OAuthError::invalid_request("parameters must be UTF-8"))?;
    if has_control_characters(&text) {
        return Err(OAuthError::invalid_request(
            "parameters must not contain control characters",
        ));
    }
    Ok(text)
}

/// C0 controls other than tab and line breaks never belong in a parameter, and NUL cannot even be stored
/// in a PostgreSQL text column: refuse them at the edge.
pub fn has_control_characters(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

impl Params {
    pub fn parse(raw: &[u8]) -> Result<Self, OAuthError> {
        Self::parse_limited(raw, MAX_VALUE_LEN)
    }

    /// As `parse`, for the one form whose value is larger (a SAML response).
    pub fn parse_limited(raw: &[u8], max_value_len: usize) -> Result<Self, OAuthError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for piece in raw.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match piece.iter().position(|&b| b == b'=') {
                Some(i) => (&piece[..i], &piece[i + 1..]),
                None => (piece, &b""[..]),
            };
            let name = percent_decode(name)?;
            let value = percent_decode(value)?;
            if value.len() > max_value_len || name.len() > 128 {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {:.40} is too long",
                    name
                )));
            }
            // RFC 6749 §3.1: parameters sent without a value are treated as omitted.
            if value.is_empty() {
                continue;
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {name:.40} is repeated"
                )));
            }
            pairs.push((name, value));
            if pairs.len() > MAX_PARAMS {
                return Err(OAuthError::invalid_request("too many parameters"));
            }
        }
        Ok(Self { pairs })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter: {name}")))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// A space-delimited parameter (`scope`, RFC 6749 §3.3; `prompt` and `acr_values`, OIDC Core
/// §3.1.2.1): its values, each once, in the order given. Scopes have their own type, `scope::Scopes`.
pub fn split_list(list: &str) -> Vec<String> {
    each_once(list.split(' ').map(str::to_owned))
}

/// Non-empty values, each once, in the order first given.
pub fn each_once(values: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for value in values {
        if !value.is_empty() && !out.contains(&value) {
            out.push(value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_duplicates_and_bad_utf8() {
        assert!(Params::parse(b"a=1&a=2").is_err());
        assert!(Params::parse(b"a=%ff%fe").is_err());
        assert!(Params::parse(b"a=%00").is_err());
        let p = Params::parse(b"a=x+y%21&b=&c").expect("parse");
        assert_eq!(p.get("a"), Some("x y!"));
        assert!(!p.contains("b"));
        assert!(!p.contains("c"));
        let long = format!("a={}", "x".repeat(MAX_VALUE_LEN + 1));
        assert!(Params::parse(long.as_bytes()).is_err());
    }
}
