//! The permission API: a separate binary (`latchkey-permissions`) that trusts only Latchkey's access
//! tokens, verified offline against the issuers' JWKS, and decides whether a caller may run a tool.
//! It shares no database with the identity server: its rules come from its own configuration file,
//! its decisions go to its own SQLite audit table, and each decision comes with a receipt signed by its
//! own key (published at `/.well-known/jwks.json`).

pub mod approvals;
pub mod audit;
pub mod http;
pub mod mcp;
pub mod receipt;
pub mod rules;
pub mod session;
pub mod verifier;

use std::{net::SocketAddr, path::PathBuf};

use latchkey_kit::cors;
use latchkey_proto::{AccessClaims, crypto, now};
use serde::{Deserialize, Serialize};

use audit::{AuditLog, DecisionRow};
use receipt::ReceiptKey;
use approvals::{Approvals, Call, State};
use rules::{Outcome, Reauthorize, Rule};
use verifier::Verifier;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionConfig {
    pub listen: SocketAddr,
    /// This API's resource URL exactly as clients use it: the `aud` tokens must carry, and the
    /// `resource` of its protected resource metadata (RFC 9728).
    pub resource: String,
    /// Latchkey issuers (`{public_url}/t/{tenant}`) whose tokens are accepted.
    pub issuers: Vec<String>,
    /// Audit database and the sealed receipt key live here.
    pub data_dir: PathBuf,
    /// Master key (32 bytes, base64) sealing the receipt key; `LATCHKEY_PERMISSIONS_MASTER_KEY`
    /// overrides it. Without either, `master_key_file` (default `{data_dir}/master.key`) is read, or
    /// generated on first start (development only).
    #[serde(default)]
    pub master_key: Option<String>,
    #[serde(default)]
    pub master_key_file: Option<PathBuf>,
    /// Clock skew allowed on `exp` / `nbf`, seconds.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// The shortest time between two fetches of one issuer's JWKS (an unknown `kid` triggers one).
    #[serde(default = "default_refetch")]
    pub jwks_refetch_seconds: u64,
    /// How often an issuer's token status list is fetched again: a token whose entry Latchkey has set
    /// (a revoked grant) is refused within this many seconds, with no call to Latchkey per token.
    #[serde(default = "default_status_refresh")]
    pub status_list_refresh_seconds: u64,
    /// Scopes advertised in the metadata and in 401 challenges.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// Browser origins (`scheme://host[:port]`) whose pages may call the MCP endpoint (MCP Inspector,
    /// web IDEs), besides the resource's own origin. A request carrying any other `Origin` is refused
    /// with 403 (the MCP streamable HTTP transport's DNS-rebinding defence).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// How the permission API asks a person to approve a call (a CIBA client per issuer); without
    /// it, a call that needs approval is denied.
    #[serde(default)]
    pub approvals: Option<approvals::ApprovalConfig>,
}

fn default_leeway() -> u64 {
    30
}

fn default_refetch() -> u64 {
    30
}

fn default_status_refresh() -> u64 {
    30
}

#[derive(Debug, thiserror::Error)]
pub enum PermissionError {
    #[error("configuration {0}: {1}")]
    Config(PathBuf, String),
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("resource URL: {0}")]
    Resource(String),
    #[error("receipt key: {0}")]
    Key(String),
    #[error("audit database {}: {source}", path.display())]
    Db { path: PathBuf, source: sqlx::Error },
    #[error("audit row: {0}")]
    Audit(#[from] latchkey_kit::batch::BatchError),
}

impl PermissionConfig {
    pub fn load(path: &std::path::Path) -> Result<Self, PermissionError> {
        let text = std::fs::read_to_string(path).map_err(|e| PermissionError::Config(path.into(), e.to_string()))?;
        let mut config: Self = toml::from_str(&text).map_err(|e| PermissionError::Config(path.into(), e.to_string()))?;
        if let Ok(key) = std::env::var("LATCHKEY_PERMISSIONS_MASTER_KEY") {
            config.master_key = Some(key);
        }
        if url::Url::parse(&config.resource).is_err() || config.issuers.is_empty() {
            return Err(PermissionError::Config(path.into(), "resource must be a URL and issuers must not be empty".into()));
        }
        rules::check(&config.rules).map_err(|why| PermissionError::Config(path.into(), why))?;
        if let Some(approvals) = &config.approvals
            && let Some(stray) = approvals.clients.iter().find(|c| !config.issuers.contains(&c.issuer))
        {
            return Err(PermissionError::Config(path.into(), format!("approvals: {} is not one of the issuers", stray.issuer)));
        }
        if let Some(bad) = config.allowed_origins.iter().find(|o| !cors::valid_origin(o)) {
            return Err(PermissionError::Config(path.into(), format!("allowed_origins: {bad:?} is not an origin (scheme://host[:port])")));
        }
        Ok(config)
    }
}

