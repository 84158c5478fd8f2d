//! Client metadata (RFC 7591 §2) as a client states it, checked and turned into a new client: for a
//! dynamic registration (`oauth::registration`) and for a client metadata document (`document`)
//! alike. Pure: nothing here reads or writes storage.

use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::{
    client::{AuthMethod, ClientError, GrantType, Introspection, NewClient, NewRegistration, PERSON_SCOPES},
    display_text,
    keys::SigningAlg,
    store::StoreError,
    tenant::Tenant,
};

const MAX_NAME_CHARS: usize = 100;
const MAX_REDIRECT_URIS: usize = 10;
const MAX_ALLOWED_ORIGINS: usize = 10;

/// RFC 7591 §3.2.2 errors, and the bearer-token failures of RFC 7592 / RFC 6750.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("{0}")]
    InvalidRedirectUri(String),
    #[error("{0}")]
    InvalidClientMetadata(String),
    #[error("this tenant does not accept client registrations")]
    Closed,
    /// RFC 7591 §3: registration needs an initial access token, and none valid was presented.
    #[error("{0}")]
    InvalidInitialToken(&'static str),
    /// RFC 7592 §2: a missing or wrong registration access token, or an unknown client (the same
    /// answer, so client ids cannot be probed).
    #[error("the registration access token is not valid for this client")]
    InvalidToken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RegistrationError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRedirectUri(_) => "invalid_redirect_uri",
            Self::InvalidClientMetadata(_) => "invalid_client_metadata",
            Self::Closed => "access_denied",
            Self::InvalidInitialToken(_) | Self::InvalidToken => "invalid_token",
            Self::Store(_) => "server_error",
        }
    }
}

impl From<ClientError> for RegistrationError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::InvalidRedirectUri(_) | ClientError::MissingRedirectUri => {
                Self::InvalidRedirectUri(error.to_string())
            }
            ClientError::Store(e) => Self::Store(e),
            other => Self::InvalidClientMetadata(other.to_string()),
        }
    }
}

/// Client metadata (RFC 7591 §2). Unknown fields are ignored, as §2 requires.
#[derive(Debug, Default, Deserialize)]
pub struct ClientMetadata {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub client_name: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub scope: Option<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    pub id_token_signed_response_alg: Option<String>,
    /// OIDC Dynamic Client Registration §2: UserInfo as a signed JWT.
    pub userinfo_signed_response_alg: Option<String>,
    pub client_uri: Option<String>,
    /// RFC 7591 §2: linked from the consent page (https only).
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    /// Browser origins beyond the redirect URIs' own that may call the token endpoints (CORS);
    /// Latchkey's extension, as several providers have one ("web origins").
    pub allowed_origins: Option<Vec<String>>,
    pub logo_uri: Option<String>,
    pub contacts: Option<Vec<String>>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
    /// Only in an RFC 7592 update: must name the client being updated.
    pub client_id: Option<String>,
}

/// Schemes a browser runs as code, shows local or internal content with, or that name no app: never a
/// place to send an authorization code.
const FORBIDDEN_SCHEMES: [&str; 14] = [
    "javascript", "vbscript", "data", "file", "blob", "about", "filesystem", "view-source", "jar", "mhtml",
    "ws", "wss", "ftp", "mailto",
];

/// Redirect URIs a registration may use (RFC 8252 §7, OAuth 2.1 §2.3.1): https; http on a loopback
/// host; or a private-use scheme for a native app. RFC 8252 §7.1 recommends reverse-domain schemes,
/// but real clients register others (Cursor: `cursor://anysphere.cursor-mcp/oauth/callback`), and
/// PKCE, not the scheme's name, is what protects a code sent to an app: any scheme is accepted except
/// those in `FORBIDDEN_SCHEMES`. No fragments, no wildcards, no credentials in the URI.
pub fn check_redirect_uri(uri: &str) -> Result<(), RegistrationError> {
    let bad = |why: &str| Err(RegistrationError::InvalidRedirectUri(format!("redirect URI {uri:?}: {why}")));
    if uri.contains('*') {
        return bad("wildcards are not allowed");
    }
    let Ok(parsed) = Url::parse(uri) else {
        return bad("not an absolute URI");
    };
    if lacks_scheme(&parsed) {
        return bad(MISSING_SCHEME);
    }
    if parsed.fragment().is_some() {
        return bad("must not have a fragment");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return bad("must not carry credentials");
    }
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" => match parsed.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Domain("localhost")) => Ok(()),
            _ => bad("http is allowed only on a loopback address"),
        },
        "https" => bad("an https redirect URI needs a host"),
        scheme if FORBIDDEN_SCHEMES.contains(&scheme) => bad("scheme not allowed"),
        // The URL parser has checked RFC 3986 §3.1's scheme grammar and lower-cased it.
        _ => Ok(()),
    }
}

/// What a redirect URI written as `host:port/path` is told.
pub(crate) const MISSING_SCHEME: &str = "no scheme: write it in full, e.g. http://localhost:3000/callback";

