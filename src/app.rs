//! The composition root: a serving node's state, built once at start-up and passed explicitly (no
//! globals: tests run many servers in one process), and the storage an operator's command opens. Only
//! the edges (`http`, `cli`, `background`, `main`) use this module; domain code receives a
//! `context::Ctx` (scripts/check-boundaries holds that).

use std::{sync::Arc, time::Duration};

use crate::{
    audit::Origin,
    cache::TtlCache,
    config::{Config, Lifetimes},
    context::{Ctx, Services},
    crypto::MasterKey,
    fsutil,
    keys::Keyring,
    mail::{MailError, Mailer},
    mail_queue::Doorbell,
    client::document::MetadataDocuments,
    store::{self, DatabaseConnection, StoreError, StoreResult},
    tenant::{self, Tenant, TenantError},
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error("master key: {0}")]
    MasterKey(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error("passkeys cannot work with this public URL (it needs a host name, not an IP address): {0}")]
    Passkeys(String),
    #[error("GeoIP database: {0}")]
    GeoIp(String),
    #[error("client metadata documents: {0}")]
    MetadataDocuments(String),
    #[error("SSO: {0}")]
    Sso(String),
}

/// The composition root: everything a serving node builds once at start-up. HTTP handlers, the
/// background workers and `main` hold it; domain code never sees it, only the request's `Ctx` and the
/// `Services` that it borrows.
pub struct App {
    pub config: Config,
    /// For this node's background work (the sweeper, the mail worker), not for requests: a request's
    /// storage is `Ctx::scope`, scoped to its tenant.
    pub db: DatabaseConnection,
    pub mailer: Mailer,
    pub geo: crate::geo::GeoIp,
    pub services: Services,
    master: MasterKey,
    tenants: TtlCache<String, Tenant>,
}

pub const DEFAULT_TENANT: &str = "default";

/// Loads the master key from configuration or from its file; in the embedded default, generates one.
fn load_master_key(config: &Config) -> Result<MasterKey, StartupError> {
    let path = config.master_key_file.clone().unwrap_or_else(|| config.data_dir.join("master.key"));
    MasterKey::load_or_generate(config.master_key.as_deref(), &path, "LATCHKEY_MASTER_KEY or master_key_file")
        .map_err(StartupError::MasterKey)
}

/// What an operator's command needs: the migrated database and the master key. Opening it starts
/// nothing else (no mailer, WebAuthn relying party, metadata fetcher, GeoIP or background work).
pub struct Storage {
    pub db: DatabaseConnection,
    pub master: MasterKey,
}

impl Storage {
    /// Creates the data directory, loads the master key, connects and migrates. With
    /// `ensure_default_tenant`, creates the `default` tenant on first start.
    pub async fn open(config: &Config, ensure_default_tenant: bool) -> Result<Self, StartupError> {
        fsutil::create_private_dir(&config.data_dir)
            .map_err(|e| StartupError::DataDir(config.data_dir.display().to_string(), e))?;
        let master = load_master_key(config)?;
        let db = store::connect(&config.database_url(), config.database_pool_size()).await?;
        store::migrate(&db).await?;
        for file in ["latchkey.db", "latchkey.db-wal", "latchkey.db-shm"] {
            let _ = fsutil::restrict(&config.data_dir.join(file));
        }
        if ensure_default_tenant && tenant::find_by_slug(&db, &master, DEFAULT_TENANT).await?.is_none() {
            match tenant::create(&db, &master, DEFAULT_TENANT, "Latchkey", true).await {
                // Another node created it first.
                Ok(_) | Err(TenantError::Exists(_)) => {}
                Err(other) => return Err(other.into()),
            }
        }
        Ok(Self { db, master })
    }
}

impl App {
    /// Opens storage (`Storage::open`) and builds everything a serving node needs.
    pub async fn start(
        config: Config,
        ensure_default_tenant: bool,
    ) -> Result<Arc<Self>, StartupError> {
        let Storage { db, master } = Storage::open(&config, ensure_default_tenant).await?;
        let batch_writer = store::batch_writer(&db, &config.database_url(), config.database_pool_size()).await?;
        let mailer = Mailer::from_config(&config.mail, &config.data_dir)?;
        let webauthn = crate::passkey::relying_party(&config.public_url, "Latchkey")
            .map_err(|e| StartupError::Passkeys(e.to_string()))?;
        let geo = crate::geo::GeoIp::open(config.geoip_city_database.as_deref())
            .map_err(|e| StartupError::GeoIp(e.to_string()))?;
        let metadata_documents = MetadataDocuments::new(&config.client_metadata_documents)
            .map_err(StartupError::MetadataDocuments)?;
        let dns = crate::sso::dns::TxtResolver::from_config(&config.domains);
        let sso = crate::sso::Sso::new(&config.sso).map_err(StartupError::Sso)?;
        let cache_ttl = Duration::from_secs(config.lifetimes.cache.max(0) as u64);
        let services = Services::new(
            db.clone(),
            batch_writer,
            &master,
            &config,
            webauthn,
            metadata_documents,
            dns,
            sso,
            cache_ttl,
        );
        let app = Self { services, geo, db, master, mailer, tenants: TtlCache::new(cache_ttl), config };
        Ok(Arc::new(app))
    }

    pub fn lifetimes(&self) -> &Lifetimes {
        &self.config.lifetimes
    }

    pub async fn tenant(&self, slug: &str) -> StoreResult<Option<Arc<Tenant>>> {
        if let Some(tenant) = self.tenants.get(slug) {
            return Ok(Some(tenant));
        }
        let Some(tenant) = tenant::find_by_slug(&self.db, &self.master, slug).await? else {
            return Ok(None);
        };
        let tenant = Arc::new(tenant);
        self.tenants.put(slug.to_owned(), tenant.clone());
        Ok(Some(tenant))
    }

    /// A tenant's signing keys, for the JWKS document (which needs no request context).
    pub async fn keyring(&self, tenant: &Tenant) -> StoreResult<Arc<Keyring>> {
        self.services.keyring(tenant).await
    }

    /// Wakes when a request on this node queued mail (the mail worker waits on it).
    pub fn mail_doorbell(&self) -> &Doorbell {
        self.services.mail_doorbell()
    }

    /// The tenant context for one request, or `None` for an unknown tenant.
    pub async fn context(&self, slug: &str, origin: Origin) -> StoreResult<Option<Ctx<'_>>> {
        let Some(tenant) = self.tenant(slug).await? else {
            return Ok(None);
        };
        let issuer = tenant.issuer(self.config.base_url());
        Ok(Some(Ctx {
            services: &self.services,
            tenant,
            issuer,
            origin,
        }))
    }
}
