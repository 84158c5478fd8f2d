//! The permission API: a separate binary (`latchkey-permissions`) that trusts only Latchkey's access
//! tokens, verified offline against the issuers' JWKS, and decides whether a caller may run a tool.
//! It shares no database with the identity server: its rules come from its own configuration file,
//! its decisions go to its own SQLite audit table, and each decision comes with a receipt signed by its
//! own key (published at `/.well-known/jwks.json`).

pub mod http;
pub mod mcp;
pub mod rules;
pub mod verifier;

use std::{net::SocketAddr, path::PathBuf};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde::{Deserialize, Serialize};

use crate::{
    crypto,
    group_commit::GroupCommit,
    jwt,
    keys::{self, SigningKey},
    store::now,
};
use rules::{Outcome, Rule};
use verifier::{TokenClaims, Verifier};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionConfig {
    pub listen: SocketAddr,
    /// This API's resource URL exactly as clients use it: the `aud` tokens must carry, and the
    /// `resource` of its protected resource metadata (RFC 9728).
    pub resource: String,
    /// Latchkey issuers (`{public_url}/t/{tenant}`) whose tokens are accepted.
    pub issuers: Vec<String>,
    /// Audit database and receipt key live here.
    pub data_dir: PathBuf,
    /// Clock skew allowed on `exp` / `nbf`, seconds.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// The shortest time between two fetches of one issuer's JWKS (an unknown `kid` triggers one).
    #[serde(default = "default_refetch")]
    pub jwks_refetch_seconds: u64,
    /// Scopes advertised in the metadata and in 401 challenges.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

fn default_leeway() -> u64 {
    30
}

fn default_refetch() -> u64 {
    30
}

#[derive(Debug, thiserror::Error)]
pub enum PermissionError {
    #[error("configuration {0}: {1}")]
    Config(PathBuf, String),
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("receipt key: {0}")]
    Key(String),
    #[error("audit database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("audit row: {0}")]
    Audit(#[from] crate::group_commit::GroupCommitError),
}

impl PermissionConfig {
    pub fn load(path: &std::path::Path) -> Result<Self, PermissionError> {
        let text = std::fs::read_to_string(path).map_err(|e| PermissionError::Config(path.into(), e.to_string()))?;
        let config: Self = toml::from_str(&text).map_err(|e| PermissionError::Config(path.into(), e.to_string()))?;
        if url::Url::parse(&config.resource).is_err() || config.issuers.is_empty() {
            return Err(PermissionError::Config(path.into(), "resource must be a URL and issuers must not be empty".into()));
        }
        Ok(config)
    }
}

/// What the handlers share.
pub struct PermissionApi {
    pub config: PermissionConfig,
    pub verifier: Verifier,
    receipt_key: SigningKey,
    pub receipt_jwks: String,
    audit: GroupCommit<DecisionRow>,
    pub mcp: mcp::McpService,
}

/// A signed statement of one decision (RFC 7515 compact JWS, `typ` = `decision+jwt`).
#[derive(Serialize)]
struct Receipt<'a> {
    iss: &'a str,
    iat: i64,
    jti: String,
    sub: &'a str,
    client_id: &'a str,
    token_iss: &'a str,
    token_jti: &'a str,
    tool: &'a str,
    action: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments_digest: Option<&'a str>,
    decision: &'static str,
}

/// A decision with its receipt.
pub struct Decided {
    pub outcome: Outcome,
    pub receipt: String,
}

