//! The scopes a person's authorization grants (RFC 6749 §3.3: the server may grant fewer than asked
//! and says so in the token response's `scope`; OIDC Core §3.1.2.1: scope values the server does not
//! understand are ignored). A pure decision over the request, the client and the named resource.
//!
//! Machine tokens (client credentials, agent tokens) follow stricter rules: `grants::client_credentials`.

use super::params::split_scope;
use super::resource::Resource;

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
pub fn granted(requested: Option<&str>, client_scopes: &[String], resource: Option<&Resource>) -> Result<Vec<String>, &'static str> {
    let requested = requested.map(split_scope).unwrap_or_default();
    if requested.is_empty() {
        return Ok(match resource {
            Some(resource) => resource.defaults().to_vec(),
            None => client_scopes.to_vec(),
        });
    }
    let available = |s: &String| client_scopes.contains(s) || resource.is_some_and(|r| r.scopes.contains(s));
    let granted: Vec<String> = requested.into_iter().filter(available).collect();
    if granted.is_empty() { Err(NOTHING_LEFT) } else { Ok(granted) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(scopes: &str) -> Vec<String> {
        split_scope(scopes)
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
            assert_eq!(granted(requested, &client, resource), want.map(list), "{name}");
        }
    }
}
