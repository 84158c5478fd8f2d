//! The claims of a Latchkey access token (RFC 9068 §2.2), as the identity server signs them and a
//! resource server reads them: one declaration for both sides.

use serde::{Deserialize, Serialize};

use crate::acr::{Acr, Amr};

/// Who a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Caller {
    /// A person who signed in.
    Person,
    /// A service account, or a client acting for itself (client credentials).
    Agent,
}

impl Caller {
    pub const fn as_str(self) -> &'static str {
        match self {
            Caller::Person => "person",
            Caller::Agent => "agent",
        }
    }
}

/// RFC 9068 §2.2 claims, plus Latchkey's `caller`, `org`, `roles` and `grant_id`, and RFC 9396
/// `authorization_details`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<Acr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<Amr>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Always present, so a resource server can tell a person from an agent without guessing.
    pub caller: Caller,
    /// The slug of the organization the subject belongs to, and the roles it holds there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// The refresh-token family (the grant) the token was issued under, so revoking the family makes
    /// the token inactive without a row per token. An opaque id, not a credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// RFC 9396 §9.1: what the person approved, in a token issued for an approval (CIBA). A resource
    /// server compares it with the call it is about to make (docs/approvals.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<serde_json::Value>,
    /// draft-ietf-oauth-status-list §6: the token's entry in its issuer's status list, so a resource
    /// server that validates offline learns of a revocation from the list it refreshes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<crate::status_list::Status>,
}

impl AccessClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scopes().any(|s| s == wanted)
    }

    pub fn is_agent(&self) -> bool {
        self.caller == Caller::Agent
    }

    pub fn roles(&self) -> &[String] {
        self.roles.as_deref().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_shape_is_stable() {
        let token = serde_json::json!({
            "iss": "https://id.example/t/acme", "sub": "u", "aud": "https://api.example", "client_id": "c",
            "scope": "files:read files:write", "exp": 2, "iat": 1, "jti": "j", "acr": "phr", "caller": "person",
        });
        let claims: AccessClaims = serde_json::from_value(token.clone()).expect("parses");
        assert_eq!((claims.acr, claims.caller, claims.is_agent()), (Some(Acr::Phr), Caller::Person, false));
        assert!(claims.has_scope("files:write") && !claims.has_scope("files"));
        assert_eq!(serde_json::to_value(&claims).expect("serialises"), token);

        let mut without_caller = token.clone();
        without_caller.as_object_mut().expect("object").remove("caller");
        assert!(serde_json::from_value::<AccessClaims>(without_caller).is_err(), "caller is part of the contract");
        let mut unknown_acr = token;
        unknown_acr["acr"] = "urn:example:gold".into();
        assert!(serde_json::from_value::<AccessClaims>(unknown_acr).is_err());
    }
}
