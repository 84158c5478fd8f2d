//! Configuration: built-in defaults, then an optional TOML file, then `LATCHKEY_*` environment variables.
//! Every key and its default is documented in docs/configuration.md.

use std::{net::SocketAddr, path::PathBuf, str::FromStr};

use serde::Deserialize;
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid value for {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds to.
    pub listen: SocketAddr,
    /// The externally visible base URL; tenant issuers are `{public_url}/t/{tenant}`.
    pub public_url: Url,
    /// Where the embedded database, the generated master key and the mail outbox live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to a SQLite file inside `data_dir`.
    pub database_url: Option<String>,
    /// Database connection pool size per node; unset, it depends on the engine ([`Config::database_pool_size`]).
    pub database_max_connections: Option<u32>,
    /// Base64 of 32 random bytes. Takes precedence over `master_key_file`.
    pub master_key: Option<String>,
    /// File holding the master key; defaults to `{data_dir}/master.key`, generated on first start.
    pub master_key_file: Option<PathBuf>,
    /// HTTP worker threads; defaults to the number of cores.
    pub workers: Option<usize>,
    /// Prometheus metrics (`GET /metrics`) on this address: a listener of its own, so the public one
    /// never serves them (bind it to loopback or a private network). Unset: no metrics are recorded.
    pub metrics_listen: Option<SocketAddr>,
    /// One log line per answered request (target `latchkey::access`): request id, method, route
    /// template, status, latency. Never the query string, a header's value or a body.
    pub access_log: bool,
    /// Replaced by `trusted_proxy_hops` / `trusted_proxies`; `true` is refused at start-up (it trusted
    /// the leftmost `X-Forwarded-For` address, which the client writes).
    pub trust_forwarded_for: bool,
    /// How many reverse proxies stand in front of this server, each appending to `X-Forwarded-For`:
    /// the client address is that many entries from the right. 0: no proxy, the header is ignored.
    pub trusted_proxy_hops: usize,
    /// Or: the networks (CIDR) of the proxies in front of this server; the client address is the first
    /// entry from the right that is not in them. Not together with `trusted_proxy_hops`.
    pub trusted_proxies: Vec<String>,
    /// Which hops are ours, from the two settings above (`validate`).
    #[serde(skip)]
    pub proxies: Proxies,
    /// A MaxMind GeoLite2 City database: sessions then show an approximate location.
    pub geoip_city_database: Option<PathBuf>,
    pub mail: MailConfig,
    pub lifetimes: Lifetimes,
    pub rate_limits: RateLimits,
    pub client_metadata_documents: MetadataDocumentConfig,
    pub maintenance: MaintenanceConfig,
    pub domains: DomainsConfig,
    pub sso: SsoConfig,
}

/// Talking to organizations' identity providers (`sso`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SsoConfig {
    /// Connect and overall time limit of one request to an IdP (discovery, keys, token endpoint).
    pub timeout_ms: u64,
    /// Largest response read from an IdP, in bytes.
    pub max_bytes: usize,
    /// Seconds a person has to come back from the IdP.
    pub request_seconds: i64,
    /// Seconds discovery documents and keys are used before they are fetched again.
    pub metadata_cache_seconds: u64,
    /// Test-only: let IdP requests reach loopback addresses (never in production: it opens the SSRF defence).
    pub allow_loopback: bool,
    /// A PEM bundle trusted for IdP requests besides the public web roots (tests, private PKI).
    pub extra_root_certificates: Option<PathBuf>,
}

impl Default for SsoConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 10_000,
            max_bytes: 256 * 1024,
            request_seconds: 600,
            metadata_cache_seconds: 300,
            allow_loopback: false,
            extra_root_certificates: None,
        }
    }
}

/// Verified domains (`sso::domains`): where their TXT challenges are looked up, how often verified
/// domains are re-checked, how long a lost record is tolerated.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DomainsConfig {
    /// DNS servers (`ip:port`) to ask; empty: the system's resolver configuration.
    pub nameservers: Vec<SocketAddr>,
    /// Time limit of one DNS query, in milliseconds.
    pub dns_timeout_ms: u64,
    /// Seconds between re-checks of every verified domain (one node checks, whoever takes the lease).
    pub recheck_interval_seconds: u64,
    /// Seconds a verified domain's record may be missing before its verification is withdrawn.
    pub lost_grace_seconds: u64,
}

