//! Service accounts: bot identities an administrator creates inside an organization. One authenticates
//! either as its own confidential client (client_credentials) or with a long-lived agent token, which it
//! exchanges at the token endpoint for a short-lived access token (RFC 8693; `oauth::grants::
//! token_exchange`): the long-lived secret only ever travels to Latchkey, resource servers only ever see
//! 15-minute JWTs. Either way the token says `caller: agent`, names the organization and its roles.
//!
//! Agent tokens: `lk_agt_` + 256 random bits, shown once, stored as SHA-256 plus a display prefix; at
//! most three active per account; one year by default; scoped (a subset of the account's scopes);
//! revocable. Disabling the account stops its client and every agent token at once.

use crate::{
    client::{self, ClientError, GrantType, Introspection, NewClient},
    crypto,
    keys::SigningAlg,
    organization::{self, Membership, Organization, OrganizationError},
    store::{
        Scoped, StoreError, StoreResult, from_json_list, now,
        service_accounts::{self, AgentTokenRow, ServiceAccountRow},
        to_json_list,
    },
};

pub const AGENT_TOKEN_PREFIX: &str = "lk_agt_";
pub const MAX_ACTIVE_AGENT_TOKENS: usize = 3;
pub const DEFAULT_AGENT_TOKEN_LIFETIME: i64 = 365 * 24 * 3600;

#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub id: String,
    pub organization: Organization,
    pub name: String,
    pub client_id: String,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
}

impl ServiceAccount {
    pub fn membership(&self) -> Membership {
        Membership { organization: self.organization.slug.clone(), roles: self.roles.clone() }
    }

    pub fn is_active(&self) -> bool {
        self.disabled_at.is_none()
    }
}

