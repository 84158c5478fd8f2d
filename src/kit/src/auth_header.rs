//! One parser for `Authorization` headers, shared by every endpoint and by the permission API.
//! RFC 9110 §11.1: the scheme is case-insensitive (`bearer`, `Bearer`, `BEARER` are one scheme);
//! §11.4 / RFC 6750 §2.1: one space, then the credentials, which contain no space.

/// The credentials of `header` if its scheme is `scheme` (e.g. "Bearer", "Basic").
pub fn credentials<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = header.trim_start().split_once(' ')?;
    if !given.eq_ignore_ascii_case(scheme) {
        return None;
    }
    let credentials = rest.trim_matches(' ');
    (!credentials.is_empty() && !credentials.contains(' ')).then_some(credentials)
}

/// An auth-param value as a quoted-string for a challenge (`WWW-Authenticate: Bearer error="…"`):
/// RFC 9110 §5.6.4, with the characters it cannot carry (quotes, backslashes, controls, non-ASCII)
/// dropped rather than escaped, so no value can end the string early.
pub fn quoted_string(value: &str) -> String {
    let clean: String = value.chars().filter(|c| *c == ' ' || (c.is_ascii_graphic() && *c != '"' && *c != '\\')).collect();
    format!("\"{clean}\"")
}

#[cfg(test)]
mod tests {
    use super::{credentials, quoted_string};

    #[test]
    fn a_quoted_string_cannot_be_broken_out_of() {
        assert_eq!(quoted_string("insufficient_scope"), r#""insufficient_scope""#);
        assert_eq!(quoted_string("a \"b\" \\c\r\nd"), r#""a b cd""#);
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_the_credentials_one_token() {
        for (header, scheme, expected) in [
            ("Bearer abc.def", "Bearer", Some("abc.def")),
            ("bearer abc.def", "Bearer", Some("abc.def")),
            ("BEARER abc.def", "Bearer", Some("abc.def")),
            ("Bearer  abc ", "Bearer", Some("abc")),
            ("basic dXNlcjpwdw==", "Basic", Some("dXNlcjpwdw==")),
            ("Bearer", "Bearer", None),
            ("Bearer ", "Bearer", None),
            ("Bearer a b", "Bearer", None),
            ("Basic abc", "Bearer", None),
            ("Bearerabc", "Bearer", None),
        ] {
            assert_eq!(credentials(header, scheme), expected, "{header:?}");
        }
    }
}