impl Default for DomainsConfig {
    fn default() -> Self {
        Self { nameservers: Vec::new(), dns_timeout_ms: 3_000, recheck_interval_seconds: 86_400, lost_grace_seconds: 7 * 86_400 }
    }
}

/// Sweeping expired rows (`sweep`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// Seconds between sweeps (one node sweeps each time, whoever takes the lease).
    pub sweep_interval_seconds: u64,
    /// Audit rows older than this many days are deleted; 0 keeps them for ever.
    pub audit_retention_days: u64,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self { sweep_interval_seconds: 300, audit_retention_days: 400 }
    }
}

/// Which hops in front of this server are ours (`http::client_ip`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Proxies {
    /// No proxy: the peer is the client (the header is the client's own words).
    #[default]
    None,
    /// Exactly this many proxies, each appending to `X-Forwarded-For`; the peer is the last of them.
    Hops(usize),
    /// Proxies whose addresses are in these networks (the peer first, then the list from the right).
    Networks(Vec<ipnet::IpNet>),
}

/// Fetching client metadata documents (`client::document`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetadataDocumentConfig {
    /// Seconds a fetched document is used before it is fetched again.
    pub cache_seconds: u64,
    /// Connect and overall time limit for one fetch, in milliseconds.
    pub timeout_ms: u64,
    /// Largest document read, in bytes.
    pub max_bytes: usize,
    /// Test-only: fetch from loopback addresses (never in production: it opens the SSRF defence).
    pub allow_loopback: bool,
    /// A PEM bundle trusted in addition to the public web roots (tests, private PKI).
    pub extra_root_certificates: Option<PathBuf>,
}

impl Default for MetadataDocumentConfig {
    fn default() -> Self {
        Self {
            cache_seconds: 300,
            timeout_ms: 5_000,
            max_bytes: 5 * 1024,
            allow_loopback: false,
            extra_root_certificates: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    pub from: String,
    /// Without an SMTP host, mail goes to the console and to `{data_dir}/outbox`.
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    pub smtp_tls: SmtpTls,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP: only for a relay on the same host or in tests.
    None,
    Starttls,
    Tls,
}

impl FromStr for SmtpTls {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Self::None),
            "starttls" => Ok(Self::Starttls),
            "tls" => Ok(Self::Tls),
            other => Err(format!("expected none, starttls or tls, got {other:?}")),
        }
    }
}

/// The longest a passkey assertion counts as fresh for a sensitive account action.
pub const MAX_STEP_UP: i64 = 5 * 60;

/// Lifetimes in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lifetimes {
    pub access_token: i64,
    pub id_token: i64,
    pub authorization_code: i64,
    pub authorization_request: i64,
    pub email_code: i64,
    pub refresh_idle: i64,
    pub refresh_absolute: i64,
    pub session_idle: i64,
    pub session_absolute: i64,
    /// A dynamically registered client never used for a token within this long is deleted.
    pub unused_registration: i64,
    /// Sensitive account actions need a passkey assertion at most this old (at most 300 s).
    pub step_up: i64,
    /// An authenticator app or a user's recovery codes stay locked this long after five wrong codes.
    pub factor_lockout: i64,
    /// A device authorization request (RFC 8628) can be answered and redeemed this long.
    pub device_code: i64,
    /// How long cached tenants, keys and clients are trusted before a node re-reads them.
    pub cache: i64,
}