/// `localhost:3000/callback` or `app.example.com:8443/cb` parses as a URI whose scheme is the host
/// name (scheme characters include `.` and `-`): a host and port with the scheme left out, not a
/// native app's private-use scheme, whose part after the colon never starts with a port number.
pub(crate) fn lacks_scheme(parsed: &Url) -> bool {
    !matches!(parsed.scheme(), "http" | "https")
        && parsed.host().is_none()
        && parsed.path().bytes().next().is_some_and(|b| b.is_ascii_digit())
}

pub(crate) fn invalid(message: impl Into<String>) -> RegistrationError {
    RegistrationError::InvalidClientMetadata(message.into())
}

fn clean_name(name: Option<&str>, redirect_uris: &[String]) -> Result<String, RegistrationError> {
    match name.map(str::trim) {
        Some(name) if !name.is_empty() => {
            if name.chars().count() > MAX_NAME_CHARS || !display_text::is_displayable(name) {
                return Err(invalid(
                    "client_name must be at most 100 characters that display as themselves (no control, format or bidi characters)",
                ));
            }
            Ok(name.to_owned())
        }
        // The consent page also shows the redirect host; without a name, that host is the name.
        _ => Ok(redirect_uris
            .first()
            .and_then(|u| Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "Unnamed application".to_owned())),
    }
}

/// What a tenant lets software that describes itself (a registration, a metadata document) ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelfDescribed {
    /// The client-credentials grant: a machine token with nobody behind it. Off unless the tenant's
    /// registration policy says so (`latchkey tenant set --registration-client-credentials true`).
    pub client_credentials: bool,
}

impl SelfDescribed {
    pub fn of(tenant: &Tenant) -> Self {
        Self { client_credentials: tenant.registration_client_credentials }
    }
}

/// Checks metadata and turns it into what `client::create` takes, plus the metadata to echo back.
pub(crate) fn to_new_client(metadata: &ClientMetadata, policy: SelfDescribed, token_hash: String) -> Result<NewClient, RegistrationError> {
    let (mut new, echoed) = checked_metadata(metadata, "client_secret_basic", policy)?;
    new.registration = Some(NewRegistration { token_hash, metadata: echoed });
    Ok(new)
}

