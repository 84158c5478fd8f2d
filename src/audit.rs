//! The audit trail: an append-only table with one row per security-relevant event. Rows are only ever
//! inserted (no code path updates or deletes them); ordering by `id` gives the sequence a later hash chain
//! or export can follow.

use entity::audit_event;
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait, NotSet, QueryOrder, QuerySelect};

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::store::{StoreResult, now};

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
    fn as_str(self) -> &'static str {
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

fn row(origin: &Origin, event: Event<'_>) -> audit_event::ActiveModel {
    audit_event::ActiveModel {
        id: NotSet,
        tenant_id: Set(event.tenant_id.map(str::to_owned)),
        occurred_at: Set(now()),
        actor: Set(event.actor),
        action: Set(event.action.to_owned()),
        target: Set(event.target),
        outcome: Set(event.outcome.as_str().to_owned()),
        ip: Set(origin.ip.clone()),
        user_agent: Set(origin
            .user_agent
            .as_ref()
            .map(|ua| ua.chars().take(512).collect())),
        details: Set(event.details.map(|d| d.to_string())),
    }
}

/// Writes one event directly (operator commands, which run once and exit).
pub async fn record(db: &DatabaseConnection, origin: &Origin, event: Event<'_>) -> StoreResult<()> {
    audit_event::Entity::insert(row(origin, event))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The server's audit writer: group commit. A request queues its row and waits until the row is stored,
/// so a response still implies its audit row exists; rows queued while a write is in flight go into the
/// database together as one multi-row INSERT. On SQLite every separate insert is its own write
/// transaction behind the single writer lock, which is what limited the token endpoint.
///
/// The flush runs as a task on the runtime of the request that found no flush in progress — an HTTP
/// worker's own thread — rather than on a dedicated writer task, which measured as one more thread
/// hand-off per request.
#[derive(Clone)]
pub struct AuditLog {
    db: DatabaseConnection,
    queue: Arc<Mutex<Queue>>,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    flushing: bool,
}

struct Pending {
    row: audit_event::ActiveModel,
    stored: oneshot::Sender<Result<(), String>>,
}

/// Rows per INSERT; keeps the statement well under SQLite's bound-parameter limit (10 columns each).
const MAX_BATCH: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit writer has stopped")]
    Stopped,
    #[error("audit write failed: {0}")]
    Write(String),
}

impl AuditLog {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            queue: Arc::default(),
        }
    }

    pub async fn record(&self, origin: &Origin, event: Event<'_>) -> Result<(), AuditError> {
        let (stored, outcome) = oneshot::channel();
        let start_flush = {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.pending.push(Pending {
                row: row(origin, event),
                stored,
            });
            !std::mem::replace(&mut queue.flushing, true)
        };
        if start_flush {
            tokio::spawn(self.clone().flush());
        }
        outcome
            .await
            .map_err(|_| AuditError::Stopped)?
            .map_err(AuditError::Write)
    }

    /// Writes batches until the queue is empty.
    async fn flush(self) {
        loop {
            let batch: Vec<Pending> = {
                let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                if queue.pending.is_empty() {
                    queue.flushing = false;
                    return;
                }
                let take = queue.pending.len().min(MAX_BATCH);
                queue.pending.drain(..take).collect()
            };
            let rows: Vec<_> = batch.iter().map(|p| p.row.clone()).collect();
            let result = audit_event::Entity::insert_many(rows)
                .exec_without_returning(&self.db)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
            for waiting in batch {
                // The request may have gone (client disconnected); its row is stored either way.
                let _ = waiting.stored.send(result.clone());
            }
        }
    }
}

/// The most recent events, newest first (operator CLI and tests).
pub async fn recent(db: &DatabaseConnection, limit: u64) -> StoreResult<Vec<audit_event::Model>> {
    Ok(audit_event::Entity::find()
        .order_by_desc(audit_event::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}