impl PermissionApi {
    pub async fn start(config: PermissionConfig) -> Result<Self, PermissionError> {
        crate::fsutil::create_private_dir(&config.data_dir)?;
        let key_path = config.data_dir.join("receipt-key.der");
        let existing = std::fs::read(&key_path).ok();
        let generated = existing.is_none();
        let (receipt_key, jwk, der) = keys::standalone_es256(existing).map_err(|e| PermissionError::Key(e.to_string()))?;
        if generated {
            crate::fsutil::write_new_secret_file(&key_path, &der)?;
        }
        let receipt_jwks = serde_json::json!({ "keys": [jwk] }).to_string();
        let db_path = config.data_dir.join("permissions.db");
        let audit = crate::store::connect(&format!("sqlite://{}?mode=rwc", db_path.display()), 4)
            .await
            .map_err(|e| PermissionError::Config(db_path.clone(), e.to_string()))?;
        audit
            .execute_unprepared(
                "CREATE TABLE IF NOT EXISTS decisions (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    at INTEGER NOT NULL,
                    issuer TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    client_id TEXT NOT NULL,
                    agent INTEGER NOT NULL,
                    tool TEXT NOT NULL,
                    action TEXT NOT NULL,
                    arguments_digest TEXT,
                    decision TEXT NOT NULL,
                    rule INTEGER,
                    receipt_id TEXT NOT NULL
                )",
            )
            .await?;
        let verifier = Verifier::new(
            &config.issuers,
            &config.resource,
            config.leeway_seconds,
            std::time::Duration::from_secs(config.jwks_refetch_seconds),
        );
        let resource = url::Url::parse(&config.resource).map_err(|e| PermissionError::Config("resource".into(), e.to_string()))?;
        let mcp = mcp::service(&resource);
        let audit = decision_writer(audit);
        Ok(Self { config, verifier, receipt_key, receipt_jwks, audit, mcp })
    }

    /// Decides a tool call for a verified token, signs the receipt and writes the audit row.
    pub async fn decide(
        &self,
        claims: &TokenClaims,
        tool: &str,
        action: &str,
        arguments_digest: Option<&str>,
    ) -> Result<Decided, PermissionError> {
        let now = now();
        let outcome = rules::decide(&self.config.rules, claims, tool, action, now);
        let receipt_id = crypto::random_id();
        let receipt = Receipt {
            iss: &self.config.resource,
            iat: now,
            jti: receipt_id.clone(),
            sub: &claims.sub,
            client_id: &claims.client_id,
            token_iss: &claims.iss,
            token_jti: &claims.jti,
            tool,
            action,
            arguments_digest,
            decision: outcome.label(),
        };
        let signed = jwt::sign_with(&self.receipt_key, "decision+jwt", &receipt).map_err(|e| PermissionError::Key(e.to_string()))?;
        let rule = match &outcome {
            Outcome::Allow { rule } | Outcome::InsufficientScope { rule, .. } | Outcome::StepUp { rule, .. } => Some(*rule as i64),
            Outcome::Deny { rule, .. } => rule.map(|r| r as i64),
        };
        self.audit
            .store(DecisionRow {
                at: now,
                issuer: claims.iss.clone(),
                subject: claims.sub.clone(),
                client_id: claims.client_id.clone(),
                agent: claims.is_agent(),
                tool: tool.to_owned(),
                action: action.to_owned(),
                arguments_digest: arguments_digest.map(str::to_owned),
                decision: outcome.label(),
                rule,
                receipt_id,
            })
            .await?;
        Ok(Decided { outcome, receipt: signed })
    }
}

/// One row of the `decisions` audit table.
struct DecisionRow {
    at: i64,
    issuer: String,
    subject: String,
    client_id: String,
    agent: bool,
    tool: String,
    action: String,
    arguments_digest: Option<String>,
    decision: &'static str,
    rule: Option<i64>,
    receipt_id: String,
}

/// Decisions are stored by group commit: concurrent decisions share one multi-row INSERT.
fn decision_writer(db: DatabaseConnection) -> GroupCommit<DecisionRow> {
    GroupCommit::new(move |rows: Vec<DecisionRow>| {
        let db = db.clone();
        async move {
            let placeholders = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; rows.len()].join(", ");
            let values = rows.into_iter().flat_map(|r| {
                [
                    r.at.into(),
                    r.issuer.into(),
                    r.subject.into(),
                    r.client_id.into(),
                    r.agent.into(),
                    r.tool.into(),
                    r.action.into(),
                    r.arguments_digest.into(),
                    r.decision.into(),
                    r.rule.into(),
                    r.receipt_id.into(),
                ]
            });
            db.execute_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                format!(
                    "INSERT INTO decisions (at, issuer, subject, client_id, agent, tool, action, arguments_digest, decision, rule, receipt_id) VALUES {placeholders}"
                ),
                values.collect::<Vec<sea_orm::Value>>(),
            ))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
        }
    })
}