/// The checks every self-described client passes (a registration here, or a client metadata
/// document): the client it describes (not yet registered) and the extra metadata worth keeping.
/// `default_auth_method` applies when the metadata names none (RFC 7591 §2 says client_secret_basic).
pub(crate) fn checked_metadata(
    metadata: &ClientMetadata,
    default_auth_method: &str,
    policy: SelfDescribed,
) -> Result<(NewClient, Value), RegistrationError> {
    if metadata.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(invalid("at most 10 redirect_uris"));
    }
    // Everything else we keep is echoed back and may be shown; the same characters are refused.
    let shown = [
        &metadata.client_uri,
        &metadata.logo_uri,
        &metadata.policy_uri,
        &metadata.tos_uri,
        &metadata.software_id,
        &metadata.software_version,
    ];
    let contacts = metadata.contacts.iter().flatten();
    for value in shown.into_iter().flatten().chain(contacts) {
        if value.chars().count() > 2048 || !display_text::is_displayable(value) {
            return Err(invalid("client metadata must be text that displays as itself (no control, format or bidi characters)"));
        }
    }
    for uri in metadata.redirect_uris.iter().chain(&metadata.post_logout_redirect_uris) {
        check_redirect_uri(uri)?;
    }
    let auth_method = metadata.token_endpoint_auth_method.as_deref().unwrap_or(default_auth_method);
    let confidential = match AuthMethod::parse(auth_method) {
        Some(method) => method.uses_secret(),
        None => return Err(invalid(format!("token_endpoint_auth_method {auth_method:?} is not supported"))),
    };
    if let Some(types) = &metadata.response_types
        && types.iter().any(|t| t != "code")
    {
        return Err(invalid("only the response type \"code\" is supported"));
    }
    let grant_types = match &metadata.grant_types {
        None => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        Some(names) => names
            .iter()
            .map(|g| GrantType::parse_client_grant(g).ok_or_else(|| invalid(format!("grant type {g:?} is not supported"))))
            .collect::<Result<Vec<_>, _>>()?,
    };
    // A CIBA client can put a request in front of any person of the tenant: an operator decides who may.
    if grant_types.contains(&GrantType::Ciba) {
        return Err(invalid("the CIBA grant is for clients an operator creates (`latchkey client create --grant-type urn:openid:params:grant-type:ciba`)"));
    }
    if grant_types.contains(&GrantType::ClientCredentials) && !policy.client_credentials {
        return Err(invalid("self-registered clients may not use client_credentials here (the tenant's registration policy does not allow it)"));
    }
    let scopes: Vec<String> = match &metadata.scope {
        Some(scope) => scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        // A registration that names no scopes gets the person scopes.
        None => PERSON_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
    };
    let id_token_alg = match metadata.id_token_signed_response_alg.as_deref() {
        None => SigningAlg::RS256,
        Some(alg) => alg.parse().map_err(|_| invalid(format!("id_token_signed_response_alg {alg:?} is not supported")))?,
    };
    let userinfo_alg = match metadata.userinfo_signed_response_alg.as_deref() {
        None => None,
        Some(alg) => Some(alg.parse().map_err(|_| invalid(format!("userinfo_signed_response_alg {alg:?} is not supported (RS256, ES256)")))?),
    };
    let allowed_origins = metadata.allowed_origins.clone().unwrap_or_default();
    if allowed_origins.len() > MAX_ALLOWED_ORIGINS {
        return Err(invalid("at most 10 allowed_origins"));
    }
    if let Some(bad) = allowed_origins.iter().find(|o| !crate::cors::valid_origin(o)) {
        return Err(invalid(format!("allowed_origins: {bad:.100?} is not an origin (scheme://host[:port], http or https)")));
    }
    let echoed = json!({
        "token_endpoint_auth_method": auth_method,
        "client_uri": metadata.client_uri,
        "policy_uri": metadata.policy_uri,
        "tos_uri": metadata.tos_uri,
        "logo_uri": metadata.logo_uri,
        "contacts": metadata.contacts,
        "software_id": metadata.software_id,
        "software_version": metadata.software_version,
    });
    let new = NewClient {
        name: clean_name(metadata.client_name.as_deref(), &metadata.redirect_uris)?,
        confidential,
        redirect_uris: metadata.redirect_uris.clone(),
        post_logout_redirect_uris: metadata.post_logout_redirect_uris.clone(),
        grant_types,
        scopes,
        // Self-registered software is never first-party: the user always sees the consent page.
        first_party: false,
        id_token_alg,
        access_token_alg: SigningAlg::ES256,
        registration: None,
        introspection: Introspection::None,
        userinfo_alg,
        allowed_origins,
    };
    Ok((new, echoed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_follow_rfc_8252() {
        for good in [
            "https://app.example/cb",
            "http://127.0.0.1:33418/callback",
            "http://[::1]/cb",
            "http://localhost:6274/oauth/callback",
            "com.example.app:/oauth2redirect",
            "cursor.ide://auth/callback",
            // Cursor's, exactly as it registers.
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "vscode://vscode.github-authentication/did-authenticate",
            "myapp://cb",
        ] {
            assert!(check_redirect_uri(good).is_ok(), "{good}");
        }
        for bad in [
            "http://app.example/cb",
            "https://*.example/cb",
            "https://app.example/cb#frag",
            "https://user:pw@app.example/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "JavaScript:alert(1)",
            "vbscript:msgbox",
            "file:///etc/passwd",
            "blob:https://app.example/uuid",
            "about:blank",
            "view-source:https://app.example",
            "/relative",
            "http://10.0.0.1/cb",
            // A host and port without the scheme.
            "localhost:3000/callback",
            "app.example.com:8443/cb",
        ] {
            assert!(
                matches!(check_redirect_uri(bad), Err(RegistrationError::InvalidRedirectUri(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn metadata_defaults_and_refusals() {
        let metadata = ClientMetadata {
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            token_endpoint_auth_method: Some("none".into()),
            ..Default::default()
        };
        let closed = SelfDescribed { client_credentials: false };
        let new = to_new_client(&metadata, closed, "h".into()).expect("valid");
        assert!(!new.confidential && !new.first_party);
        assert_eq!(new.name, "127.0.0.1", "no name: the redirect host stands in");
        assert_eq!(new.grant_types, vec![GrantType::AuthorizationCode, GrantType::RefreshToken]);
        assert_eq!(new.scopes, vec!["openid", "profile", "email", "offline_access"]);

        let refused = |m: ClientMetadata| matches!(to_new_client(&m, closed, "h".into()), Err(RegistrationError::InvalidClientMetadata(_)));
        assert!(refused(ClientMetadata { token_endpoint_auth_method: Some("private_key_jwt".into()), ..Default::default() }));
        assert!(refused(ClientMetadata { response_types: Some(vec!["token".into()]), ..Default::default() }));
        assert!(refused(ClientMetadata { grant_types: Some(vec!["password".into()]), ..Default::default() }));
        assert!(refused(ClientMetadata { client_name: Some("a\u{7}b".into()), ..Default::default() }));
        assert!(refused(ClientMetadata { userinfo_signed_response_alg: Some("none".into()), ..Default::default() }));
        assert!(refused(ClientMetadata { allowed_origins: Some(vec!["https://app.example/".into()]), ..Default::default() }));
        assert!(refused(ClientMetadata { policy_uri: Some("https://app.example/\u{202e}".into()), ..Default::default() }));
        // Machine tokens for self-registered software only where the tenant allows them.
        let machine = || ClientMetadata { grant_types: Some(vec!["client_credentials".into()]), ..Default::default() };
        assert!(refused(machine()));
        let open = SelfDescribed { client_credentials: true };
        assert!(to_new_client(&machine(), open, "h".into()).is_ok());
    }
}