/// Per-node rate limits (governor). Counts that must hold across nodes live in the database instead.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    pub code_send_per_email_per_hour: u32,
    pub code_send_per_ip_per_hour: u32,
    pub code_check_per_ip_per_minute: u32,
    pub token_per_client_per_second: u32,
    /// Failed client authentications at the token endpoint, per caller address and per client id
    /// (beyond them: 429, and the real client's own budget is never touched).
    pub token_failures_per_ip_per_minute: u32,
    pub token_failures_per_client_per_minute: u32,
    pub registration_per_ip_per_hour: u32,
    /// Authorization requests stored for a sign-in (a pending request row) per caller address.
    pub authorization_requests_per_ip_per_minute: u32,
    /// Discoverable passkey sign-ins started (a ceremony row) per caller address.
    pub passkey_ceremonies_per_ip_per_minute: u32,
    /// Client metadata documents fetched on behalf of one caller address (cache misses only).
    pub client_metadata_fetch_per_ip_per_minute: u32,
    /// SSO sign-ins started (a request row and a trip to the IdP) and answers from an IdP (a code
    /// exchange) per caller address.
    pub sso_per_ip_per_minute: u32,
    /// SCIM requests per directory token (an IdP's provisioning run is bursty: twice this as burst).
    pub scim_per_token_per_second: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            // `localhost`, not 127.0.0.1: WebAuthn needs a domain as RP ID, and browsers treat
            // localhost as a secure context.
            public_url: Url::parse("http://localhost:8080").expect("static URL"),
            data_dir: PathBuf::from("latchkey-data"),
            database_url: None,
            database_max_connections: None,
            master_key: None,
            master_key_file: None,
            workers: None,
            metrics_listen: None,
            access_log: false,
            trust_forwarded_for: false,
            trusted_proxy_hops: 0,
            trusted_proxies: Vec::new(),
            proxies: Proxies::None,
            geoip_city_database: None,
            mail: MailConfig::default(),
            lifetimes: Lifetimes::default(),
            rate_limits: RateLimits::default(),
            client_metadata_documents: MetadataDocumentConfig::default(),
            maintenance: MaintenanceConfig::default(),
            domains: DomainsConfig::default(),
            sso: SsoConfig::default(),
        }
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            from: "Latchkey <no-reply@localhost>".into(),
            smtp_host: None,
            smtp_port: None,
            smtp_tls: SmtpTls::Starttls,
            smtp_username: None,
            smtp_password: None,
        }
    }
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            access_token: 15 * 60,
            id_token: 60 * 60,
            authorization_code: 60,
            authorization_request: 30 * 60,
            email_code: 5 * 60,
            refresh_idle: 14 * 24 * 3600,
            refresh_absolute: 90 * 24 * 3600,
            session_idle: 24 * 3600,
            session_absolute: 14 * 24 * 3600,
            unused_registration: 24 * 3600,
            step_up: MAX_STEP_UP,
            factor_lockout: 15 * 60,
            device_code: 600,
            cache: 30,
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            code_send_per_email_per_hour: 10,
            code_send_per_ip_per_hour: 60,
            code_check_per_ip_per_minute: 30,
            token_per_client_per_second: 200,
            token_failures_per_ip_per_minute: 30,
            token_failures_per_client_per_minute: 30,
            registration_per_ip_per_hour: 600,
            authorization_requests_per_ip_per_minute: 60,
            passkey_ceremonies_per_ip_per_minute: 30,
            client_metadata_fetch_per_ip_per_minute: 30,
            sso_per_ip_per_minute: 30,
            scim_per_token_per_second: 100,
        }
    }
}

