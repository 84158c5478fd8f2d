//! One request's view of the server: the small request value (tenant, issuer, origin) and the
//! services built at start-up that domain code may use (`Services`). Domain functions take a `&Ctx`;
//! they never see the composition root (`app::App`), so they cannot reach the unscoped database, the
//! master key or the configuration.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;

use crate::{
    audit::{AuditLog, Event, Origin},
    cache::TtlCache,
    client::{self, Client},
    config::{Config, Lifetimes},
    crypto::{self, CodeHasher, MasterKey},
    jwt::{self, AccessClaims},
    keys::{self, Keyring},
    mail_queue::{self, Doorbell, Message},
    metrics::Metrics,
    client::document::{self, DocumentError, MetadataDocuments},
    ratelimit::{self, Limiters},
    sso::{Sso, dns::TxtResolver},
    store::{self, DatabaseConnection, Scoped, StoreError, StoreResult, access_tokens::RevocationReads, token_writes::TokenWrites},
    tenant::{RegistrationPolicy, Tenant},
};

/// Why a `client_id` names no usable client.
#[derive(Debug, thiserror::Error)]
pub enum ClientLookupError {
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What domain code uses beside its tenant's own rows, each built once at start-up. The public fields
/// are narrow services; the private ones (the database, the caches, the audit sink, the mail queue's
/// doorbell) are reached only through `Ctx`'s methods, so that every query a request makes is scoped
/// to its tenant and no request can reach the master key or the configuration.
pub struct Services {
    pub hasher: CodeHasher,
    pub limiters: Limiters,
    /// The WebAuthn relying party: RP ID and origin from the public URL.
    pub webauthn: webauthn_rs::Webauthn,
    pub revocations: RevocationReads,
    pub token_writes: TokenWrites,
    /// Each tenant's discovery document, serialised once per cache period (it depends only on the
    /// issuer and the registration policy, kept beside it so a policy change is seen at once).
    pub discovery_documents: TtlCache<String, (RegistrationPolicy, Vec<String>, Bytes)>,
    /// Each tenant's signed token status list, kept for `oauth::status_list::PUBLISHED_TTL`, and the
    /// lock that lets one request at a time build one.
    pub status_lists: TtlCache<String, Bytes>,
    pub status_list_builds: tokio::sync::Mutex<()>,
    /// TXT lookups for verified domains.
    pub dns: TxtResolver,
    /// Calls to organizations' identity providers.
    pub sso: Sso,
    /// What the node counts for Prometheus (recording is a no-op without a metrics listener).
    pub metrics: Metrics,
    db: DatabaseConnection,
    /// Where contending writes queue (`store::batch_writer`): SQLite's one writer connection.
    writer: DatabaseConnection,
    lifetimes: Lifetimes,
    audit_log: AuditLog,
    /// Wakes this node's mail worker when a request queued a message (`mail_queue`).
    mail_doorbell: Doorbell,
    keyrings: TtlCache<String, Keyring>,
    clients: TtlCache<(String, String), Client>,
    metadata_documents: MetadataDocuments,
    /// Access tokens whose signature this node has checked, by tenant and SHA-256 of the token, so a
    /// resource server introspecting the same token again costs a lookup instead of an ECDSA
    /// verification. Expiry and revocation are still checked on every use.
    verified_tokens: TtlCache<(String, [u8; 32]), AccessClaims>,
}

impl Services {
    /// Builds the services from the storage and configuration `App::start` opened.
    pub fn new(
        db: DatabaseConnection,
        batch_writer: DatabaseConnection,
        master: &MasterKey,
        config: &Config,
        webauthn: webauthn_rs::Webauthn,
        metadata_documents: MetadataDocuments,
        dns: TxtResolver,
        sso: Sso,
        cache_ttl: Duration,
    ) -> Self {
        Self {
            hasher: CodeHasher::new(master),
            limiters: Limiters::new(&config.rate_limits),
            webauthn,
            revocations: RevocationReads::new(db.clone()),
            token_writes: TokenWrites::new(batch_writer.clone()),
            discovery_documents: TtlCache::new(cache_ttl),
            status_lists: TtlCache::new(crate::oauth::status_list::PUBLISHED_TTL),
            status_list_builds: tokio::sync::Mutex::new(()),
            dns,
            sso,
            metrics: Metrics::new(config.metrics_listen.is_some()),
            db,
            lifetimes: config.lifetimes.clone(),
            audit_log: AuditLog::new(batch_writer.clone()),
            writer: batch_writer,
            mail_doorbell: Doorbell::default(),
            keyrings: TtlCache::new(cache_ttl),
            clients: TtlCache::new(cache_ttl),
            metadata_documents,
            verified_tokens: TtlCache::new(VERIFIED_TOKEN_TTL),
        }
    }

    /// The values the metrics read at each scrape: the mail queue's depth and both pools' use.
    pub async fn metrics_snapshot(&self) -> crate::metrics::Snapshot {
        crate::metrics::Snapshot {
            mail_outbox: store::mail_outbox::depth(&self.db).await.ok(),
            pool: store::pool_use(&self.db),
            writer_pool: store::pool_use(&self.writer),
        }
    }

