//! OAuth clients: those registered in a tenant (this module), the metadata a client states about
//! itself and how it is checked (`metadata`, RFC 7591 §2), and clients identified by the URL of their
//! metadata document (`document`).

pub mod document;
pub mod metadata;

use latchkey_proto::Secret;
use url::Url;

use crate::{
    cors::{valid_origin, web_origin},
    crypto::{self, constant_time_eq, sha256},
    keys::SigningAlg,
    store::{
        Scoped, StoreError, StoreResult,
        clients::{self, ClientRow},
        from_json_list, now, to_json_list,
    },
};

/// The scopes of a person's own data that Latchkey serves (OIDC Core §5.4, plus `offline_access`
/// for refresh tokens): what discovery advertises, and what a client registered without scopes gets.
pub const PERSON_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The client authentication methods the token, revocation and introspection endpoints accept
/// (RFC 7591 §2 names; what discovery advertises and registration accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A public client: its id alone (PKCE protects its codes).
    None,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 3] = [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost, AuthMethod::None];
    /// Those of a confidential client (the only ones introspection accepts: RFC 7662 §2.1).
    pub const WITH_SECRET: [AuthMethod; 2] = [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|method| method.as_str() == value)
    }

    pub fn uses_secret(self) -> bool {
        self != Self::None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    /// RFC 8693, for agent tokens only: the agent token is the credential, so no client is
    /// registered for it (`is_client_grant`).
    TokenExchange,
    /// OpenID CIBA Core 1.0, poll mode: a person approves on their own device what the client asked
    /// at the backchannel authentication endpoint. Confidential clients an operator creates only.
    Ciba,
    /// RFC 8628: a device without a browser; the person allows it on another device.
    DeviceCode,
}

impl GrantType {
    /// Every grant the token endpoint serves (`grant_types_supported`).
    pub const ALL: [GrantType; 6] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::TokenExchange,
        GrantType::Ciba,
        GrantType::DeviceCode,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
            Self::Ciba => "urn:openid:params:grant-type:ciba",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }

    /// A grant a client can be registered for (and authenticates itself to use).
    pub const fn is_client_grant(self) -> bool {
        !matches!(self, Self::TokenExchange)
    }

    /// A grant a client may be registered for, by name.
    pub fn parse_client_grant(s: &str) -> Option<Self> {
        Self::parse(s).filter(|g| g.is_client_grant())
    }
}

/// Which tokens a client may introspect (RFC 7662 §2.1 leaves who may to the server): none, unless
/// an operator designates it as a resource server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Introspection {
    #[default]
    None,
    /// Tokens whose audience is one of these resources.
    Resources(Vec<String>),
    /// Every token of the tenant.
    All,
}

impl Introspection {
    /// As stored: the `introspect_all` flag and the JSON list of resource URIs.
    fn columns(&self) -> (bool, String) {
        match self {
            Self::None => (false, to_json_list(&[])),
            Self::All => (true, to_json_list(&[])),
            Self::Resources(resources) => (false, to_json_list(resources)),
        }
    }