impl Config {
    /// Defaults, overlaid by the TOML file (if any), overlaid by the environment.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let file = file
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("LATCHKEY_CONFIG").map(PathBuf::from));
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse { path, source })?
            }
            None => Config::default(),
        };
        config.apply_env(|key| std::env::var(key).ok())?;
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: FromStr>(key: &'static str, value: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e: T::Err| ConfigError::Invalid {
                key,
                reason: e.to_string(),
            })
        }
        macro_rules! env {
            ($key:literal => $field:expr) => {
                if let Some(v) = get($key) {
                    $field = parse($key, v)?;
                }
            };
            ($key:literal => some $field:expr) => {
                if let Some(v) = get($key) {
                    $field = Some(parse($key, v)?);
                }
            };
        }
        env!("LATCHKEY_LISTEN" => self.listen);
        env!("LATCHKEY_PUBLIC_URL" => self.public_url);
        env!("LATCHKEY_DATA_DIR" => self.data_dir);
        env!("DATABASE_URL" => some self.database_url);
        env!("LATCHKEY_DATABASE_URL" => some self.database_url);
        env!("LATCHKEY_DATABASE_MAX_CONNECTIONS" => some self.database_max_connections);
        env!("LATCHKEY_MASTER_KEY" => some self.master_key);
        env!("LATCHKEY_MASTER_KEY_FILE" => some self.master_key_file);
        env!("LATCHKEY_WORKERS" => some self.workers);
        env!("LATCHKEY_METRICS_LISTEN" => some self.metrics_listen);
        env!("LATCHKEY_ACCESS_LOG" => self.access_log);
        env!("LATCHKEY_TRUST_FORWARDED_FOR" => self.trust_forwarded_for);
        env!("LATCHKEY_TRUSTED_PROXY_HOPS" => self.trusted_proxy_hops);
        if let Some(list) = get("LATCHKEY_TRUSTED_PROXIES") {
            self.trusted_proxies = list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        }
        env!("LATCHKEY_GEOIP_CITY_DATABASE" => some self.geoip_city_database);
        env!("LATCHKEY_MAIL_FROM" => self.mail.from);
        env!("LATCHKEY_SMTP_HOST" => some self.mail.smtp_host);
        env!("LATCHKEY_SMTP_PORT" => some self.mail.smtp_port);
        env!("LATCHKEY_SMTP_TLS" => self.mail.smtp_tls);
        env!("LATCHKEY_SMTP_USERNAME" => some self.mail.smtp_username);
        env!("LATCHKEY_SMTP_PASSWORD" => some self.mail.smtp_password);
        env!("LATCHKEY_ACCESS_TOKEN_TTL" => self.lifetimes.access_token);
        env!("LATCHKEY_ID_TOKEN_TTL" => self.lifetimes.id_token);
        env!("LATCHKEY_AUTHORIZATION_CODE_TTL" => self.lifetimes.authorization_code);
        env!("LATCHKEY_AUTHORIZATION_REQUEST_TTL" => self.lifetimes.authorization_request);
        env!("LATCHKEY_EMAIL_CODE_TTL" => self.lifetimes.email_code);
        env!("LATCHKEY_REFRESH_IDLE_TTL" => self.lifetimes.refresh_idle);
        env!("LATCHKEY_REFRESH_ABSOLUTE_TTL" => self.lifetimes.refresh_absolute);
        env!("LATCHKEY_SESSION_IDLE_TTL" => self.lifetimes.session_idle);
        env!("LATCHKEY_SESSION_ABSOLUTE_TTL" => self.lifetimes.session_absolute);
        env!("LATCHKEY_STEP_UP_TTL" => self.lifetimes.step_up);
        env!("LATCHKEY_DEVICE_CODE_TTL" => self.lifetimes.device_code);
        env!("LATCHKEY_FACTOR_LOCKOUT_TTL" => self.lifetimes.factor_lockout);
        env!("LATCHKEY_UNUSED_REGISTRATION_TTL" => self.lifetimes.unused_registration);
        env!("LATCHKEY_CACHE_TTL" => self.lifetimes.cache);
        env!("LATCHKEY_RATE_CODE_SEND_PER_EMAIL_PER_HOUR" => self.rate_limits.code_send_per_email_per_hour);
        env!("LATCHKEY_RATE_CODE_SEND_PER_IP_PER_HOUR" => self.rate_limits.code_send_per_ip_per_hour);
        env!("LATCHKEY_RATE_CODE_CHECK_PER_IP_PER_MINUTE" => self.rate_limits.code_check_per_ip_per_minute);
        env!("LATCHKEY_RATE_TOKEN_PER_CLIENT_PER_SECOND" => self.rate_limits.token_per_client_per_second);
        env!("LATCHKEY_RATE_TOKEN_FAILURES_PER_IP_PER_MINUTE" => self.rate_limits.token_failures_per_ip_per_minute);
        env!("LATCHKEY_RATE_TOKEN_FAILURES_PER_CLIENT_PER_MINUTE" => self.rate_limits.token_failures_per_client_per_minute);
        env!("LATCHKEY_RATE_REGISTRATION_PER_IP_PER_HOUR" => self.rate_limits.registration_per_ip_per_hour);
        env!("LATCHKEY_RATE_AUTHORIZATION_REQUESTS_PER_IP_PER_MINUTE" => self.rate_limits.authorization_requests_per_ip_per_minute);
        env!("LATCHKEY_RATE_PASSKEY_CEREMONIES_PER_IP_PER_MINUTE" => self.rate_limits.passkey_ceremonies_per_ip_per_minute);
        env!("LATCHKEY_RATE_CLIENT_METADATA_FETCH_PER_IP_PER_MINUTE" => self.rate_limits.client_metadata_fetch_per_ip_per_minute);
        env!("LATCHKEY_RATE_SSO_PER_IP_PER_MINUTE" => self.rate_limits.sso_per_ip_per_minute);
        env!("LATCHKEY_RATE_SCIM_PER_TOKEN_PER_SECOND" => self.rate_limits.scim_per_token_per_second);
        env!("LATCHKEY_SSO_ALLOW_LOOPBACK" => self.sso.allow_loopback);
        env!("LATCHKEY_SSO_EXTRA_ROOTS" => some self.sso.extra_root_certificates);
        env!("LATCHKEY_SSO_TIMEOUT_MS" => self.sso.timeout_ms);
        env!("LATCHKEY_SSO_REQUEST_TTL" => self.sso.request_seconds);
        env!("LATCHKEY_SWEEP_INTERVAL" => self.maintenance.sweep_interval_seconds);
        env!("LATCHKEY_AUDIT_RETENTION_DAYS" => self.maintenance.audit_retention_days);
        if let Some(list) = get("LATCHKEY_DNS_NAMESERVERS") {
            let servers = list.split(',').map(str::trim).filter(|s| !s.is_empty());
            self.domains.nameservers = servers.map(|s| parse("LATCHKEY_DNS_NAMESERVERS", s.to_owned())).collect::<Result<_, _>>()?;
        }
        env!("LATCHKEY_DNS_TIMEOUT_MS" => self.domains.dns_timeout_ms);
        env!("LATCHKEY_DOMAIN_RECHECK_INTERVAL" => self.domains.recheck_interval_seconds);
        env!("LATCHKEY_DOMAIN_LOST_GRACE" => self.domains.lost_grace_seconds);
        let documents = &mut self.client_metadata_documents;
        env!("LATCHKEY_CLIENT_METADATA_CACHE_TTL" => documents.cache_seconds);
        env!("LATCHKEY_CLIENT_METADATA_TIMEOUT_MS" => documents.timeout_ms);
        env!("LATCHKEY_CLIENT_METADATA_MAX_BYTES" => documents.max_bytes);
        env!("LATCHKEY_CLIENT_METADATA_ALLOW_LOOPBACK" => documents.allow_loopback);
        env!("LATCHKEY_CLIENT_METADATA_EXTRA_ROOTS" => some documents.extra_root_certificates);
        Ok(())
    }

    fn validate(&mut self) -> Result<(), ConfigError> {
        if !matches!(self.public_url.scheme(), "http" | "https") || self.public_url.host().is_none()
        {
            return Err(ConfigError::Invalid {
                key: "public_url",
                reason: "must be an http(s) URL".into(),
            });
        }
        // Issuers are built by appending paths; a trailing slash would double up.
        let trimmed = self.public_url.as_str().trim_end_matches('/').to_string();
        self.public_url = Url::parse(&trimmed).map_err(|e| ConfigError::Invalid {
            key: "public_url",
            reason: e.to_string(),
        })?;
        self.proxies = self.proxies_from_settings()?;
        let l = &self.lifetimes;
        for (key, value) in [
            ("lifetimes.access_token", l.access_token),
            ("lifetimes.id_token", l.id_token),
            ("lifetimes.authorization_code", l.authorization_code),
            ("lifetimes.authorization_request", l.authorization_request),
            ("lifetimes.email_code", l.email_code),
            ("lifetimes.refresh_idle", l.refresh_idle),
            ("lifetimes.refresh_absolute", l.refresh_absolute),
            ("lifetimes.session_idle", l.session_idle),
            ("lifetimes.session_absolute", l.session_absolute),
            ("lifetimes.step_up", l.step_up),
            ("lifetimes.factor_lockout", l.factor_lockout),
            ("lifetimes.device_code", l.device_code),
            ("lifetimes.unused_registration", l.unused_registration),
        ] {
            if value <= 0 {
                return Err(ConfigError::Invalid {
                    key: "lifetimes",
                    reason: format!("{key} must be positive"),
                });
            }
        }
        if l.step_up > MAX_STEP_UP {
            return Err(ConfigError::Invalid {
                key: "lifetimes",
                reason: format!("lifetimes.step_up is at most {MAX_STEP_UP} seconds"),
            });
        }
        if self.database_max_connections == Some(0) {
            return Err(ConfigError::Invalid {
                key: "database_max_connections",
                reason: "must be positive".into(),
            });
        }
        if self.domains.recheck_interval_seconds == 0 || self.domains.dns_timeout_ms == 0 {
            return Err(ConfigError::Invalid { key: "domains", reason: "recheck_interval_seconds and dns_timeout_ms must be positive".into() });
        }
        if self.maintenance.sweep_interval_seconds == 0 {
            return Err(ConfigError::Invalid { key: "maintenance", reason: "sweep_interval_seconds must be positive".into() });
        }
        let documents = &self.client_metadata_documents;
        if documents.timeout_ms == 0 || documents.max_bytes == 0 {
            return Err(ConfigError::Invalid {
                key: "client_metadata_documents",
                reason: "timeout_ms and max_bytes must be positive".into(),
            });
        }
        let r = &self.rate_limits;
        if [
            r.code_send_per_email_per_hour,
            r.code_send_per_ip_per_hour,
            r.code_check_per_ip_per_minute,
            r.token_per_client_per_second,
            r.token_failures_per_ip_per_minute,
            r.token_failures_per_client_per_minute,
            r.registration_per_ip_per_hour,
            r.authorization_requests_per_ip_per_minute,
            r.passkey_ceremonies_per_ip_per_minute,
            r.client_metadata_fetch_per_ip_per_minute,
            r.sso_per_ip_per_minute,
            r.scim_per_token_per_second,
        ]
        .contains(&0)
        {
            return Err(ConfigError::Invalid {
                key: "rate_limits",
                reason: "limits must be positive".into(),
            });
        }
        Ok(())
    }

    fn proxies_from_settings(&self) -> Result<Proxies, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid { key: "trusted_proxies", reason };
        if self.trust_forwarded_for {
            return Err(ConfigError::Invalid {
                key: "trust_forwarded_for",
                reason: "it trusted the leftmost X-Forwarded-For address, which clients write; set trusted_proxy_hops (how many proxies stand in front) or trusted_proxies (their networks) instead".into(),
            });
        }
        match (self.trusted_proxy_hops, self.trusted_proxies.is_empty()) {
            (0, true) => Ok(Proxies::None),
            (hops, true) => Ok(Proxies::Hops(hops)),
            (0, false) => self
                .trusted_proxies
                .iter()
                .map(|net| {
                    net.parse::<ipnet::IpNet>()
                        .or_else(|_| net.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| invalid(format!("{net:?} is not an address or a CIDR network")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Proxies::Networks),
            _ => Err(invalid("set trusted_proxy_hops or trusted_proxies, not both".into())),
        }
    }

    /// The public URL as a string without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.public_url.as_str().trim_end_matches('/')
    }

    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("latchkey.db").display()
            )
        })
    }

    /// The configured pool size, or the engine's default: 16 on PostgreSQL; on SQLite one connection per
    /// core. SQLite runs each connection on its own thread, and in WAL mode every commit empties the page
    /// cache of every other connection, so connections beyond the cores that can use them cost CPU
    /// (docs/benchmarks.md: a refresh rotation took 652 µs of CPU with 8 connections on one core, 493 µs
    /// with 1).
    pub fn database_pool_size(&self) -> u32 {
        self.database_max_connections.unwrap_or_else(|| {
            if self.database_url().starts_with("postgres") {
                16
            } else {
                std::thread::available_parallelism().map_or(1, |cores| cores.get() as u32)
            }
        })
    }

    /// Signing keys stay published this long after retirement, so every token they signed has expired.
    pub fn key_publish_grace(&self) -> i64 {
        self.lifetimes.access_token.max(self.lifetimes.id_token) + 300
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_size_defaults_by_engine_and_rejects_zero() {
        let mut config = Config::default();
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get() as u32);
        assert_eq!(config.database_pool_size(), cores, "SQLite: one connection per core");
        config.database_url = Some("postgres://latchkey@db/latchkey".into());
        assert_eq!(config.database_pool_size(), 16);
        config.database_max_connections = Some(3);
        assert_eq!(config.database_pool_size(), 3, "an explicit size wins on either engine");
        config.database_max_connections = Some(0);
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Invalid { key: "database_max_connections", .. })
        ));
    }
}