/// Where things are served, derived once from the resource URL.
pub struct Endpoints {
    /// The MCP endpoint: the resource URL's path.
    pub mcp_path: String,
    /// RFC 9728 §3.1: `/.well-known/oauth-protected-resource` + the resource's path.
    pub metadata_path: String,
    /// The same, absolute: `resource_metadata` in every challenge.
    pub metadata_url: String,
    pub jwks_uri: String,
}

impl Endpoints {
    fn of(resource: &url::Url) -> Self {
        let origin = resource.origin().ascii_serialization();
        let metadata_path = format!("/.well-known/oauth-protected-resource{}", resource.path().trim_end_matches('/'));
        Self {
            mcp_path: match resource.path().trim_end_matches('/') {
                "" => "/".to_owned(),
                path => path.to_owned(),
            },
            metadata_url: format!("{origin}{metadata_path}"),
            metadata_path,
            jwks_uri: format!("{origin}/.well-known/jwks.json"),
        }
    }
}

/// What the handlers share.
pub struct PermissionApi {
    pub config: PermissionConfig,
    pub endpoints: Endpoints,
    pub verifier: Verifier,
    pub receipt_key: ReceiptKey,
    audit: AuditLog,
    approvals: Approvals,
    /// Signs and reads the MCP session ids that carry what a client declared (`session`).
    pub sessions: session::SessionKey,
    pub mcp: mcp::McpService,
}

/// A signed statement of one decision (`receipt::ReceiptKey`: compact JWS, EdDSA, `typ` decision+jwt).
#[derive(Serialize)]
struct Receipt<'a> {
    iss: &'a str,
    iat: i64,
    jti: String,
    sub: &'a str,
    client_id: &'a str,
    token_iss: &'a str,
    token_jti: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    org: Option<&'a str>,
    tool: &'a str,
    action: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments_digest: Option<&'a str>,
    decision: &'static str,
    /// The Latchkey approval this decision waits for, or spent.
    #[serde(skip_serializing_if = "Option::is_none")]
    approval: Option<&'a str>,
}

/// One call to decide.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub tool: &'a str,
    pub action: &'a str,
    pub arguments_digest: Option<&'a str>,
    /// Whether the caller's client acts on an RFC 9470 challenge.
    pub reauthorize: Reauthorize,
    /// What the person is shown, when approval is needed (made only then).
    pub summary: Summary<'a>,
}

/// The sentence an approval shows the person.
#[derive(Clone, Copy)]
pub enum Summary<'a> {
    /// The caller's own (already made printable).
    Given(&'a str),
    /// Made from the call's arguments: "Call {tool} with {arguments}", printable, 300 characters.
    Arguments(&'a serde_json::Value),
    /// "Run {tool} ({action})".
    Default,
}

impl Summary<'_> {
    pub fn text(self, tool: &str, action: &str) -> String {
        match self {
            Summary::Given(text) => text.to_owned(),
            Summary::Arguments(arguments) => approvals::plain(&format!("Call {tool} with {arguments}"), 300),
            Summary::Default => format!("Run {tool} ({action})"),
        }
    }
}

/// A decision with its receipt.
pub struct Decided {
    pub outcome: Outcome,
    pub receipt: String,
}

impl PermissionApi {
    /// Whether a page at `origin` may call the MCP endpoint: the resource's own origin, or one the
    /// configuration lists.
    pub fn allows_origin(&self, origin: &str) -> bool {
        cors::web_origin(&self.config.resource).as_deref() == Some(origin)
            || self.config.allowed_origins.iter().any(|o| o == origin)
    }

    pub async fn start(config: PermissionConfig) -> Result<Self, PermissionError> {
        latchkey_proto::fsutil::create_private_dir(&config.data_dir)?;
        let (receipt_key, sessions) = load_keys(&config)?;
        let db_path = config.data_dir.join("permissions.db");
        let audit = AuditLog::open(&db_path).await.map_err(|source| PermissionError::Db { path: db_path.clone(), source })?;
        let verifier = Verifier::new(
            &config.issuers,
            &config.resource,
            config.leeway_seconds,
            std::time::Duration::from_secs(config.jwks_refetch_seconds),
            std::time::Duration::from_secs(config.status_list_refresh_seconds.max(1)),
        );
        let resource = url::Url::parse(&config.resource).map_err(|e| PermissionError::Resource(e.to_string()))?;
        let mut origins = config.allowed_origins.clone();
        origins.extend(cors::web_origin(&config.resource));
        let mcp = mcp::service(&resource, origins);
        let endpoints = Endpoints::of(&resource);
        let approvals = Approvals::new(config.approvals.clone(), &config.resource).map_err(PermissionError::Resource)?;
        Ok(Self { config, endpoints, verifier, receipt_key, audit, approvals, sessions, mcp })
    }