    /// Whether a token for `audience` (a resource URI; `None`: the tenant's own endpoints) may be
    /// described to this client.
    pub fn covers(&self, audience: Option<&str>) -> bool {
        match self {
            Self::None => false,
            Self::All => true,
            Self::Resources(resources) => audience.is_some_and(|aud| resources.iter().any(|r| r == aud)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    secret_hash: Option<Vec<u8>>,
    pub secret_prefix: Option<String>,
    /// The secret a rotation replaced, while its overlap lasts.
    previous_secret: Option<PreviousSecret>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    /// First-party clients skip the consent page.
    pub first_party: bool,
    pub id_token_alg: SigningAlg,
    pub access_token_alg: SigningAlg,
    pub created_at: i64,
    /// Registered through RFC 7591 (not by an operator): managed with its registration access token,
    /// and deleted if never used.
    pub registered_dynamically: bool,
    registration_token_hash: Option<String>,
    pub first_used_at: Option<i64>,
    /// The registration metadata we keep only to echo it back (RFC 7591 §3.2.1).
    pub registration_metadata: serde_json::Value,
    /// Described by a client metadata document at the URL that is its `client_id`: not stored here,
    /// fetched and cached (`client::document`).
    pub metadata_document: bool,
    /// The service account this client is the client-credentials identity of.
    pub service_account_id: Option<String>,
    pub introspection: Introspection,
    /// UserInfo answered as a JWT signed with this algorithm (OIDC Registration §2,
    /// `userinfo_signed_response_alg`); `None`: plain JSON.
    pub userinfo_alg: Option<SigningAlg>,
    /// Browser origins allowed beyond the redirect URIs' own (`allowed_origins`).
    pub allowed_origins: Vec<String>,
}

/// A replaced secret: accepted until `expires_at`, then never again.
#[derive(Debug, Clone)]
struct PreviousSecret {
    hash: Vec<u8>,
    prefix: String,
    expires_at: i64,
}

/// Every origin a browser may call the token endpoints from on this client's behalf: its redirect
/// URIs' origins (a single-page app is served where it is redirected to) and `allowed_origins`.
fn cors_origins(redirect_uris: &[String], allowed_origins: &[String]) -> Vec<String> {
    let mut origins: Vec<String> = Vec::new();
    for origin in redirect_uris.iter().filter_map(|u| web_origin(u)).chain(allowed_origins.iter().cloned()) {
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    origins
}

impl Client {
    /// A document the client's metadata links (`policy_uri`, `tos_uri`: RFC 7591 §2), when it is an
    /// https URL: a page shows it as a link, and no other scheme is worth a person's click.
    pub fn https_link(&self, field: &str) -> Option<&str> {
        let value = self.registration_metadata.get(field)?.as_str()?;
        Url::parse(value).is_ok_and(|u| u.scheme() == "https" && u.host().is_some()).then_some(value)
    }

    /// Whether a page at `origin` may read this client's token endpoint responses (CORS).
    pub fn allows_origin(&self, origin: &str) -> bool {
        cors_origins(&self.redirect_uris, &self.allowed_origins).iter().any(|o| o == origin)
    }

    /// A public client whose `client_id` is the URL of the metadata document it was read from.
    pub fn from_metadata_document(
        client_id: String,
        new: NewClient,
        metadata: serde_json::Value,
    ) -> Result<Self, ClientError> {
        validate(&new)?;
        Ok(Self {
            client_id,
            name: new.name,
            secret_hash: None,
            secret_prefix: None,
            previous_secret: None,
            redirect_uris: new.redirect_uris,
            post_logout_redirect_uris: new.post_logout_redirect_uris,
            grant_types: new.grant_types,
            scopes: new.scopes,
            first_party: false,
            id_token_alg: new.id_token_alg,
            access_token_alg: new.access_token_alg,
            created_at: now(),
            registered_dynamically: false,
            registration_token_hash: None,
            first_used_at: None,
            registration_metadata: metadata,
            metadata_document: true,
            service_account_id: None,
            introspection: Introspection::None,
            userinfo_alg: new.userinfo_alg,
            allowed_origins: new.allowed_origins,
        })
    }

    /// Constant-time check of a presented registration access token (RFC 7592 §3).
    pub fn registration_token_matches(&self, presented: &str) -> bool {
        match &self.registration_token_hash {
            Some(stored) => constant_time_eq(stored.as_bytes(), crypto::sha256_hex(presented).as_bytes()),
            None => false,
        }
    }

    /// Registered by an operator: not self-registered (RFC 7591) and not described by a metadata
    /// document, so somebody vetted its redirect URIs.
    pub fn vetted(&self) -> bool {
        !self.registered_dynamically && !self.metadata_document
    }

    pub fn is_confidential(&self) -> bool {
        self.secret_hash.is_some()
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Constant-time check of a presented secret against the stored SHA-256, and against the secret a
    /// rotation replaced while its overlap lasts.
    pub fn secret_matches(&self, presented: &str) -> bool {
        let Some(stored) = &self.secret_hash else { return false };
        let presented = sha256(presented.as_bytes());
        let current = constant_time_eq(stored, &presented);
        let previous = self
            .previous_secret
            .as_ref()
            .is_some_and(|old| now() < old.expires_at && constant_time_eq(&old.hash, &presented));
        current || previous
    }

    /// The replaced secret's display prefix and when it stops working, while it still works.
    pub fn previous_secret(&self) -> Option<(&str, i64)> {
        self.previous_secret.as_ref().filter(|old| now() < old.expires_at).map(|old| (old.prefix.as_str(), old.expires_at))
    }

    /// Exact string match, except that a loopback redirect may use any port (RFC 8252 §7.3; OAuth 2.1
    /// §8.4.2): the IP literals and `localhost`, which native clients such as Claude Code register
    /// without a port and then listen on whichever port is free.
    pub fn redirect_uri_registered(&self, presented: &str) -> bool {
        self.redirect_uris.iter().any(|registered| {
            registered == presented || loopback_equal_but_port(registered, presented)
        })
    }

    pub fn post_logout_redirect_uri_registered(&self, presented: &str) -> bool {
        self.post_logout_redirect_uris
            .iter()
            .any(|registered| registered == presented)
    }
}

fn loopback_equal_but_port(registered: &str, presented: &str) -> bool {
    let (Ok(mut a), Ok(mut b)) = (Url::parse(registered), Url::parse(presented)) else {
        return false;
    };
    let is_loopback = |u: &Url| {
        u.scheme() == "http"
            && match u.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(host)) => host.eq_ignore_ascii_case("localhost"),
                None => false,
            }
    };
    if !is_loopback(&a) || !is_loopback(&b) {
        return false;
    }
    let _ = a.set_port(None);
    let _ = b.set_port(None);
    a == b
}

fn from_row(row: ClientRow) -> StoreResult<Client> {
    let grant_types = from_json_list(&row.grant_types)?
        .iter()
        .map(|g| {
            GrantType::parse_client_grant(g).ok_or_else(|| StoreError::Corrupt(format!("grant type {g:?}")))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Client {
        client_id: row.client_id,
        name: row.name,
        previous_secret: match (row.previous_secret_hash, row.previous_secret_expires_at) {
            (Some(hash), Some(expires_at)) => {
                Some(PreviousSecret { hash, prefix: row.previous_secret_prefix.unwrap_or_default(), expires_at })
            }
            _ => None,
        },
        secret_hash: row.secret_hash,
        secret_prefix: row.secret_prefix,
        redirect_uris: from_json_list(&row.redirect_uris)?,
        post_logout_redirect_uris: from_json_list(&row.post_logout_redirect_uris)?,
        grant_types,
        scopes: from_json_list(&row.scopes)?,
        first_party: row.first_party,
        id_token_alg: row.id_token_alg.parse().map_err(StoreError::Corrupt)?,
        access_token_alg: row.access_token_alg.parse().map_err(StoreError::Corrupt)?,
        created_at: row.created_at,
        registered_dynamically: row.registered_dynamically,
        registration_token_hash: row.registration_token_hash,
        first_used_at: row.first_used_at,
        registration_metadata: match row.registration_metadata {
            Some(text) => serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            None => serde_json::Value::Null,
        },
        metadata_document: false,
        service_account_id: row.service_account_id,
        introspection: match (row.introspect_all, from_json_list(&row.introspect_resources)?) {
            (true, _) => Introspection::All,
            (false, resources) if resources.is_empty() => Introspection::None,
            (false, resources) => Introspection::Resources(resources),
        },
        userinfo_alg: row.userinfo_alg.as_deref().map(str::parse).transpose().map_err(StoreError::Corrupt)?,
        allowed_origins: match row.allowed_origins {
            Some(list) => from_json_list(&list)?,
            None => Vec::new(),
        },
    })
}

/// What an operator (or, later, dynamic registration) asks for.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub confidential: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    pub first_party: bool,
    pub id_token_alg: SigningAlg,
    pub access_token_alg: SigningAlg,
    /// Set for a dynamic registration.
    pub registration: Option<NewRegistration>,
    /// Only an operator designates a resource server.
    pub introspection: Introspection,
    pub userinfo_alg: Option<SigningAlg>,
    /// Exact origins (`scheme://host[:port]`).
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NewRegistration {
    /// SHA-256 (hex) of the registration access token.
    pub token_hash: String,
    pub metadata: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid redirect URI {0:?}: must be an absolute URI with its scheme (e.g. http://localhost:3000/callback), without a fragment")]
    InvalidRedirectUri(String),
    #[error("a public client cannot use client_credentials")]
    PublicClientCredentials,
    #[error("authorization_code needs at least one redirect URI")]
    MissingRedirectUri,
    #[error("invalid scope {0:?}")]
    InvalidScope(String),
    #[error("invalid origin {0:?}: must be exactly scheme://host[:port] (http or https)")]
    InvalidOrigin(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn validate_uri(uri: &str) -> Result<(), ClientError> {
    let parsed = Url::parse(uri).map_err(|_| ClientError::InvalidRedirectUri(uri.to_owned()))?;
    if parsed.fragment().is_some() || uri.contains('*') || metadata::lacks_scheme(&parsed) {
        return Err(ClientError::InvalidRedirectUri(uri.to_owned()));
    }
    Ok(())
}

pub fn valid_scope_token(scope: &str) -> bool {
    // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

fn validate(new: &NewClient) -> Result<(), ClientError> {
    for uri in new
        .redirect_uris
        .iter()
        .chain(&new.post_logout_redirect_uris)
    {
        validate_uri(uri)?;
    }
    if !new.confidential && new.grant_types.contains(&GrantType::ClientCredentials) {
        return Err(ClientError::PublicClientCredentials);
    }
    if new.grant_types.contains(&GrantType::AuthorizationCode) && new.redirect_uris.is_empty() {
        return Err(ClientError::MissingRedirectUri);
    }
    if let Some(bad) = new.scopes.iter().find(|s| !valid_scope_token(s)) {
        return Err(ClientError::InvalidScope(bad.clone()));
    }
    if let Some(bad) = new.allowed_origins.iter().find(|o| !valid_origin(o)) {
        return Err(ClientError::InvalidOrigin(bad.clone()));
    }
    Ok(())
}

/// Registers a client; returns it and, for a confidential client, its secret (shown once, stored hashed).
pub async fn create(
    scope: Scoped<'_>,
    new: NewClient,
) -> Result<(Client, Option<Secret>), ClientError> {
    validate(&new)?;
    let client_id = format!("lk_{}", crypto::random_id());
    let secret = new.confidential.then(|| Secret::new(crypto::random_token("lk_cs_")));
    let grant_types: Vec<String> = new
        .grant_types
        .iter()
        .map(|g| g.as_str().to_owned())
        .collect();
    let (introspect_all, introspect_resources) = new.introspection.columns();
    let row = ClientRow {
        id: crypto::random_id(),
        tenant_id: scope.tenant_id().to_owned(),
        client_id: client_id.clone(),
        name: new.name,
        secret_hash: secret.as_ref().map(|s| sha256(s.expose().as_bytes()).to_vec()),
        secret_prefix: secret.as_ref().map(|s| crypto::display_prefix(s.expose())),
        redirect_uris: to_json_list(&new.redirect_uris),
        post_logout_redirect_uris: to_json_list(&new.post_logout_redirect_uris),
        grant_types: to_json_list(&grant_types),
        scopes: to_json_list(&new.scopes),
        first_party: new.first_party,
        id_token_alg: new.id_token_alg.as_str().to_owned(),
        access_token_alg: new.access_token_alg.as_str().to_owned(),
        created_at: now(),
        registered_dynamically: new.registration.is_some(),
        registration_token_hash: new.registration.as_ref().map(|r| r.token_hash.clone()),
        first_used_at: None,
        registration_metadata: new.registration.as_ref().map(|r| r.metadata.to_string()),
        service_account_id: None,
        introspect_all,
        introspect_resources,
        userinfo_alg: new.userinfo_alg.map(|a| a.as_str().to_owned()),
        allowed_origins: Some(to_json_list(&new.allowed_origins)),
        previous_secret_hash: None,
        previous_secret_prefix: None,
        previous_secret_expires_at: None,
    };
    clients::insert(scope, row, &cors_origins(&new.redirect_uris, &new.allowed_origins)).await?;
    let client = find(scope, &client_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("client vanished".into()))?;
    Ok((client, secret))
}

/// Whether any client of the tenant may be called from `origin` (a CORS preflight names no client):
/// one primary-key lookup, whatever the number of clients.
pub async fn any_allows_origin(scope: Scoped<'_>, origin: &str) -> StoreResult<bool> {
    clients::any_allows_origin(scope, origin).await
}

pub async fn find(scope: Scoped<'_>, client_id: &str) -> StoreResult<Option<Client>> {
    clients::find(scope, client_id).await?.map(from_row).transpose()
}

pub async fn list(scope: Scoped<'_>) -> StoreResult<Vec<Client>> {
    clients::all(scope).await?.into_iter().map(from_row).collect()
}

/// Replaces a dynamically registered client's metadata (RFC 7592 §2.2): same client id, secret and
/// registration token.
pub async fn replace_registration(scope: Scoped<'_>, client_id: &str, new: NewClient) -> Result<Client, ClientError> {
    validate(&new)?;
    let grant_types: Vec<String> = new.grant_types.iter().map(|g| g.as_str().to_owned()).collect();
    let metadata = clients::Metadata {
        name: &new.name,
        redirect_uris: &new.redirect_uris,
        post_logout_redirect_uris: &new.post_logout_redirect_uris,
        grant_types: &grant_types,
        scopes: &new.scopes,
        registration_metadata: new.registration.as_ref().map(|r| r.metadata.to_string()),
        userinfo_alg: new.userinfo_alg.map(|a| a.as_str()),
        allowed_origins: &new.allowed_origins,
    };
    // Only a dynamically registered client changes (RFC 7592 reaches no other: it needs a registration
    // access token); the client as stored afterwards is the answer either way.
    clients::replace_registration(scope, client_id, metadata, &cors_origins(&new.redirect_uris, &new.allowed_origins))
        .await?;
    find(scope, client_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("client vanished".into()).into())
}

/// What an operator changes on a client in place (`latchkey client update`); `None` keeps a value.
/// Its id, secret, grants and kind stay.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub first_party: Option<bool>,
}

/// Changes an operator's client in place, checked as a new client would be. `None`: no such client
/// (or one an operator does not manage: self-registered clients change through RFC 7592).
pub async fn update(scope: Scoped<'_>, client_id: &str, changes: ClientChanges) -> Result<Option<Client>, ClientError> {
    let Some(current) = find(scope, client_id).await? else { return Ok(None) };
    if !current.vetted() {
        return Ok(None);
    }
    let merged = NewClient {
        name: changes.name.unwrap_or(current.name),
        confidential: current.secret_hash.is_some(),
        redirect_uris: changes.redirect_uris.unwrap_or(current.redirect_uris),
        post_logout_redirect_uris: changes.post_logout_redirect_uris.unwrap_or(current.post_logout_redirect_uris),
        grant_types: current.grant_types,
        scopes: changes.scopes.unwrap_or(current.scopes),
        first_party: changes.first_party.unwrap_or(current.first_party),
        id_token_alg: current.id_token_alg,
        access_token_alg: current.access_token_alg,
        registration: None,
        introspection: current.introspection,
        userinfo_alg: current.userinfo_alg,
        allowed_origins: changes.allowed_origins.unwrap_or(current.allowed_origins),
    };
    validate(&merged)?;
    let settings = clients::Settings {
        name: &merged.name,
        redirect_uris: &merged.redirect_uris,
        post_logout_redirect_uris: &merged.post_logout_redirect_uris,
        scopes: &merged.scopes,
        allowed_origins: &merged.allowed_origins,
        first_party: merged.first_party,
    };
    clients::update_settings(scope, client_id, settings, &cors_origins(&merged.redirect_uris, &merged.allowed_origins)).await?;
    Ok(find(scope, client_id).await?)
}

/// Issues a confidential client a new secret (shown once). The one it replaces keeps working for
/// `overlap_seconds` (0: stops at once), so the client's deployment can move over without an outage;
/// a secret replaced earlier stops now. `None`: no such confidential client.
pub async fn rotate_secret(scope: Scoped<'_>, client_id: &str, overlap_seconds: i64) -> StoreResult<Option<(Secret, i64)>> {
    let secret = Secret::new(crypto::random_token("lk_cs_"));
    let expires_at = now() + overlap_seconds.max(0);
    let rotated = clients::rotate_secret(
        scope,
        client_id,
        sha256(secret.expose().as_bytes()).to_vec(),
        crypto::display_prefix(secret.expose()),
        expires_at,
    )
    .await?;
    Ok(rotated.then_some((secret, expires_at)))
}

/// Designates a client as a resource server for introspection, or takes that away.
pub async fn set_introspection(scope: Scoped<'_>, client_id: &str, introspection: &Introspection) -> StoreResult<bool> {
    let (all, resources) = introspection.columns();
    clients::set_introspection(scope, client_id, all, resources).await
}

/// Marks a client as the client-credentials identity of a service account.
pub async fn link_service_account(scope: Scoped<'_>, client_id: &str, service_account_id: &str) -> StoreResult<()> {
    clients::link_service_account(scope, client_id, service_account_id).await
}

/// Records the first successful use of a dynamically registered client (it then never expires as
/// unused). One conditional UPDATE, at most once per client.
pub async fn mark_used(scope: Scoped<'_>, client_id: &str) -> StoreResult<()> {
    clients::mark_first_use(scope, client_id, now()).await
}

pub async fn delete(scope: Scoped<'_>, client_id: &str) -> StoreResult<bool> {
    clients::delete(scope, client_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_with(uris: &[&str]) -> Client {
        Client {
            client_id: "c".into(),
            name: "c".into(),
            secret_hash: None,
            secret_prefix: None,
            previous_secret: None,
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            post_logout_redirect_uris: vec![],
            grant_types: vec![],
            scopes: vec![],
            first_party: false,
            id_token_alg: SigningAlg::RS256,
            access_token_alg: SigningAlg::ES256,
            created_at: 0,
            registered_dynamically: false,
            registration_token_hash: None,
            first_used_at: None,
            registration_metadata: serde_json::Value::Null,
            metadata_document: false,
            service_account_id: None,
            introspection: Introspection::None,
            userinfo_alg: None,
            allowed_origins: vec!["https://console.example".into()],
        }
    }

    #[test]
    fn redirect_matching_is_exact_except_loopback_port() {
        let c = client_with(&[
            "https://app.example/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:8000/cb",
            "http://localhost:3000/cb",
        ]);
        assert!(c.redirect_uri_registered("https://app.example/cb"));
        assert!(!c.redirect_uri_registered("https://app.example/cb/"));
        assert!(!c.redirect_uri_registered("https://app.example/cb?x=1"));
        assert!(!c.redirect_uri_registered("https://app.example:444/cb"));
        assert!(c.redirect_uri_registered("http://127.0.0.1:53127/cb"));
        assert!(!c.redirect_uri_registered("http://127.0.0.1:53127/other"));
        assert!(c.redirect_uri_registered("http://[::1]:1234/cb"));
        // RFC 8252 §7.3 for localhost too: Claude Code registers it without a port.
        assert!(c.redirect_uri_registered("http://localhost:4000/cb"));
        assert!(c.redirect_uri_registered("http://localhost:3000/cb"));
        assert!(!c.redirect_uri_registered("http://localhost.evil.example:3000/cb"));
        assert!(!c.redirect_uri_registered("https://localhost:3000/cb"), "the port rule is for http loopback only");
    }

    #[test]
    fn browser_origins_are_the_redirect_uris_and_the_allowed_list() {
        let c = client_with(&["https://app.example/cb", "http://127.0.0.1:5173/cb", "com.example.app:/cb"]);
        for (origin, allowed) in [
            ("https://app.example", true),
            ("http://127.0.0.1:5173", true),
            ("https://console.example", true),
            // Exact origins: the loopback port latitude is for redirects, not for pages.
            ("http://127.0.0.1:5174", false),
            ("https://app.example.evil", false),
            ("http://app.example", false),
            ("null", false),
        ] {
            assert_eq!(c.allows_origin(origin), allowed, "{origin}");
        }
        assert!(valid_origin("https://a.example:8443"));
        assert!(!valid_origin("https://a.example/"));
        assert!(!valid_origin("https://a.example/path"));
        assert!(!valid_origin("HTTPS://A.example"));
        assert!(!valid_origin("ftp://a.example"));
    }
}
