//! Application state, built once at start-up and passed explicitly (no globals: tests run many servers
//! in one process), and the per-request tenant context that domain functions receive.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;

use crate::{
    audit::{AuditLog, Event, Origin},
    cache::TtlCache,
    client::{self, Client},
    config::{Config, Lifetimes},
    crypto::{self, CodeHasher, MasterKey},
    fsutil,
    jwt::{self, AccessClaims},
    keys::{self, Keyring},
    mail::{MailError, Mailer},
    mail_queue::{self, Doorbell, Message},
    oauth::{
        metadata_document::{self, DocumentError, MetadataDocuments},
    },
    ratelimit::{self, Limiters},
    store::{self, DatabaseConnection, Scoped, StoreError, StoreResult, access_tokens::RevocationReads, token_writes::TokenWrites},
    tenant::{self, RegistrationPolicy, Tenant, TenantError},
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
}

/// Why a `client_id` names no usable client.
#[derive(Debug, thiserror::Error)]
pub enum ClientLookupError {
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct App {
    pub db: DatabaseConnection,
    pub config: Config,
    pub master: MasterKey,
    pub hasher: CodeHasher,
    pub mailer: Mailer,
    /// Wakes this node's mail worker when a request queued a message (`mail_queue`).
    pub mail_doorbell: Doorbell,
    pub limiters: Limiters,
    /// The WebAuthn relying party: RP ID and origin from the public URL.
    pub webauthn: webauthn_rs::Webauthn,
    pub geo: crate::geo::GeoIp,
    audit_log: AuditLog,
    pub(crate) revocations: RevocationReads,
    pub(crate) token_writes: TokenWrites,
    tenants: TtlCache<String, Tenant>,
    keyrings: TtlCache<String, Keyring>,
    clients: TtlCache<(String, String), Client>,
    metadata_documents: MetadataDocuments,
    /// Each tenant's discovery document, serialised once per cache period (it depends only on the
    /// issuer and the registration policy, kept beside it so a policy change is seen at once).
    pub(crate) discovery_documents: TtlCache<String, (RegistrationPolicy, Bytes)>,
    /// Access tokens whose signature this node has checked, by tenant and SHA-256 of the token, so a
    /// resource server introspecting the same token again costs a lookup instead of an ECDSA
    /// verification. Expiry and revocation are still checked on every use.
    verified_tokens: TtlCache<(String, [u8; 32]), AccessClaims>,
}

pub const DEFAULT_TENANT: &str = "default";

/// How long a verified signature is remembered; never beyond the token's own `exp`.
const VERIFIED_TOKEN_TTL: Duration = Duration::from_secs(300);

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
        let cache_ttl = Duration::from_secs(config.lifetimes.cache.max(0) as u64);
        let webauthn = crate::passkey::relying_party(&config.public_url, "Latchkey")
            .map_err(|e| StartupError::Passkeys(e.to_string()))?;
        let geo = crate::geo::GeoIp::open(config.geoip_city_database.as_deref())
            .map_err(|e| StartupError::GeoIp(e.to_string()))?;
        let metadata_documents = MetadataDocuments::new(&config.client_metadata_documents)
            .map_err(StartupError::MetadataDocuments)?;
        let app = Self {
            metadata_documents,
            webauthn,
            geo,
            hasher: CodeHasher::new(&master),
            limiters: Limiters::new(&config.rate_limits),
            audit_log: AuditLog::new(batch_writer.clone()),
            revocations: RevocationReads::new(db.clone()),
            token_writes: TokenWrites::new(batch_writer),
            tenants: TtlCache::new(cache_ttl),
            keyrings: TtlCache::new(cache_ttl),
            clients: TtlCache::new(cache_ttl),
            discovery_documents: TtlCache::new(cache_ttl),
            verified_tokens: TtlCache::new(VERIFIED_TOKEN_TTL),
            db,
            master,
            mailer,
            mail_doorbell: Doorbell::default(),
            config,
        };
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

    pub async fn keyring(&self, tenant: &Tenant) -> StoreResult<Arc<Keyring>> {
        if let Some(keyring) = self.keyrings.get(&tenant.id) {
            return Ok(keyring);
        }
        let keyring = Arc::new(keys::load_keyring(tenant.scope(&self.db), &tenant.data_key).await?);
        self.keyrings.put(tenant.id.clone(), keyring.clone());
        Ok(keyring)
    }

