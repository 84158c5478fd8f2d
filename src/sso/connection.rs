//! An organization's SSO connection: which identity provider, over which protocol (OIDC or SAML), how
//! Latchkey is registered there, and what the organization decided (passkey after SSO, roles from
//! groups). The connection's secret is sealed with the tenant's data key, bound to the connection id:
//! for OIDC the client secret (opened only to call the IdP's token endpoint), for SAML the private key
//! that signs AuthnRequests (opened only to sign one). Neither is ever shown again.

use latchkey_proto::Secret;
use serde::{Deserialize, Serialize};

use super::saml::{self, SamlSettings};
use crate::{
    crypto::{self, DataKey},
    organization::{self, Organization},
    store::{Scoped, StoreError, now, sso},
};

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("{0}")]
    Invalid(String),
    #[error("no SSO connection {0:?} in this organization")]
    NotFound(String),
    #[error("the connection's stored settings cannot be read: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which kind of OpenID Provider, for the rules that differ (docs/sso.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// Any standard OpenID Provider (Okta, Auth0, Keycloak, …): identity = `iss` + `sub`; an email is
    /// proven by `email_verified`.
    Generic,
    /// Microsoft Entra ID: identity = `tid` + `oid`; an email is proven only by `xms_edov`; the
    /// multi-tenant issuer template (`{tenantid}`) with an allow-list of tenants.
    Entra,
    /// Google Workspace: the hosted domain (`hd`) must be the configured one.
    Google,
}

impl std::str::FromStr for Flavor {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value {
            "generic" => Ok(Flavor::Generic),
            "entra" => Ok(Flavor::Entra),
            "google" => Ok(Flavor::Google),
            other => Err(format!("{other:?}: one of generic, entra, google")),
        }
    }
}

/// Client authentication at the IdP's token endpoint (OIDC Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// The client secret, sealed at rest (HTTP Basic).
    #[default]
    ClientSecretBasic,
    /// A JWT signed (RS256) with a key Latchkey made for the connection: no shared secret to rotate
    /// (RFC 7523 §2.2). Its public key is served as the connection's JWKS.
    PrivateKeyJwt,
}

impl std::str::FromStr for ClientAuth {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value {
            "client-secret" | "client_secret_basic" => Ok(ClientAuth::ClientSecretBasic),
            "private-key-jwt" | "private_key_jwt" => Ok(ClientAuth::PrivateKeyJwt),
            other => Err(format!("{other:?}: client-secret or private-key-jwt")),
        }
    }
}

/// An OIDC connection's settings, as stored (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcSettings {
    /// Where discovery starts: `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub flavor: Flavor,
    /// Entra multi-tenant connections: the directory (tenant) ids whose people may sign in.
    #[serde(default)]
    pub allowed_tenants: Vec<String>,
    /// Entra's `common` endpoint for everyone (tenant-wide "Continue with Microsoft": personal and
    /// work accounts of any directory); organization connections list their directories instead.
    #[serde(default)]
    pub any_tenant: bool,
    /// Google Workspace: the `hd` claim every ID token must carry.
    #[serde(default)]
    pub hosted_domain: Option<String>,
    /// Scopes asked for beyond `openid` (default `email profile`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// How Latchkey authenticates at the token endpoint.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// `private_key_jwt`: the certificate of the key Latchkey signs its client assertions with
    /// (base64 DER; the private key is the connection's sealed secret).
    #[serde(default)]
    pub client_certificate: Option<String>,
    /// Organization roles from the IdP's groups or app roles: (IdP value, role).
    #[serde(default)]
    pub role_map: Vec<(String, String)>,
}

/// The protocol a connection speaks, with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    Oidc(OidcSettings),
    Saml(SamlSettings),
}

impl Protocol {
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::Oidc(_) => "oidc",
            Protocol::Saml(_) => "saml",
        }
    }

    fn role_map(&self) -> &[(String, String)] {
        match self {
            Protocol::Oidc(settings) => &settings.role_map,
            Protocol::Saml(settings) => &settings.role_map,
        }
    }
}

