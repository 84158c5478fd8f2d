//! Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3):
//! `client_secret_basic`, `client_secret_post`, or `none` for public clients. Exactly one method.

use base64::{Engine, engine::general_purpose::STANDARD};

use super::{error::OAuthError, params::Params};
use std::sync::Arc;

use crate::client::Client;

/// What the request presented, before we look the client up.
#[derive(Debug)]
pub struct Presented {
    pub client_id: String,
    pub secret: Option<String>,
    pub via_basic: bool,
}

/// Reads the client's identity from an `Authorization: Basic` header or the body. Using both is an
/// error (RFC 6749 §2.3: one authentication method per request).
pub fn presented(authorization: Option<&str>, params: &Params) -> Result<Presented, OAuthError> {
    let basic = authorization.and_then(|value| crate::auth_header::credentials(value, "Basic"));
    match basic {
        Some(encoded) => {
            if params.contains("client_secret") {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method",
                ));
            }
            let decoded = STANDARD
                .decode(encoded)
                .map_err(|_| OAuthError::invalid_client(true))?;
            let decoded =
                String::from_utf8(decoded).map_err(|_| OAuthError::invalid_client(true))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| OAuthError::invalid_client(true))?;
            // §2.3.1: both parts are form-urlencoded before Base64.
            let id = form_decode(id).ok_or_else(|| OAuthError::invalid_client(true))?;
            let secret = form_decode(secret).ok_or_else(|| OAuthError::invalid_client(true))?;
            if let Some(body_id) = params.get("client_id")
                && body_id != id
            {
                return Err(OAuthError::invalid_request(
                    "client_id does not match the authenticated client",
                ));
            }
            Ok(Presented {
                client_id: id,
                secret: Some(secret),
                via_basic: true,
            })
        }
        None => {
            let client_id = params
                .get("client_id")
                .ok_or_else(|| OAuthError::invalid_client(false))?;
            Ok(Presented {
                client_id: client_id.to_owned(),
                secret: params.get("client_secret").map(str::to_owned),
                via_basic: false,
            })
        }
    }
}

fn form_decode(value: &str) -> Option<String> {
    let plus_as_space = value.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .ok()
        .filter(|s| !super::params::has_control_characters(s))
        .map(|s| s.into_owned())
}

/// Checks the presented credentials against the registered client.
pub fn authenticate(
    client: Option<Arc<Client>>,
    presented: &Presented,
) -> Result<Arc<Client>, OAuthError> {
    let fail = || OAuthError::invalid_client(presented.via_basic);
    let client = client.ok_or_else(fail)?;
    match (&presented.secret, client.is_confidential()) {
        (Some(secret), true) if client.secret_matches(secret) => Ok(client),
        // A public client authenticates with its id alone (PKCE protects its codes).
        (None, false) => Ok(client),
        _ => Err(fail()),
    }
}
