//! A person's yes for one tool call, asked of Latchkey over OpenID CIBA (poll mode) with an RFC 9396
//! `tool_call` authorization detail (docs/approvals.md).
//!
//! The permission API keeps nothing: for a call that needs approval it sends the backchannel request
//! and polls once. Latchkey joins an identical request (same client, person, resource and details)
//! to the approval already open, so a retried call — on this replica or any other — finds the
//! person's answer there. Approved, the token Latchkey issues is verified like any access token (our
//! resource as audience, the issuer's keys) and must name this subject and exactly this call, at
//! `acr` `phr`; Latchkey yields it once, so an approval allows one call.

use std::{collections::HashMap, time::Duration};

use latchkey_proto::{AccessClaims, Acr, Secret, crypto};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::verifier::Verifier;

/// The permission API's client at one issuer: a confidential client registered for the CIBA grant
/// (`latchkey client create --confidential --grant-type urn:openid:params:grant-type:ciba`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalClient {
    pub issuer: String,
    pub client_id: String,
    /// The secret, or a file holding it (kept out of the configuration file).
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub client_secret_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for ApprovalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalClient").field("issuer", &self.issuer).field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// `[approvals]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalConfig {
    /// How long a person has to answer (seconds; Latchkey allows up to 600).
    #[serde(default = "default_expiry")]
    pub expires_in: i64,
    pub clients: Vec<ApprovalClient>,
}

fn default_expiry() -> i64 {
    300
}

/// One call, as the person is asked about it.
pub struct Call<'a> {
    pub tool: &'a str,
    pub action: &'a str,
    pub arguments_digest: &'a str,
    /// A sentence for the person (the caller's, or made from the arguments).
    pub summary: &'a str,
}

/// Where an approval stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Approved { approval_id: String },
    Pending { approval_id: String, approval_uri: String, binding_message: String, expires_in: i64 },
    Denied { approval_id: String },
    /// Latchkey is not configured for this issuer, unreachable, or refused the request.
    Unavailable(String),
}

struct Endpoints {
    backchannel: String,
    token: String,
}

pub struct Approvals {
    config: Option<ApprovalConfig>,
    secrets: HashMap<String, (String, Secret)>,
    http: reqwest::Client,
    endpoints: tokio::sync::Mutex<HashMap<String, std::sync::Arc<Endpoints>>>,
    resource: String,
}

/// The binding message (CIBA §7.1): the same short text on the approval page and in what the model
/// relays, so the person can tell they approve the call they were told about.
pub fn binding_message(tool: &str, arguments_digest: &str) -> String {
    let code: String = arguments_digest.trim_start_matches("sha256:").chars().filter(char::is_ascii_alphanumeric).take(8).collect();
    let tool: String = tool.chars().take(80).collect();
    format!("{tool} {}", code.to_ascii_uppercase())
}

/// Text for a person made from text a client sent: printable ASCII only (the approval page refuses
/// anything that might not show as itself), at most `max` characters.
pub fn plain(text: &str, max: usize) -> String {
    let mut out: String = text.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).take(max).collect();
    if text.chars().count() > max {
        out.pop();
        out.push('…');
    }
    out
}

impl Approvals {
    pub fn new(config: Option<ApprovalConfig>, resource: &str) -> Result<Self, String> {
        let mut secrets = HashMap::new();
        for client in config.iter().flat_map(|c| c.clients.iter()) {
            let secret = match (&client.client_secret, &client.client_secret_file) {
                (Some(secret), None) => secret.clone(),
                (None, Some(path)) => std::fs::read_to_string(path)
                    .map_err(|e| format!("approvals: client_secret_file {}: {e}", path.display()))?
                    .trim()
                    .to_owned(),
                _ => return Err(format!("approvals: client {} needs client_secret or client_secret_file", client.client_id)),
            };
            secrets.insert(client.issuer.clone(), (client.client_id.clone(), Secret::new(secret)));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { config, secrets, http, endpoints: Default::default(), resource: resource.to_owned() })
    }