/// A connection as domain code uses it.
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub protocol: Protocol,
    pub require_passkey: bool,
    pub enabled: bool,
    /// When the settings last changed: cached discovery is keyed by it.
    pub updated_at: i64,
    sealed_secret: Option<String>,
}

fn sealing_purpose(connection_id: &str) -> String {
    format!("sso-client-secret/{connection_id}")
}

fn sp_key_purpose(connection_id: &str) -> String {
    format!("sso-saml-key/{connection_id}")
}

fn client_key_purpose(connection_id: &str) -> String {
    format!("sso-client-key/{connection_id}")
}

impl Connection {
    fn open(&self, data_key: &DataKey, purpose: &str) -> Result<Option<Vec<u8>>, ConnectionError> {
        let Some(sealed) = &self.sealed_secret else { return Ok(None) };
        let bytes = crypto::base64url_decode(sealed).ok_or_else(|| ConnectionError::Corrupt("sealed secret".into()))?;
        data_key.open(purpose, &bytes).map(Some).map_err(|e| ConnectionError::Corrupt(e.to_string()))
    }

    /// The OIDC client secret, opened for one call to the token endpoint.
    pub fn client_secret(&self, data_key: &DataKey) -> Result<Option<Secret>, ConnectionError> {
        let Some(opened) = self.open(data_key, &sealing_purpose(&self.id))? else { return Ok(None) };
        String::from_utf8(opened).map(|s| Some(Secret::new(s))).map_err(|_| ConnectionError::Corrupt("secret".into()))
    }

    /// The OIDC connection's `private_key_jwt` key (PKCS#8 DER), opened to sign one client assertion.
    pub fn client_key(&self, data_key: &DataKey) -> Result<zeroize::Zeroizing<Vec<u8>>, ConnectionError> {
        self.open(data_key, &client_key_purpose(&self.id))?
            .map(zeroize::Zeroizing::new)
            .ok_or_else(|| ConnectionError::Corrupt("a private_key_jwt connection without its key".into()))
    }

    /// The SAML connection's AuthnRequest signing key (PKCS#8 DER), opened to sign one request.
    pub fn sp_key(&self, data_key: &DataKey) -> Result<zeroize::Zeroizing<Vec<u8>>, ConnectionError> {
        self.open(data_key, &sp_key_purpose(&self.id))?
            .map(zeroize::Zeroizing::new)
            .ok_or_else(|| ConnectionError::Corrupt("a SAML connection without its signing key".into()))
    }

    /// The organization roles the IdP's groups and app roles map to.
    pub fn roles_for(&self, idp_values: &[String]) -> Vec<String> {
        let mut roles: Vec<String> = Vec::new();
        for (value, role) in self.protocol.role_map() {
            if idp_values.iter().any(|v| v == value) && !roles.contains(role) {
                roles.push(role.clone());
            }
        }
        roles
    }

    /// A tenant-wide social connection ("Continue with Google"), of no organization.
    pub fn is_social(&self) -> bool {
        self.organization_id.is_empty()
    }

    /// Whether a role map decides the members' roles (otherwise administrators assign them).
    pub fn maps_roles(&self) -> bool {
        !self.protocol.role_map().is_empty()
    }
}

fn from_row(row: sso::ConnectionRow) -> Result<Connection, ConnectionError> {
    let corrupt = |e: serde_json::Error| ConnectionError::Corrupt(e.to_string());
    let protocol = match row.protocol.as_str() {
        "oidc" => Protocol::Oidc(serde_json::from_str(&row.settings).map_err(corrupt)?),
        "saml" => Protocol::Saml(serde_json::from_str(&row.settings).map_err(corrupt)?),
        other => return Err(ConnectionError::Corrupt(format!("protocol {other:?}"))),
    };
    Ok(Connection {
        id: row.id,
        organization_id: row.organization_id,
        name: row.name,
        protocol,
        require_passkey: row.require_passkey,
        enabled: row.disabled_at.is_none(),
        updated_at: row.updated_at,
        sealed_secret: row.sealed_secret,
    })
}

