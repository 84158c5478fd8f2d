//! The operator's commands, one module per command family. Each opens only storage (`Admin`): the
//! migrated database and the master key, not the server's mailer, relying party, fetchers or GeoIP.

pub mod agent_token;
pub mod audit;
pub mod client;
pub mod keys;
pub mod org;
pub mod registration_token;
pub mod resource;
pub mod service_account;
pub mod tenant;
pub mod user;

use std::ops::Deref;

pub use latchkey::app::DEFAULT_TENANT;
use latchkey::{
    app::Storage,
    config::Config,
    organization::Organization,
    service_account::ServiceAccount,
    tenant::Tenant,
};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] latchkey::config::ConfigError),
    #[error(transparent)]
    Startup(#[from] latchkey::app::StartupError),
    #[error(transparent)]
    Store(#[from] latchkey::store::StoreError),
    #[error(transparent)]
    Tenant(#[from] latchkey::tenant::TenantError),
    #[error(transparent)]
    Client(#[from] latchkey::client::ClientError),
    #[error(transparent)]
    Resource(#[from] latchkey::oauth::resource::ResourceError),
    #[error(transparent)]
    Organization(#[from] latchkey::organization::OrganizationError),
    #[error(transparent)]
    SsoConnection(#[from] latchkey::sso::connection::ConnectionError),
    #[error(transparent)]
    Domain(#[from] latchkey::sso::domains::DomainError),
    #[error(transparent)]
    Enforcement(#[from] latchkey::sso::enforcement::EnforcementError),
    #[error(transparent)]
    ServiceAccount(#[from] latchkey::service_account::ServiceAccountError),
    #[error("{0}")]
    Usage(String),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// A secret named by an environment variable (`--client-secret-env`), kept off the command line.
pub fn secret_from_env(var: Option<&str>) -> Result<Option<latchkey_proto::Secret>, CliError> {
    var.map(|var| std::env::var(var).map(latchkey_proto::Secret::new).map_err(|_| CliError::Usage(format!("{var} is not set"))))
        .transpose()
}

/// An operator command's handle on storage, and the lookups every command family shares.
pub struct Admin {
    pub config: Config,
    storage: Storage,
}

impl Deref for Admin {
    type Target = Storage;

    fn deref(&self) -> &Storage {
        &self.storage
    }
}

impl Admin {
    /// With `ensure_default_tenant`, the `default` tenant exists afterwards (as when a server starts).
    pub async fn open(config: Config, ensure_default_tenant: bool) -> Result<Self, CliError> {
        existing_deployment(&config)?;
        let storage = Storage::open(&config, ensure_default_tenant).await?;
        Ok(Self { config, storage })
    }

    pub async fn tenant(&self, slug: &str) -> Result<Tenant, CliError> {
        latchkey::tenant::find_by_slug(&self.db, &self.master, slug)
            .await?
            .ok_or_else(|| CliError::Usage(format!("no tenant {slug:?}")))
    }

    pub async fn organization(&self, tenant: &Tenant, slug: &str) -> Result<Organization, CliError> {
        latchkey::organization::find_by_slug(tenant.scope(&self.db), slug)
            .await?
            .ok_or_else(|| CliError::Usage(format!("no organization {slug:?} in tenant {}", tenant.slug)))
    }

    pub async fn service_account(&self, tenant: &Tenant, id: &str) -> Result<ServiceAccount, CliError> {
        latchkey::service_account::find(tenant.scope(&self.db), id)
            .await?
            .ok_or_else(|| CliError::Usage(format!("no service account {id:?} in tenant {}", tenant.slug)))
    }

    /// An audit row for what the operator did (no request origin: it came from the command line).
    pub async fn audit(&self, tenant: &Tenant, action: &'static str, target: String) -> Result<(), CliError> {
        let event = latchkey::audit::Event::new(&tenant.id, "operator", action).target(target);
        latchkey::audit::record(&self.db, &Default::default(), event).await?;
        Ok(())
    }
}

/// A command pointed at a data directory that does not exist would create a new deployment there (a
/// fresh SQLite database and master key) and succeed against it — a typo in `LATCHKEY_DATA_DIR`, or
/// running from the wrong directory, would then look like lost data. Only the server (`serve`) starts
/// a deployment; with an external database and a master key given, no data directory is needed.
fn existing_deployment(config: &Config) -> Result<(), CliError> {
    let reads_data_dir = config.database_url.is_none() || (config.master_key.is_none() && config.master_key_file.is_none());
    if reads_data_dir && !config.data_dir.exists() {
        return Err(CliError::Usage(format!(
            "no data directory at {}: start the server there first (`latchkey serve`), or point --config or \
             LATCHKEY_DATA_DIR at the deployment",
            config.data_dir.display()
        )));
    }
    Ok(())
}

/// A timestamp as RFC 3339, for people reading the output.
pub fn when(timestamp: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(timestamp)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| timestamp.to_string())
}