    /// Rings when a request on this node queued mail.
    pub fn mail_doorbell(&self) -> &Doorbell {
        &self.mail_doorbell
    }

    /// A tenant's signing keys, cached for the cache period.
    pub async fn keyring(&self, tenant: &Tenant) -> StoreResult<Arc<Keyring>> {
        if let Some(keyring) = self.keyrings.get(&tenant.id) {
            return Ok(keyring);
        }
        let keyring = Arc::new(keys::load_keyring(tenant.scope(&self.db), &tenant.data_key).await?);
        self.keyrings.put(tenant.id.clone(), keyring.clone());
        Ok(keyring)
    }
}

/// How long a verified signature is remembered; never beyond the token's own `exp`.
const VERIFIED_TOKEN_TTL: Duration = Duration::from_secs(300);

/// One request to one tenant: the small request value (tenant, issuer, origin) and the services it
/// may use. Its storage is the tenant's (`scope`); it cannot reach another tenant's rows.
pub struct Ctx<'a> {
    pub services: &'a Services,
    pub tenant: Arc<Tenant>,
    pub issuer: String,
    pub origin: Origin,
}

impl<'a> Ctx<'a> {
    pub fn scope(&self) -> Scoped<'_> {
        self.tenant.scope(&self.services.db)
    }

    /// The tenant's rows through the connection contending writes queue on: on SQLite the one
    /// writer connection, so a write transaction waits in the pool instead of sleeping in SQLite's
    /// busy handler behind another connection's; on PostgreSQL the pool.
    pub fn writer_scope(&self) -> Scoped<'_> {
        self.tenant.scope(&self.services.writer)
    }

    pub fn lifetimes(&self) -> &Lifetimes {
        &self.services.lifetimes
    }

    /// The tenant's signing keys.
    pub async fn keyring(&self) -> StoreResult<Arc<Keyring>> {
        self.services.keyring(&self.tenant).await
    }

    /// Drops this node's cached copy of a client after it changed here (other nodes re-read it
    /// within the cache lifetime).
    pub fn forget_client(&self, client_id: &str) {
        self.services.clients.invalidate(&(self.tenant.id.clone(), client_id.to_owned()));
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
        if document::is_document_client_id(client_id) {
            if !document::accepted_by(&self.tenant) {
                return Err(DocumentError::NotAccepted.into());
            }
            let documents = &self.services.metadata_documents;
            if let Some(known) = documents.cached(client_id) {
                return Ok(Some(known?));
            }
            // Each miss is an outbound request someone else chose: limited per caller address.
            if let Some(ip) = self.origin.ip.as_deref().and_then(|ip| ip.parse().ok()) {
                ratelimit::check(&self.services.limiters.metadata_fetch_per_ip, &ip)
                    .map_err(|_| DocumentError::TooManyFetches)?;
            }
            return Ok(Some(documents.fetch_client(client_id).await?));
        }
        let key = (self.tenant.id.clone(), client_id.to_owned());
        if let Some(client) = self.services.clients.get(&key) {
            return Ok(Some(client));
        }
        let Some(client) = client::find(self.scope(), client_id).await? else {
            return Ok(None);
        };
        let client = Arc::new(client);
        self.services.clients.put(key, client.clone());
        Ok(Some(client))
    }

    /// Verifies one of this tenant's access tokens (signature, `typ`, `iss`, `exp`), remembering the
    /// verified signature. `None` for a token that is not valid. Revocation is the caller's check.
    pub async fn verify_access_token(&self, token: &str) -> StoreResult<Option<Arc<AccessClaims>>> {
        let key = (self.tenant.id.clone(), crypto::sha256(token.as_bytes()));
        if let Some(claims) = self.services.verified_tokens.get(&key) {
            let unexpired = claims.exp + jwt::LEEWAY_SECONDS as i64 > store::now();
            return Ok(unexpired.then_some(claims));
        }
        let keyring = self.keyring().await?;
        let Ok(claims) = jwt::verify_access_token(&keyring, &self.issuer, token) else {
            return Ok(None);
        };
        let claims = Arc::new(claims);
        self.services.verified_tokens.put(key, claims.clone());
        Ok(Some(claims))
    }

    /// Queues a message (sealed in the database) and wakes this node's mail worker; nothing is sent
    /// while the request waits. `deliver_until`: not worth sending after (a code's expiry).
    pub async fn send_mail(&self, message: Message, deliver_until: i64) -> StoreResult<()> {
        mail_queue::enqueue(self.scope(), &self.tenant.data_key, &message, deliver_until).await?;
        self.services.mail_doorbell.ring();
        Ok(())
    }

    /// Records an audit event. A failed audit write is logged, not surfaced: the action it describes
    /// already happened.
    pub async fn audit(&self, event: Event<'_>) {
        self.services.metrics.audited(event.action, event.outcome);
        if let Err(error) = self.services.audit_log.record(&self.origin, event).await {
            tracing::error!(%error, "audit write failed");
        }
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}/{path}", self.issuer)
    }
}