/// What an administrator supplies for a new OIDC connection.
#[derive(Debug)]
pub struct NewOidc {
    pub name: String,
    pub settings: OidcSettings,
    pub client_secret: Option<Secret>,
    pub require_passkey: bool,
}

/// Entra directory (tenant) ids are GUIDs.
fn is_guid(value: &str) -> bool {
    uuid::Uuid::try_parse(value).is_ok() && value.len() == 36
}

/// Checks the settings for what each field means; the error says which field and why.
pub fn check(settings: &OidcSettings) -> Result<(), ConnectionError> {
    let invalid = |m: String| Err(ConnectionError::Invalid(m));
    let issuer = url::Url::parse(&settings.issuer).map_err(|_| ConnectionError::Invalid("the issuer must be an https URL".into()))?;
    if issuer.scheme() != "https" || issuer.query().is_some() || issuer.fragment().is_some() {
        return invalid("the issuer must be an https URL without query or fragment".into());
    }
    if settings.client_id.trim().is_empty() || settings.client_id.len() > 255 {
        return invalid("the client id is required (at most 255 characters)".into());
    }
    if let Some(bad) = settings.allowed_tenants.iter().find(|t| !is_guid(t)) {
        return invalid(format!("allowed Entra tenants are directory ids (GUIDs), not {bad:?}"));
    }
    if (!settings.allowed_tenants.is_empty() || settings.any_tenant) && settings.flavor != Flavor::Entra {
        return invalid("allowed tenants apply to Entra connections only".into());
    }
    if settings.flavor == Flavor::Google && settings.hosted_domain.is_none() {
        return invalid("a Google Workspace connection names its hosted domain (hd)".into());
    }
    if let Some(bad) = settings.scopes.iter().find(|s| !crate::client::valid_scope_token(s)) {
        return invalid(format!("invalid scope {bad:?}"));
    }
    let roles: Vec<String> = settings.role_map.iter().map(|(_, role)| role.clone()).collect();
    organization::check_roles(&roles).map_err(|e| ConnectionError::Invalid(e.to_string()))?;
    Ok(())
}

fn check_name(name: &str) -> Result<(), ConnectionError> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(ConnectionError::Invalid("a connection's name is 1-100 characters".into()));
    }
    Ok(())
}

fn new_id() -> String {
    format!("sso_{}", crypto::random_id())
}

async fn insert(
    scope: Scoped<'_>,
    organization_id: &str,
    id: String,
    name: &str,
    settings: &Protocol,
    sealed_secret: Option<String>,
    require_passkey: bool,
) -> Result<Connection, ConnectionError> {
    let json = match settings {
        Protocol::Oidc(oidc) => serde_json::to_string(oidc),
        Protocol::Saml(saml) => serde_json::to_string(saml),
    }
    .map_err(|e| ConnectionError::Invalid(e.to_string()))?;
    let at = now();
    let row = sso::ConnectionRow {
        id,
        tenant_id: scope.tenant_id().to_owned(),
        organization_id: organization_id.to_owned(),
        protocol: settings.name().to_owned(),
        name: name.trim().to_owned(),
        settings: json,
        sealed_secret,
        require_passkey,
        disabled_at: None,
        created_at: at,
        updated_at: at,
    };
    sso::insert_connection(scope, row.clone()).await?;
    from_row(row)
}

pub async fn create_oidc(
    scope: Scoped<'_>,
    data_key: &DataKey,
    organization: &Organization,
    new: NewOidc,
) -> Result<Connection, ConnectionError> {
    check(&new.settings)?;
    check_name(&new.name)?;
    if new.settings.any_tenant {
        return Err(ConnectionError::Invalid("an organization's Entra connection lists its directories (--allowed-tenant)".into()));
    }
    let id = new_id();
    let mut settings = new.settings;
    let sealed_secret = match (settings.client_auth, &new.client_secret) {
        (ClientAuth::PrivateKeyJwt, Some(_)) => {
            return Err(ConnectionError::Invalid("a private_key_jwt connection has no client secret".into()));
        }
        (ClientAuth::PrivateKeyJwt, None) => {
            let (key, certificate) =
                saml::generate_key_pair(&format!("Latchkey OIDC client {id}")).map_err(|e| ConnectionError::Invalid(e.to_string()))?;
            let key = zeroize::Zeroizing::new(key);
            settings.client_certificate = Some(certificate);
            Some(crypto::base64url(&data_key.seal(&client_key_purpose(&id), &key)))
        }
        (ClientAuth::ClientSecretBasic, secret) => {
            settings.client_certificate = None;
            secret.as_ref().map(|secret| crypto::base64url(&data_key.seal(&sealing_purpose(&id), secret.expose().as_bytes())))
        }
    };
    insert(scope, &organization.id, id, &new.name, &Protocol::Oidc(settings), sealed_secret, new.require_passkey).await
}

