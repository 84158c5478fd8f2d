//! A value that must never reach a log: a token, a code, a client secret. It serialises as itself (it
//! is sent to whoever it belongs to) but `Debug` shows only that it is there, so a `{:?}` of a response
//! or an error cannot leak it.

use std::fmt;

use serde::{Serialize, Serializer};
use zeroize::Zeroize;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value itself, for the one place it goes (a response body, an email).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_never_shows_the_value_and_serialisation_does() {
        let secret = Secret::new("lk_rt_very-secret".into());
        assert_eq!(format!("{secret:?}"), "Secret(redacted)");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret(redacted))");
        assert_eq!(serde_json::to_string(&secret).expect("json"), r#""lk_rt_very-secret""#);
    }
}
