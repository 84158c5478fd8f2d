//! The MCP session id as a signed value (MCP 2025-11-25, streamable HTTP §"Session Management"): the
//! endpoint is stateless — any replica answers any request — yet a tool call must know what the
//! client declared at `initialize` (URL-mode elicitation, to answer "approval needed" as the
//! `URLElicitationRequiredError` such a client acts on). So the `Mcp-Session-Id` the initialize
//! response carries is those capabilities, MACed with a key derived from the master key: every
//! replica configured with that key reads it, nothing is stored, and a client cannot claim a
//! capability it did not declare under another session's id (it could only declare it, which is its
//! right). An id that does not verify is ignored (treated as "declared nothing").

use latchkey_proto::crypto::{self, MasterKey};
use serde::{Deserialize, Serialize};

/// What a client declared at initialize that the gate needs later.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declared {
    /// `capabilities.elicitation.url` was present.
    #[serde(rename = "u")]
    pub url_elicitation: bool,
}

pub struct SessionKey([u8; 32]);

impl SessionKey {
    pub fn derive(master: &MasterKey) -> Self {
        Self(master.derive(b"latchkey-permissions/v1/mcp-session"))
    }

    fn mac(&self, payload: &str) -> String {
        crypto::base64url(&crypto::hmac_sha256(&self.0, &[b"mcp-session", &[0], payload.as_bytes()]))
    }

    /// A session id: visible ASCII only (base64url and a dot), as the transport requires; a random
    /// part so two sessions never share an id.
    pub fn issue(&self, declared: Declared) -> String {
        let body = serde_json::json!({ "d": declared, "n": crypto::random_id() }).to_string();
        let payload = crypto::base64url(body.as_bytes());
        format!("{payload}.{}", self.mac(&payload))
    }

    pub fn read(&self, id: &str) -> Option<Declared> {
        let (payload, mac) = id.split_once('.')?;
        if !crypto::constant_time_eq(self.mac(payload).as_bytes(), mac.as_bytes()) {
            return None;
        }
        #[derive(Deserialize)]
        struct Body {
            d: Declared,
        }
        let body: Body = serde_json::from_slice(&crypto::base64url_decode(payload)?).ok()?;
        Some(body.d)
    }
}

/// What an `initialize` request's params declare.
pub fn declared(params: &serde_json::Value) -> Declared {
    Declared { url_elicitation: params["capabilities"]["elicitation"].get("url").is_some_and(serde_json::Value::is_object) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_id_carries_what_was_declared_and_nothing_forged() {
        let key = SessionKey::derive(&MasterKey::from_bytes([7; 32]));
        let other = SessionKey::derive(&MasterKey::from_bytes([8; 32]));
        let id = key.issue(Declared { url_elicitation: true });
        assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        assert_eq!(key.read(&id), Some(Declared { url_elicitation: true }));
        assert_eq!(other.read(&id), None, "another deployment's key");
        let (payload, mac) = id.split_once('.').expect("dot");
        let forged = crypto::base64url(br#"{"d":{"u":true},"n":"x"}"#);
        assert_eq!(key.read(&format!("{forged}.{mac}")), None);
        assert_eq!(key.read(payload), None);
        assert_ne!(key.issue(Declared::default()), key.issue(Declared::default()));
        let params = |text: &str| serde_json::from_str::<serde_json::Value>(text).expect("json");
        assert_eq!(declared(&params(r#"{"capabilities":{"elicitation":{"url":{}}}}"#)), Declared { url_elicitation: true });
        assert_eq!(declared(&params(r#"{"capabilities":{"elicitation":{}}}"#)), Declared { url_elicitation: false });
        assert_eq!(declared(&params(r#"{"capabilities":{}}"#)), Declared { url_elicitation: false });
    }
}