/// The providers of tenant-wide social sign-in, as the sign-in page offers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocialProvider {
    /// "Continue with Google": Google accounts (consumer and Workspace), `email_verified` proves.
    Google,
    /// "Continue with Microsoft": personal and work accounts of any Entra directory (the `common`
    /// endpoint), identity `tid` + `oid`, `xms_edov` proves.
    Microsoft,
}

impl std::str::FromStr for SocialProvider {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value {
            "google" => Ok(SocialProvider::Google),
            "microsoft" => Ok(SocialProvider::Microsoft),
            other => Err(format!("{other:?}: google or microsoft")),
        }
    }
}

impl SocialProvider {
    pub fn name(self) -> &'static str {
        match self {
            SocialProvider::Google => "Google",
            SocialProvider::Microsoft => "Microsoft",
        }
    }

    fn default_issuer(self) -> &'static str {
        match self {
            SocialProvider::Google => "https://accounts.google.com",
            SocialProvider::Microsoft => "https://login.microsoftonline.com/common/v2.0",
        }
    }
}

/// A tenant-wide social connection (no organization): the provider's well-known issuer unless
/// `issuer` says otherwise (tests; a Google-compatible OP), always a passkey after it.
pub async fn create_social(
    scope: Scoped<'_>,
    data_key: &DataKey,
    provider: SocialProvider,
    issuer: Option<String>,
    client_id: String,
    client_secret: Option<Secret>,
) -> Result<Connection, ConnectionError> {
    let settings = OidcSettings {
        issuer: issuer.unwrap_or_else(|| provider.default_issuer().to_owned()),
        client_id,
        flavor: match provider {
            SocialProvider::Google => Flavor::Generic,
            SocialProvider::Microsoft => Flavor::Entra,
        },
        allowed_tenants: vec![],
        any_tenant: provider == SocialProvider::Microsoft,
        hosted_domain: None,
        scopes: vec![],
        client_auth: ClientAuth::ClientSecretBasic,
        client_certificate: None,
        role_map: vec![],
    };
    check(&settings)?;
    let id = new_id();
    let sealed_secret =
        client_secret.as_ref().map(|secret| crypto::base64url(&data_key.seal(&sealing_purpose(&id), secret.expose().as_bytes())));
    insert(scope, "", id, provider.name(), &Protocol::Oidc(settings), sealed_secret, true).await
}

/// The tenant's social connections, oldest first.
pub async fn social(scope: Scoped<'_>) -> Result<Vec<Connection>, ConnectionError> {
    of_organization(scope, "").await
}

/// Removes a tenant-wide social connection and the identities linked through it.
pub async fn remove_social(scope: Scoped<'_>, id: &str) -> Result<(), ConnectionError> {
    match find(scope, id).await? {
        Some(connection) if connection.is_social() => {
            sso::delete_connection(scope, id).await?;
            Ok(())
        }
        _ => Err(ConnectionError::NotFound(id.to_owned())),
    }
}

/// What an administrator supplies for a new SAML connection: the IdP's metadata, read and checked.
#[derive(Debug)]
pub struct NewSaml {
    pub name: String,
    pub idp: saml::IdpMetadata,
    pub metadata_url: Option<String>,
    pub allow_idp_initiated: bool,
    pub role_map: Vec<(String, String)>,
    pub require_passkey: bool,
}