    async fn endpoints(&self, issuer: &str) -> Result<std::sync::Arc<Endpoints>, String> {
        let mut known = self.endpoints.lock().await;
        if let Some(endpoints) = known.get(issuer) {
            return Ok(endpoints.clone());
        }
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            token_endpoint: String,
            backchannel_authentication_endpoint: Option<String>,
        }
        let url = format!("{issuer}/.well-known/openid-configuration");
        let discovery: Discovery = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("discovery: {e}"))?
            .json()
            .await
            .map_err(|e| format!("discovery: {e}"))?;
        if discovery.issuer != issuer {
            return Err("discovery: the document names another issuer".into());
        }
        let backchannel = discovery.backchannel_authentication_endpoint.ok_or("the issuer offers no CIBA endpoint")?;
        let endpoints = std::sync::Arc::new(Endpoints { backchannel, token: discovery.token_endpoint });
        known.insert(issuer.to_owned(), endpoints.clone());
        Ok(endpoints)
    }

    /// Asks (or finds) the person's answer to `call` for the caller of `claims`.
    pub async fn ask(&self, verifier: &Verifier, claims: &AccessClaims, call: &Call<'_>) -> State {
        match self.try_ask(verifier, claims, call).await {
            Ok(state) => state,
            Err(why) => State::Unavailable(why),
        }
    }

    async fn try_ask(&self, verifier: &Verifier, claims: &AccessClaims, call: &Call<'_>) -> Result<State, String> {
        let Some(config) = &self.config else {
            return Err("approvals are not configured".into());
        };
        let Some((client_id, secret)) = self.secrets.get(&claims.iss) else {
            return Err("no approval client for this issuer".into());
        };
        let endpoints = self.endpoints(&claims.iss).await?;
        let binding = binding_message(call.tool, call.arguments_digest);
        let details = json!([{
            "type": "tool_call",
            "tool": call.tool,
            "action": call.action,
            "arguments_digest": call.arguments_digest,
            "locations": [self.resource],
            "summary": call.summary,
        }]);
        let expiry = config.expires_in.to_string();
        let details_text = details.to_string();
        let form = [
            ("scope", "openid"),
            ("login_hint", claims.sub.as_str()),
            ("binding_message", binding.as_str()),
            ("resource", self.resource.as_str()),
            ("authorization_details", details_text.as_str()),
            ("requested_expiry", expiry.as_str()),
        ];
        #[derive(Deserialize)]
        struct Started {
            auth_req_id: String,
            expires_in: i64,
            approval_id: String,
            approval_uri: String,
        }
        let response = self
            .http
            .post(&endpoints.backchannel)
            .basic_auth(client_id, Some(secret.expose()))
            .form(&form)
            .send()
            .await
            .map_err(|e| format!("backchannel request: {e}"))?;
        if !response.status().is_success() {
            let error: Value = response.json().await.unwrap_or_default();
            return Err(format!("backchannel request refused: {}", error["error_description"].as_str().or(error["error"].as_str()).unwrap_or("?")));
        }
        let started: Started = response.json().await.map_err(|e| format!("backchannel answer: {e}"))?;
        // Poll once: a joined request finds the answer the person already gave.
        let polled = self
            .http
            .post(&endpoints.token)
            .basic_auth(client_id, Some(secret.expose()))
            .form(&[("grant_type", "urn:openid:params:grant-type:ciba"), ("auth_req_id", started.auth_req_id.as_str())])
            .send()
            .await
            .map_err(|e| format!("token request: {e}"))?;
        let ok = polled.status().is_success();
        let body: Value = polled.json().await.map_err(|e| format!("token answer: {e}"))?;
        if !ok {
            return match body["error"].as_str() {
                Some("authorization_pending" | "slow_down") => Ok(State::Pending {
                    approval_id: started.approval_id,
                    approval_uri: started.approval_uri,
                    binding_message: binding,
                    expires_in: started.expires_in,
                }),
                Some("access_denied") => Ok(State::Denied { approval_id: started.approval_id }),
                other => Err(format!("token request refused: {}", other.unwrap_or("?"))),
            };
        }
        let token = body["access_token"].as_str().ok_or("token answer without an access token")?;
        let approved = verifier.verify(token).await.map_err(|e| format!("approval token: {e}"))?;
        check(&approved, claims, call, &self.resource)?;
        Ok(State::Approved { approval_id: started.approval_id })
    }
}

