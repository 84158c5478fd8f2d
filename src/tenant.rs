//! Tenants: one issuer each, with its own data key, signing keys, users, clients and policies.

use std::sync::Arc;

use crate::{
    crypto::{DataKey, MasterKey},
    keys,
    store::{
        DatabaseConnection, Scoped, StoreError, StoreResult, now,
        tenants::{self, Setting, TenantRow},
    },
};

#[derive(Debug)]
pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub display_name: String,
    /// Whether an unknown email address may create an account by signing in.
    pub self_signup: bool,
    /// Every user must set up an authenticator app before an authorization completes (docs/passkeys.md).
    pub require_totp: bool,
    /// Who may register a client at the registration endpoint (RFC 7591).
    pub registration: RegistrationPolicy,
    /// Self-registered clients (RFC 7591) may register for and use the client-credentials grant.
    /// Off by default: open registration would otherwise let anyone mint machine tokens.
    pub registration_client_credentials: bool,
    /// RFC 9396 `authorization_details` types this tenant accepts (docs/approvals.md).
    pub authorization_details_types: Vec<String>,
    pub data_key: DataKey,
}

/// Dynamic client registration policy (RFC 7591 §3: open registration, or protected by an initial
/// access token issued by the operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationPolicy {
    Open,
    InitialAccessToken,
    Closed,
}

impl RegistrationPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::InitialAccessToken => "token",
            Self::Closed => "closed",
        }
    }
}

impl std::str::FromStr for RegistrationPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(Self::Open),
            "token" => Ok(Self::InitialAccessToken),
            "closed" => Ok(Self::Closed),
            other => Err(format!("registration policy is open, token or closed, not {other:?}")),
        }
    }
}

impl Tenant {
    pub fn issuer(&self, base_url: &str) -> String {
        format!("{base_url}/t/{}", self.slug)
    }

    pub fn scope<'a>(&'a self, db: &'a DatabaseConnection) -> Scoped<'a> {
        Scoped::new(db, &self.id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error(
        "tenant slug must be 1-32 characters of a-z, 0-9 and '-', starting with a letter or digit"
    )]
    InvalidSlug,
    #[error("tenant {0:?} already exists")]
    Exists(String),
    #[error("{0}")]
    InvalidSetting(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn valid_slug(slug: &str) -> bool {
    let bytes = slug.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 32
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

fn from_row(row: TenantRow, master: &MasterKey) -> StoreResult<Tenant> {
    let data_key = master.unwrap(&row.id, &row.wrapped_data_key).map_err(|e| {
        StoreError::Corrupt(format!(
            "tenant {} data key: {e} (is this the right master key?)",
            row.slug
        ))
    })?;
    Ok(Tenant {
        id: row.id,
        slug: row.slug,
        display_name: row.display_name,
        self_signup: row.self_signup,
        require_totp: row.require_totp,
        registration: row.registration_policy.parse().map_err(StoreError::Corrupt)?,
        registration_client_credentials: row.registration_client_credentials,
        authorization_details_types: crate::store::from_json_list(&row.authorization_details_types)?,
        data_key,
    })
}

pub async fn find_by_slug(
    db: &DatabaseConnection,
    master: &MasterKey,
    slug: &str,
) -> StoreResult<Option<Tenant>> {
    if !valid_slug(slug) {
        return Ok(None);
    }
    tenants::find_by_slug(db, slug).await?.map(|row| from_row(row, master)).transpose()
}

/// Every tenant's row (slug, name, policy), by slug; the data keys stay wrapped.
pub async fn list(db: &DatabaseConnection) -> StoreResult<Vec<TenantRow>> {
    tenants::all(db).await
}

/// Turns the "every user needs an authenticator app" policy on or off. Nodes see it within the
/// tenant cache lifetime.
pub async fn set_require_totp(db: &DatabaseConnection, slug: &str, required: bool) -> Result<bool, TenantError> {
    Ok(tenants::set(db, slug, Setting::RequireTotp(required)).await?)
}

/// Lets self-registered clients use client credentials (or stops it; existing registrations that
/// asked for the grant keep it in their metadata but are refused at the token endpoint).
pub async fn set_registration_client_credentials(db: &DatabaseConnection, slug: &str, allowed: bool) -> Result<bool, TenantError> {
    Ok(tenants::set(db, slug, Setting::RegistrationClientCredentials(allowed)).await?)
}

/// The RFC 9396 `authorization_details` types the tenant accepts (replacing the list); each a short
/// name of letters, digits, `_`, `-`, `.`, `:` or `/`.
pub async fn set_authorization_details_types(db: &DatabaseConnection, slug: &str, types: &[String]) -> Result<bool, TenantError> {
    if let Some(bad) = types.iter().find(|t| !crate::oauth::authorization_details::valid_type_name(t)) {
        return Err(TenantError::InvalidSetting(format!("{bad:?} is not an authorization details type name")));
    }
    let json = crate::store::to_json_list(types);
    Ok(tenants::set(db, slug, Setting::AuthorizationDetailsTypes(&json)).await?)
}

pub async fn set_registration_policy(
    db: &DatabaseConnection,
    slug: &str,
    policy: RegistrationPolicy,
) -> Result<bool, TenantError> {
    Ok(tenants::set(db, slug, Setting::RegistrationPolicy(policy.as_str())).await?)
}

/// Creates a tenant with a fresh data key and a first set of signing keys.
pub async fn create(
    db: &DatabaseConnection,
    master: &MasterKey,
    slug: &str,
    display_name: &str,
    self_signup: bool,
) -> Result<Arc<Tenant>, TenantError> {
    if !valid_slug(slug) {
        return Err(TenantError::InvalidSlug);
    }
    if find_by_slug(db, master, slug).await?.is_some() {
        return Err(TenantError::Exists(slug.to_owned()));
    }
    let id = crate::crypto::random_id();
    let data_key = DataKey::generate();
    let row = TenantRow {
        id: id.clone(),
        slug: slug.to_owned(),
        display_name: display_name.to_owned(),
        self_signup,
        require_totp: false,
        registration_policy: RegistrationPolicy::Open.as_str().to_owned(),
        registration_client_credentials: false,
        authorization_details_types: "[]".to_owned(),
        wrapped_data_key: master.wrap(&id, &data_key),
        created_at: now(),
    };
    tenants::insert(db, row).await?;
    let tenant = Tenant {
        id,
        slug: slug.to_owned(),
        display_name: display_name.to_owned(),
        self_signup,
        require_totp: false,
        registration: RegistrationPolicy::Open,
        registration_client_credentials: false,
        authorization_details_types: Vec::new(),
        data_key,
    };
    keys::generate_current_keys(tenant.scope(db), &tenant.data_key).await?;
    Ok(Arc::new(tenant))
}