#[derive(Debug, Clone)]
pub struct AgentToken {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl AgentToken {
    pub fn is_active(&self, at: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > at
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceAccountError {
    #[error("no service account {0:?}")]
    NotFound(String),
    #[error("service account {0:?} is disabled")]
    Disabled(String),
    #[error("scope {0:?} is not one of the service account's scopes")]
    ScopeNotAllowed(String),
    #[error("a service account needs at least one scope")]
    NoScopes,
    #[error("at most {MAX_ACTIVE_AGENT_TOKENS} agent tokens may be active: revoke one first")]
    TooManyTokens,
    #[error("an agent token's lifetime is between one second and ten years, not {0} seconds")]
    InvalidLifetime(i64),
    #[error(transparent)]
    Organization(#[from] OrganizationError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn token_from_row(row: AgentTokenRow) -> StoreResult<AgentToken> {
    Ok(AgentToken {
        id: row.id,
        name: row.name,
        prefix: row.prefix,
        scopes: from_json_list(&row.scopes)?,
        created_at: row.created_at,
        expires_at: row.expires_at,
        last_used_at: row.last_used_at,
        revoked_at: row.revoked_at,
    })
}

fn from_row(row: ServiceAccountRow, organization: Organization) -> StoreResult<ServiceAccount> {
    Ok(ServiceAccount {
        id: row.id,
        organization,
        name: row.name,
        client_id: row.client_id,
        roles: from_json_list(&row.roles)?,
        scopes: from_json_list(&row.scopes)?,
        created_at: row.created_at,
        disabled_at: row.disabled_at,
    })
}

/// Creates the account and its confidential client; returns both the account and the client secret
/// (shown once).
pub async fn create(
    scope: Scoped<'_>,
    organization: &Organization,
    name: &str,
    scopes: &[String],
    roles: &[String],
) -> Result<(ServiceAccount, latchkey_proto::Secret), ServiceAccountError> {
    organization::check_roles(roles)?;
    if scopes.is_empty() {
        return Err(ServiceAccountError::NoScopes);
    }
    let id = format!("sa_{}", crypto::random_id());
    let (client, secret) = client::create(
        scope,
        NewClient {
            name: format!("{name} ({})", organization.slug),
            confidential: true,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::ClientCredentials],
            scopes: scopes.to_vec(),
            first_party: false,
            id_token_alg: SigningAlg::RS256,
            access_token_alg: SigningAlg::ES256,
            registration: None,
            introspection: Introspection::None,
            userinfo_alg: None,
            allowed_origins: vec![],
        },
    )
    .await?;
    let secret = secret.ok_or_else(|| StoreError::Corrupt("confidential client without a secret".into()))?;
    let row = ServiceAccountRow {
        id: id.clone(),
        tenant_id: scope.tenant_id().to_owned(),
        organization_id: organization.id.clone(),
        name: name.to_owned(),
        client_id: client.client_id.clone(),
        roles: to_json_list(roles),
        scopes: to_json_list(scopes),
        created_at: now(),
        disabled_at: None,
    };
    service_accounts::insert(scope, row.clone()).await?;
    client::link_service_account(scope, &client.client_id, &id).await?;
    Ok((from_row(row, organization.clone())?, secret))
}

/// One query (joined with its organization): it runs on every exchange, service-account
/// client_credentials grant and introspection of a service account's token.
pub async fn find(scope: Scoped<'_>, id: &str) -> StoreResult<Option<ServiceAccount>> {
    match service_accounts::find(scope, id).await? {
        Some((row, organization)) => Ok(Some(from_row(row, organization)?)),
        None => Ok(None),
    }
}

pub async fn list(scope: Scoped<'_>, organization: &Organization) -> StoreResult<Vec<ServiceAccount>> {
    let rows = service_accounts::for_organization(scope, &organization.id).await?;
    rows.into_iter().map(|row| from_row(row, organization.clone())).collect()
}

/// Disables the account: its client stops authenticating, its agent tokens stop exchanging. Returns
/// how many agent tokens were revoked with it.
pub async fn disable(scope: Scoped<'_>, id: &str) -> Result<u64, ServiceAccountError> {
    service_accounts::disable(scope, id, now()).await?.ok_or_else(|| ServiceAccountError::NotFound(id.to_owned()))
}

/// Issues an agent token; returns its record and the token itself (shown once, never stored).
pub async fn create_agent_token(
    scope: Scoped<'_>,
    account: &ServiceAccount,
    name: &str,
    scopes: Option<&[String]>,
    lifetime: i64,
) -> Result<(AgentToken, latchkey_proto::Secret), ServiceAccountError> {
    if !account.is_active() {
        return Err(ServiceAccountError::Disabled(account.id.clone()));
    }
    if !(1..=10 * DEFAULT_AGENT_TOKEN_LIFETIME).contains(&lifetime) {
        return Err(ServiceAccountError::InvalidLifetime(lifetime));
    }
    let scopes = scopes.map_or_else(|| account.scopes.clone(), <[String]>::to_vec);
    if let Some(bad) = scopes.iter().find(|s| !account.scopes.contains(s)) {
        return Err(ServiceAccountError::ScopeNotAllowed(bad.clone()));
    }
    let at = now();
    // Expired tokens give their slot back.
    service_accounts::release_expired_slots(scope, &account.id, at).await?;
    let token = crypto::random_token(AGENT_TOKEN_PREFIX);
    let mut row = AgentTokenRow {
        id: format!("agt_{}", crypto::random_id()),
        tenant_id: scope.tenant_id().to_owned(),
        service_account_id: account.id.clone(),
        name: name.to_owned(),
        token_hash: crypto::sha256_hex(&token),
        prefix: crypto::display_prefix(&token),
        scopes: to_json_list(&scopes),
        slot: None,
        created_at: at,
        expires_at: at + lifetime,
        last_used_at: None,
        revoked_at: None,
    };
    // Each active token holds one of three slots, unique per account in the database: of two
    // creators racing for the last slot, one insert fails and that creator looks again.
    for _ in 0..MAX_ACTIVE_AGENT_TOKENS {
        let taken = service_accounts::taken_slots(scope, &account.id).await?;
        let Some(slot) = (1..=MAX_ACTIVE_AGENT_TOKENS as i32).find(|s| !taken.contains(s)) else {
            return Err(ServiceAccountError::TooManyTokens);
        };
        row.slot = Some(slot);
        if service_accounts::insert_token(scope, row.clone()).await? {
            return Ok((token_from_row(row)?, latchkey_proto::Secret::new(token)));
        }
    }
    Err(ServiceAccountError::TooManyTokens)
}

pub async fn agent_tokens(scope: Scoped<'_>, account_id: &str) -> StoreResult<Vec<AgentToken>> {
    service_accounts::tokens(scope, account_id).await?.into_iter().map(token_from_row).collect()
}

pub async fn revoke_agent_token(scope: Scoped<'_>, account_id: &str, token_id: &str) -> StoreResult<bool> {
    service_accounts::revoke_token(scope, account_id, token_id, now()).await
}

/// The active service account and agent token a presented agent token belongs to, or `None`. The
/// lookup is by SHA-256 of a 256-bit random value: nothing secret is compared byte by byte.
pub async fn authenticate_agent_token(
    scope: Scoped<'_>,
    presented: &str,
) -> StoreResult<Option<(ServiceAccount, AgentToken)>> {
    if !presented.starts_with(AGENT_TOKEN_PREFIX) {
        return Ok(None);
    }
    let at = now();
    let Some(row) = service_accounts::find_live_token(scope, &crypto::sha256_hex(presented), at).await? else {
        return Ok(None);
    };
    let account_id = row.service_account_id.clone();
    let token = token_from_row(row)?;
    let Some(account) = find(scope, &account_id).await? else {
        return Ok(None);
    };
    if !account.is_active() {
        return Ok(None);
    }
    Ok(Some((account, token)))
}

/// Records a successful exchange (shown by `agent-token list`).
pub async fn mark_agent_token_used(scope: Scoped<'_>, token_id: &str) -> StoreResult<()> {
    service_accounts::mark_token_used(scope, token_id, now()).await
}

/// The service account a client belongs to, if any (for client_credentials).
pub async fn of_client(scope: Scoped<'_>, client: &client::Client) -> StoreResult<Option<ServiceAccount>> {
    match &client.service_account_id {
        Some(id) => find(scope, id).await,
        None => Ok(None),
    }
}