/// Whether an approval token approves exactly this call for this caller: same issuer and subject,
/// a passkey (`phr`), and a `tool_call` detail naming this tool, action, arguments and resource.
pub fn check(approved: &AccessClaims, caller: &AccessClaims, call: &Call<'_>, resource: &str) -> Result<(), String> {
    if approved.iss != caller.iss || approved.sub != caller.sub || approved.is_agent() {
        return Err("the approval is another person's".into());
    }
    if approved.acr != Some(Acr::Phr) || approved.auth_time.is_none() {
        return Err("the approval was not confirmed with a passkey".into());
    }
    let matches = |detail: &Value| {
        detail["type"] == "tool_call"
            && detail["tool"] == call.tool
            && detail["action"] == call.action
            && detail["arguments_digest"] == call.arguments_digest
            && detail["locations"].as_array().is_some_and(|l| l.iter().all(|v| v == resource))
    };
    match approved.authorization_details.as_ref().and_then(Value::as_array) {
        Some(details) if details.iter().any(matches) => Ok(()),
        _ => Err("the approval is for another call".into()),
    }
}

/// A digest of a call's arguments, as the MCP endpoint computes it.
pub fn arguments_digest(arguments: &Value) -> String {
    format!("sha256:{}", crypto::base64url(&crypto::sha256(arguments.to_string().as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_proto::Caller;

    fn claims(sub: &str, details: Option<Value>, acr: Option<Acr>) -> AccessClaims {
        AccessClaims {
            iss: "https://id/t/x".into(),
            sub: sub.into(),
            aud: "https://tools/mcp".into(),
            client_id: "permissions".into(),
            scope: "openid".into(),
            exp: 0,
            iat: 0,
            jti: "j".into(),
            auth_time: Some(1),
            acr,
            amr: None,
            sid: None,
            caller: Caller::Person,
            org: None,
            roles: None,
            grant_id: None,
            status: None,
            authorization_details: details,
        }
    }

    #[test]
    fn an_approval_allows_exactly_the_call_it_names() {
        let call = Call { tool: "files.delete", action: "call", arguments_digest: "sha256:abc", summary: "" };
        let detail = |tool: &str, digest: &str, location: &str| {
            json!([{ "type": "tool_call", "tool": tool, "action": "call", "arguments_digest": digest, "locations": [location] }])
        };
        let caller = claims("ada", None, Some(Acr::Mfa));
        let resource = "https://tools/mcp";
        let good = claims("ada", Some(detail("files.delete", "sha256:abc", resource)), Some(Acr::Phr));
        assert!(check(&good, &caller, &call, resource).is_ok());
        // (approval token, why it must fail)
        let bad = [
            (claims("bob", Some(detail("files.delete", "sha256:abc", resource)), Some(Acr::Phr)), "another person"),
            (claims("ada", Some(detail("files.delete", "sha256:other", resource)), Some(Acr::Phr)), "another call"),
            (claims("ada", Some(detail("files.read", "sha256:abc", resource)), Some(Acr::Phr)), "another call"),
            (claims("ada", Some(detail("files.delete", "sha256:abc", "https://elsewhere/mcp")), Some(Acr::Phr)), "another call"),
            (claims("ada", Some(detail("files.delete", "sha256:abc", resource)), Some(Acr::Mfa)), "passkey"),
            (claims("ada", None, Some(Acr::Phr)), "another call"),
        ];
        for (token, why) in bad {
            let error = check(&token, &caller, &call, resource).expect_err(why);
            assert!(error.contains(why), "{error}");
        }
    }

    #[test]
    fn what_the_person_reads_is_plain_and_short() {
        assert_eq!(binding_message("files.delete", "sha256:ab-c_d9XyZ12345"), "files.delete ABCD9XYZ");
        assert_eq!(plain("delete \u{202e}x\n", 100), "delete ?x?");
        assert_eq!(plain(&"a".repeat(10), 5).chars().count(), 5);
    }
}
