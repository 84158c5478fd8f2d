//! Scopes: the `Scopes` type a request carries them in, and the scopes a person's authorization
//! grants (`granted`; RFC 6749 §3.3: the server may grant fewer than asked
//! and says so in the token response's `scope`; OIDC Core §3.1.2.1: scope values the server does not
//! understand are ignored). A pure decision over the request, the client and the named resource.
//!
//! Machine tokens (client credentials, agent tokens) follow stricter rules: `grants::client_credentials`.

use std::{fmt, ops::Deref};

use serde::{Deserialize, Serialize};

use super::params::{each_once, split_list};
use super::resource::Resource;

/// A scope parameter's values (RFC 6749 §3.3: space-delimited, order without meaning, so each value
/// once; the order asked for is kept because it is what the client reads back). Rendered as the
/// space-delimited string (`Display`) in token responses and codes; serialised as a list wherever it is
/// stored as JSON or written to the audit trail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// A `scope` parameter or a stored space-delimited list; empty values (repeated spaces) dropped.
    pub fn parse(scope: &str) -> Self {
        Self(split_list(scope))
    }

    /// Whether every value of `self` is among `other`'s (a remembered consent covers the request).
    pub fn within(&self, other: &[String]) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }

    pub fn has(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

impl From<Vec<String>> for Scopes {
    fn from(values: Vec<String>) -> Self {
        values.into_iter().collect()
    }
}

impl From<Scopes> for Vec<String> {
    fn from(scopes: Scopes) -> Self {
        scopes.0
    }
}

impl FromIterator<String> for Scopes {
    fn from_iter<I: IntoIterator<Item = String>>(values: I) -> Self {
        Self(each_once(values))
    }
}

impl Deref for Scopes {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// Why nothing can be granted: every scope asked for was dropped.
pub const NOTHING_LEFT: &str = "none of the requested scopes is available to this client";

/// The scopes to authorize, in the order asked for.
///
/// - Asked for some: those the client registered or the named resource offers (a self-registered
///   MCP client learns a resource's scopes only from its metadata); the rest are dropped. If none is
///   left, the request fails (`invalid_scope`): an authorization for nothing is never what the
///   client meant.
/// - Asked for none, naming a resource: the resource's default scopes (RFC 8707 clients often name
///   only the resource).
/// - Asked for none, no resource: what the client registered (RFC 6749 §3.3's pre-defined default).
pub fn granted(requested: Option<&str>, client_scopes: &[String], resource: Option<&Resource>) -> Result<Scopes, &'static str> {
    let requested = requested.map(Scopes::parse).unwrap_or_default();
    if requested.is_empty() {
        return Ok(match resource {
            Some(resource) => resource.defaults().iter().cloned().collect(),
            None => client_scopes.iter().cloned().collect(),
        });
    }
    let available = |s: &String| client_scopes.contains(s) || resource.is_some_and(|r| r.scopes.contains(s));
    let granted: Scopes = requested.into_vec().into_iter().filter(available).collect();
    if granted.is_empty() { Err(NOTHING_LEFT) } else { Ok(granted) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(scopes: &str) -> Vec<String> {
        Scopes::parse(scopes).into_vec()
    }

    #[test]
    fn a_scope_parameter_is_each_value_once_in_the_order_asked() {
        let cases: [(&str, &str, &[&str]); 5] = [
            ("one", "openid", &["openid"]),
            ("order kept", "email openid", &["email", "openid"]),
            ("repeats once", "openid email openid", &["openid", "email"]),
            ("runs of spaces", "  openid   email ", &["openid", "email"]),
            ("blank is none", "   ", &[]),
        ];
        for (name, parameter, want) in cases {
            let scopes = Scopes::parse(parameter);
            assert_eq!(scopes.iter().map(String::as_str).collect::<Vec<_>>(), want, "{name}");
            assert_eq!(scopes.to_string(), want.join(" "), "{name}: rendered space-delimited");
        }
        let stored: Scopes = serde_json::from_str(r#"["a","b","a",""]"#).expect("json");
        assert_eq!(serde_json::to_string(&stored).expect("json"), r#"["a","b"]"#, "a stored list reads back each value once");
        assert!(Scopes::parse("a b").within(&list("b c a")) && !Scopes::parse("a d").within(&list("a b")));
    }

    #[test]
    fn what_an_authorization_grants() {
        let client = list("openid profile email offline_access");
        let files = Resource {
            uri: "https://files.example/mcp".into(),
            name: "files".into(),
            scopes: list("files:read files:write files:delete"),
            step_up: false,
            accepts_agents: false,
            default_scopes: Some(list("files:read")),
        };
        let all_default = Resource { default_scopes: None, ..files.clone() };
        type Case<'a> = (&'a str, Option<&'a str>, Option<&'a Resource>, Result<&'a str, &'static str>);
        let cases: [Case; 10] = [
            ("libraries' default", Some("openid profile email"), None, Ok("openid profile email")),
            ("unknown scope dropped", Some("openid email address phone"), None, Ok("openid email")),
            ("repeated scope once", Some("openid openid email"), None, Ok("openid email")),
            ("nothing asked, no resource: registered", None, None, Ok("openid profile email offline_access")),
            ("blank scope is none", Some("  "), None, Ok("openid profile email offline_access")),
            ("resource scopes with the client's", Some("openid files:write"), Some(&files), Ok("openid files:write")),
            ("resource scope without the resource", Some("openid files:write"), None, Ok("openid")),
            ("nothing asked, resource: its defaults", None, Some(&files), Ok("files:read")),
            ("defaults unset: all its scopes", None, Some(&all_default), Ok("files:read files:write files:delete")),
            ("only unknown scopes", Some("admin:everything"), Some(&files), Err(NOTHING_LEFT)),
        ];
        for (name, requested, resource, want) in cases {
            assert_eq!(granted(requested, &client, resource).map(Scopes::into_vec), want.map(list), "{name}");
        }
    }
}