    /// The tenant context for one request, or `None` for an unknown tenant.
    pub async fn context(&self, slug: &str, origin: Origin) -> StoreResult<Option<Ctx<'_>>> {
        let Some(tenant) = self.tenant(slug).await? else {
            return Ok(None);
        };
        let issuer = tenant.issuer(self.config.base_url());
        Ok(Some(Ctx {
            app: self,
            tenant,
            issuer,
            origin,
        }))
    }
}

/// Everything domain code needs for one request to one tenant.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub tenant: Arc<Tenant>,
    pub issuer: String,
    pub origin: Origin,
}

impl<'a> Ctx<'a> {
    pub fn scope(&self) -> Scoped<'_> {
        self.tenant.scope(&self.app.db)
    }

    pub fn lifetimes(&self) -> &Lifetimes {
        &self.app.config.lifetimes
    }

    pub async fn keyring(&self) -> StoreResult<Arc<Keyring>> {
        self.app.keyring(&self.tenant).await
    }

    /// Drops this node's cached copy of a client after it changed here (other nodes re-read it
    /// within the cache lifetime).
    pub fn forget_client(&self, client_id: &str) {
        self.app.clients.invalidate(&(self.tenant.id.clone(), client_id.to_owned()));
    }

    /// The client a request names, or `None` when there is no such client (including a metadata
    /// document that cannot be used: `find_client` says why).
    pub async fn client(&self, client_id: &str) -> StoreResult<Option<Arc<Client>>> {
        match self.find_client(client_id).await {
            Ok(found) => Ok(found),
            Err(ClientLookupError::Store(error)) => Err(error),
            Err(ClientLookupError::Document(_)) => Ok(None),
        }
    }

    /// A registered client by its id, or, for an https `client_id`, the client its metadata document
    /// describes (if this tenant accepts those).
    pub async fn find_client(&self, client_id: &str) -> Result<Option<Arc<Client>>, ClientLookupError> {
        if metadata_document::is_document_client_id(client_id) {
            if !metadata_document::accepted_by(&self.tenant) {
                return Err(DocumentError::NotAccepted.into());
            }
            let documents = &self.app.metadata_documents;
            if let Some(known) = documents.cached(client_id) {
                return Ok(Some(known?));
            }
            // Each miss is an outbound request someone else chose: limited per caller address.
            if let Some(ip) = self.origin.ip.as_deref().and_then(|ip| ip.parse().ok()) {
                ratelimit::check(&self.app.limiters.metadata_fetch_per_ip, &ip)
                    .map_err(|_| DocumentError::TooManyFetches)?;
            }
            return Ok(Some(documents.fetch_client(client_id).await?));
        }
        let key = (self.tenant.id.clone(), client_id.to_owned());
        if let Some(client) = self.app.clients.get(&key) {
            return Ok(Some(client));
        }
        let Some(client) = client::find(self.scope(), client_id).await? else {
            return Ok(None);
        };
        let client = Arc::new(client);
        self.app.clients.put(key, client.clone());
        Ok(Some(client))
    }

    /// Verifies one of this tenant's access tokens (signature, `typ`, `iss`, `exp`), remembering the
    /// verified signature. `None` for a token that is not valid. Revocation is the caller's check.
    pub async fn verify_access_token(&self, token: &str) -> StoreResult<Option<Arc<AccessClaims>>> {
        let key = (self.tenant.id.clone(), crypto::sha256(token.as_bytes()));
        if let Some(claims) = self.app.verified_tokens.get(&key) {
            let unexpired = claims.exp + jwt::LEEWAY_SECONDS as i64 > store::now();
            return Ok(unexpired.then_some(claims));
        }
        let keyring = self.keyring().await?;
        let Ok(claims) = jwt::verify_access_token(&keyring, &self.issuer, token) else {
            return Ok(None);
        };
        let claims = Arc::new(claims);
        self.app.verified_tokens.put(key, claims.clone());
        Ok(Some(claims))
    }

    /// Queues a message (sealed in the database) and wakes this node's mail worker; nothing is sent
    /// while the request waits. `deliver_until`: not worth sending after (a code's expiry).
    pub async fn send_mail(&self, message: Message, deliver_until: i64) -> StoreResult<()> {
        mail_queue::enqueue(self.scope(), &self.tenant.data_key, &message, deliver_until).await?;
        self.app.mail_doorbell.ring();
        Ok(())
    }

    /// Records an audit event. A failed audit write is logged, not surfaced: the action it describes
    /// already happened.
    pub async fn audit(&self, event: Event<'_>) {
        if let Err(error) = self.app.audit_log.record(&self.origin, event).await {
            tracing::error!(%error, "audit write failed");
        }
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}/{path}", self.issuer)
    }
}
