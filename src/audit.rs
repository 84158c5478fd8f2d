//! The audit trail: an append-only table with one row per security-relevant event. Rows are only ever
//! inserted, never updated; the only deletion is retention (`forget_before`), which removes the oldest
//! rows of a tenant past `maintenance.audit_retention_days`. Ordering by `id` gives the sequence a later
//! hash chain or export can follow.

use crate::{
    batch::{Batch, BatchError},
    store::{
        DatabaseConnection, StoreResult,
        audit_events::{self, AuditRow, NewEvent},
        now,
    },
};

/// Who did it, from where. Built once per request by the HTTP layer.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// One event. `actor` is `user:{id}`, `client:{client_id}`, `operator` or `anonymous`; `target` names
/// what was acted on. Secrets never go in any field: name tokens by family id or display prefix.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub tenant_id: Option<&'a str>,
    pub actor: String,
    pub action: &'static str,
    pub target: Option<String>,
    pub outcome: Outcome,
    pub details: Option<serde_json::Value>,
}

impl<'a> Event<'a> {
    pub fn new(tenant_id: &'a str, actor: impl Into<String>, action: &'static str) -> Self {
        Self {
            tenant_id: Some(tenant_id),
            actor: actor.into(),
            action,
            target: None,
            outcome: Outcome::Success,
            details: None,
        }
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn failed(mut self) -> Self {
        self.outcome = Outcome::Failure;
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

fn row(origin: &Origin, event: Event<'_>) -> NewEvent {
    NewEvent {
        tenant_id: event.tenant_id.map(str::to_owned),
        occurred_at: now(),
        actor: event.actor,
        action: event.action.to_owned(),
        target: event.target,
        outcome: event.outcome.as_str(),
        ip: origin.ip.clone(),
        user_agent: origin.user_agent.as_ref().map(|ua| ua.chars().take(512).collect()),
        details: event.details.map(|d| d.to_string()),
    }
}

/// Retention: deletes a tenant's events (`None`: those of no tenant) that occurred before `cutoff`,
/// oldest first, in batches. Returns how many.
pub async fn forget_before(db: &DatabaseConnection, tenant_id: Option<&str>, cutoff: i64, batch: u64) -> StoreResult<u64> {
    audit_events::forget_before(db, tenant_id, cutoff, batch).await
}

/// Writes one event directly (operator commands, which run once and exit).
pub async fn record(db: &DatabaseConnection, origin: &Origin, event: Event<'_>) -> StoreResult<()> {
    audit_events::insert(db, row(origin, event)).await
}

/// The server's audit writer: rows are stored by group commit (`crate::batch`), so a response
/// still implies its audit row exists while concurrent requests share one INSERT.
#[derive(Clone)]
pub struct AuditLog {
    writer: Batch<NewEvent>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit {0}")]
    Write(#[from] BatchError),
}

impl AuditLog {
    pub fn new(db: DatabaseConnection) -> Self {
        let writer = Batch::group_commit(move |events: Vec<NewEvent>| {
            let db = db.clone();
            async move { audit_events::insert_many(&db, events).await.map_err(|e| e.to_string()) }
        });
        Self { writer }
    }

    pub async fn record(&self, origin: &Origin, event: Event<'_>) -> Result<(), AuditError> {
        Ok(self.writer.submit(row(origin, event)).await?)
    }
}

/// The most recent events, newest first (operator CLI and tests).
pub async fn recent(db: &DatabaseConnection, limit: u64) -> StoreResult<Vec<AuditRow>> {
    audit_events::recent(db, limit).await
}