    /// Decides a tool call for a verified token, signs the receipt and writes the audit row. A call
    /// that needs a person's yes is asked of Latchkey (`approvals`): pending, approved (this use
    /// spends it) or denied.
    pub async fn decide(&self, claims: &AccessClaims, request: &Request<'_>) -> Result<Decided, PermissionError> {
        let Request { tool, action, arguments_digest, reauthorize, .. } = *request;
        let now = now();
        let mut outcome = rules::decide(&self.config.rules, claims, tool, action, now, reauthorize);
        if let Outcome::NeedsApproval { rule } = outcome {
            outcome = self.approval(claims, request, rule).await;
        }
        let approval = match &outcome {
            Outcome::Approved { approval_id, .. } | Outcome::PendingApproval { approval_id, .. } => Some(approval_id.as_str()),
            _ => None,
        };
        let receipt_id = crypto::random_id();
        let receipt = Receipt {
            iss: &self.config.resource,
            iat: now,
            jti: receipt_id.clone(),
            sub: &claims.sub,
            client_id: &claims.client_id,
            token_iss: &claims.iss,
            token_jti: &claims.jti,
            org: claims.org.as_deref(),
            tool,
            action,
            arguments_digest,
            decision: outcome.label(),
            approval,
        };
        let signed = self.receipt_key.sign(&receipt).map_err(|e| PermissionError::Key(e.to_string()))?;
        let rule = outcome.rule().map(|r| r as i64);
        self.audit
            .record(DecisionRow {
                at: now,
                issuer: claims.iss.clone(),
                subject: claims.sub.clone(),
                client_id: claims.client_id.clone(),
                agent: claims.is_agent(),
                organization: claims.org.clone(),
                tool: tool.to_owned(),
                action: action.to_owned(),
                arguments_digest: arguments_digest.map(str::to_owned),
                decision: outcome.label(),
                rule,
                receipt_id,
                approval_id: approval.map(str::to_owned),
            })
            .await?;
        Ok(Decided { outcome, receipt: signed })
    }

    /// What a call that needs the person's yes gets: pending, approved (and spent), or denied.
    async fn approval(&self, claims: &AccessClaims, request: &Request<'_>, rule: usize) -> Outcome {
        let Request { tool, action, arguments_digest, summary, .. } = *request;
        // An approval names the arguments; a call that does not cannot be approved.
        let Some(digest) = arguments_digest else {
            return Outcome::Deny { rule: Some(rule), reason: "this call needs a person's approval, which needs its arguments_digest" };
        };
        let summary = summary.text(tool, action);
        let call = Call { tool, action, arguments_digest: digest, summary: &summary };
        match self.approvals.ask(&self.verifier, claims, &call).await {
            State::Approved { approval_id } => Outcome::Approved { rule, approval_id },
            State::Pending { approval_id, approval_uri, binding_message, expires_in } => {
                Outcome::PendingApproval { rule, approval_id, approval_uri, binding_message, expires_in }
            }
            State::Denied { .. } => Outcome::Deny { rule: Some(rule), reason: "the person denied this call" },
            State::Unavailable(why) => {
                tracing::warn!(%why, "approval not available");
                Outcome::Deny { rule: Some(rule), reason: "this call needs a person's approval, and none could be asked for" }
            }
        }
    }
}

/// Opens the receipt key under the configured master key (generated in development), and derives the
/// MCP session key from it (replicas with one master key read each other's session ids).
fn load_keys(config: &PermissionConfig) -> Result<(ReceiptKey, session::SessionKey), PermissionError> {
    let master_path = config.master_key_file.clone().unwrap_or_else(|| config.data_dir.join("master.key"));
    let master = crypto::MasterKey::load_or_generate(
        config.master_key.as_deref(),
        &master_path,
        "LATCHKEY_PERMISSIONS_MASTER_KEY, master_key or master_key_file",
    )
    .map_err(PermissionError::Key)?;
    let receipt = ReceiptKey::load_or_generate(&config.data_dir, &master).map_err(PermissionError::Key)?;
    Ok((receipt, session::SessionKey::derive(&master)))
}
