//! Outgoing mail through a durable queue (an outbox table): a request only inserts a row, and a worker
//! on every node delivers what is due. Nothing is lost across restarts or SMTP outages (a failed send
//! is retried with exponential backoff until the message is no longer worth sending), any node can
//! deliver any message (a row is claimed with a lease by a conditional UPDATE, so two nodes never
//! both send it), and the request path does the same work whether or not the mail will go out:
//! whether an address may receive a sign-in code is decided here, by the worker, not while the
//! browser waits (no timing or error tells who has an account).
//!
//! The message itself (recipient, subject, body — a sign-in code is in the body) is sealed under the
//! tenant's data key; a delivered message is deleted.

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::{
    crypto::{self, DataKey},
    mail::Mailer,
    store::{Scoped, StoreError, StoreResult, mail_outbox, now},
    user::{self, Email},
};

/// How long a worker holds a claimed message: longer than an SMTP attempt may take (15 s timeout).
const LEASE_SECONDS: i64 = 60;
/// Rows one worker claims per tenant per round.
const CLAIM_BATCH: u64 = 20;
/// Give up after this many failed attempts (or when the message's `deliver_until` passes).
const MAX_ATTEMPTS: i32 = 12;
/// How often a node looks for messages enqueued by other nodes (or due for a retry).
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// When the worker may send a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendIf {
    Always,
    /// Only if the recipient has an account in the tenant (a sign-in code where self sign-up is off).
    AccountExists,
}

/// One message. Its `Debug` names the recipient only: subject and body may carry a code.
#[derive(Clone, Serialize, Deserialize)]
pub struct Message {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub send_if: SendIf,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message").field("to", &self.to).field("send_if", &self.send_if).finish_non_exhaustive()
    }
}

fn purpose(id: &str) -> String {
    format!("mail/{id}")
}

/// Exponential backoff after the `attempts`-th failure: 5 s, 10 s, 20 s, … at most 10 minutes.
pub fn backoff(attempts: i32) -> i64 {
    let exponent = attempts.clamp(1, 8) - 1;
    std::cmp::min(5i64 << exponent, 600)
}

/// Queues a message, deliverable until `deliver_until`. The caller wakes its node's worker.
pub async fn enqueue(scope: Scoped<'_>, data_key: &DataKey, message: &Message, deliver_until: i64) -> StoreResult<()> {
    let id = crypto::random_id();
    let plaintext = serde_json::to_vec(message).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    mail_outbox::insert(scope, &id, data_key.seal(&purpose(&id), &plaintext), now(), deliver_until).await
}

/// A message claimed by this worker.
struct Claimed {
    id: String,
    attempts: i32,
    deliver_until: i64,
    message: Message,
}

/// Claims up to [`CLAIM_BATCH`] due messages of one tenant: each by a conditional UPDATE that only one
/// node can win.
async fn claim(scope: Scoped<'_>, data_key: &DataKey) -> StoreResult<Vec<Claimed>> {
    let now = now();
    let mut claimed = Vec::new();
    for row in mail_outbox::due(scope, now, CLAIM_BATCH).await? {
        if !mail_outbox::claim(scope, &row.id, now, now + LEASE_SECONDS).await? {
            continue;
        }
        let opened = data_key.open(&purpose(&row.id), &row.sealed).ok().and_then(|plain| serde_json::from_slice(&plain).ok());
        match opened {
            Some(message) => claimed.push(Claimed { id: row.id, attempts: row.attempts + 1, deliver_until: row.deliver_until, message }),
            None => {
                tracing::error!(id = %row.id, "a queued message cannot be opened; giving up on it");
                mail_outbox::give_up(scope, &row.id, "cannot be opened", now).await?;
            }
        }
    }
    Ok(claimed)
}

/// Whether the message may go out at all: a sign-in code for an address without an account (where
/// self sign-up is off) is dropped here, silently, so the sign-in page cannot tell.
async fn wanted(scope: Scoped<'_>, message: &Message) -> StoreResult<bool> {
    match message.send_if {
        SendIf::Always => Ok(true),
        SendIf::AccountExists => match Email::parse(&message.to) {
            Some(email) => Ok(user::find_by_email(scope, &email).await?.is_some()),
            None => Ok(false),
        },
    }
}

/// Delivers one tenant's due messages; returns how many it claimed (a full batch: more may be due).
pub async fn deliver_due(scope: Scoped<'_>, data_key: &DataKey, mailer: &Mailer) -> StoreResult<usize> {
    let batch = claim(scope, data_key).await?;
    let claimed_count = batch.len();
    for claimed in batch {
        if claimed.deliver_until < now() {
            tracing::warn!(id = %claimed.id, "a queued message expired before it could be delivered");
            mail_outbox::delete(scope, &claimed.id).await?;
            continue;
        }
        if !wanted(scope, &claimed.message).await? {
            mail_outbox::delete(scope, &claimed.id).await?;
            continue;
        }
        let message = &claimed.message;
        match mailer.send(&message.to, &message.subject, message.body.clone()).await {
            Ok(()) => mail_outbox::delete(scope, &claimed.id).await?,
            Err(error) => {
                let why = error.to_string();
                let last_chance = claimed.attempts >= MAX_ATTEMPTS || now() + backoff(claimed.attempts) > claimed.deliver_until;
                tracing::warn!(id = %claimed.id, attempts = claimed.attempts, error = %why, last_chance, "mail delivery failed");
                if last_chance {
                    mail_outbox::give_up(scope, &claimed.id, &why, now()).await?
                } else {
                    mail_outbox::retry_at(scope, &claimed.id, now() + backoff(claimed.attempts), &why).await?
                }
            }
        }
    }
    Ok(claimed_count)
}

/// Whether a round claimed a full batch somewhere (then the worker goes again without waiting).
pub fn batch_was_full(claimed: usize) -> bool {
    claimed as u64 >= CLAIM_BATCH
}

/// Wakes this node's worker when a request queued a message, so it goes out at once.
#[derive(Clone, Default)]
pub struct Doorbell(Arc<Notify>);

impl Doorbell {
    pub fn ring(&self) {
        self.0.notify_one();
    }

    /// Waits for a ring, or at most `POLL_INTERVAL` (messages of other nodes, retries).
    pub async fn wait(&self) {
        let _ = tokio::time::timeout(POLL_INTERVAL, self.0.notified()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_ten_minutes() {
        let waits: Vec<i64> = (1..=10).map(backoff).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(backoff(0), 5);
    }

    #[test]
    fn a_message_does_not_show_its_code_in_debug_output() {
        let message = Message { to: "ada@example.com".into(), subject: "123456 is your code".into(), body: "123456".into(), send_if: SendIf::Always };
        let shown = format!("{message:?}");
        assert!(shown.contains("ada@example.com") && !shown.contains("123456"), "{shown}");
    }
}