/// A SAML connection, with a new key pair of its own for signing AuthnRequests (the private key
/// sealed, the certificate published in the connection's SP metadata).
pub async fn create_saml(
    scope: Scoped<'_>,
    data_key: &DataKey,
    organization: &Organization,
    new: NewSaml,
) -> Result<Connection, ConnectionError> {
    check_name(&new.name)?;
    let roles: Vec<String> = new.role_map.iter().map(|(_, role)| role.clone()).collect();
    organization::check_roles(&roles).map_err(|e| ConnectionError::Invalid(e.to_string()))?;
    let id = new_id();
    let (key, sp_certificate) =
        saml::generate_key_pair(&format!("Latchkey SAML SP {id}")).map_err(|e| ConnectionError::Invalid(e.to_string()))?;
    let key = zeroize::Zeroizing::new(key);
    let sealed = crypto::base64url(&data_key.seal(&sp_key_purpose(&id), &key));
    let settings = SamlSettings {
        idp_entity_id: new.idp.entity_id,
        sso_url: new.idp.sso_url,
        certificates: new.idp.certificates,
        allow_idp_initiated: new.allow_idp_initiated,
        metadata_url: new.metadata_url,
        sp_certificate,
        role_map: new.role_map,
    };
    insert(scope, &organization.id, id, &new.name, &Protocol::Saml(settings), Some(sealed), new.require_passkey).await
}

pub async fn find(scope: Scoped<'_>, id: &str) -> Result<Option<Connection>, ConnectionError> {
    sso::connection(scope, id).await?.map(from_row).transpose()
}

pub async fn of_organization(scope: Scoped<'_>, organization_id: &str) -> Result<Vec<Connection>, ConnectionError> {
    sso::connections_of(scope, organization_id).await?.into_iter().map(from_row).collect()
}

/// The connection people of this organization sign in with: its first enabled one.
pub async fn active_of(scope: Scoped<'_>, organization_id: &str) -> Result<Option<Connection>, ConnectionError> {
    Ok(of_organization(scope, organization_id).await?.into_iter().find(|c| c.enabled))
}

/// Removes the connection and the identities linked through it (their accounts stay).
pub async fn remove(scope: Scoped<'_>, organization: &Organization, id: &str) -> Result<(), ConnectionError> {
    match find(scope, id).await? {
        Some(connection) if connection.organization_id == organization.id => {
            sso::delete_connection(scope, id).await?;
            Ok(())
        }
        _ => Err(ConnectionError::NotFound(id.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(flavor: Flavor) -> OidcSettings {
        OidcSettings {
            issuer: "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0".into(),
            client_id: "app".into(),
            flavor,
            allowed_tenants: vec![],
            any_tenant: false,
            hosted_domain: None,
            scopes: vec![],
            client_auth: ClientAuth::ClientSecretBasic,
            client_certificate: None,
            role_map: vec![],
        }
    }

    #[test]
    fn settings_are_checked_for_what_they_mean() {
        assert!(check(&settings(Flavor::Entra)).is_ok());
        for (change, why) in [
            (OidcSettings { issuer: "http://idp.example".into(), ..settings(Flavor::Generic) }, "https"),
            (OidcSettings { issuer: "https://idp.example/?x=1".into(), ..settings(Flavor::Generic) }, "query"),
            (OidcSettings { client_id: " ".into(), ..settings(Flavor::Generic) }, "client id"),
            (OidcSettings { allowed_tenants: vec!["contoso".into()], ..settings(Flavor::Entra) }, "GUIDs"),
            (OidcSettings { allowed_tenants: vec!["9188040d-6c67-4c5b-b112-36a304b66dad".into()], ..settings(Flavor::Generic) }, "Entra connections only"),
            (settings(Flavor::Google), "hosted domain"),
            (OidcSettings { role_map: vec![("g".into(), "bad role".into())], ..settings(Flavor::Generic) }, "invalid role"),
        ] {
            let error = check(&change).expect_err(why).to_string();
            assert!(error.contains(why), "{error} / {why}");
        }
    }
}
