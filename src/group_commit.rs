//! Group commit: callers queue a row and wait until it is stored; rows queued while a write is in
//! flight go to the database together in one statement. On SQLite every separate insert is its own
//! write transaction behind the single writer lock, which is what limited the token endpoint and the
//! permission API's decisions. A response still implies its row exists.
//!
//! The flush runs as a task on the runtime of the caller that found no flush in progress — an HTTP
//! worker's own thread — rather than on a dedicated writer task, which measured as one more thread
//! hand-off per request.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
};

use tokio::sync::oneshot;

/// Rows per write; keeps a multi-row INSERT well under SQLite's bound-parameter limit.
pub const MAX_BATCH: usize = 256;

type Write<T> = dyn Fn(Vec<T>) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync;

pub struct GroupCommit<T> {
    queue: Arc<Mutex<Queue<T>>>,
    write: Arc<Write<T>>,
}

impl<T> Clone for GroupCommit<T> {
    fn clone(&self) -> Self {
        Self { queue: self.queue.clone(), write: self.write.clone() }
    }
}

struct Queue<T> {
    pending: Vec<(T, oneshot::Sender<Result<(), String>>)>,
    flushing: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum GroupCommitError {
    #[error("the writer has stopped")]
    Stopped,
    #[error("write failed: {0}")]
    Write(String),
}

impl<T: Send + 'static> GroupCommit<T> {
    /// `write` stores one batch (at most `MAX_BATCH` rows) in one statement.
    pub fn new<F, Fut>(write: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            queue: Arc::new(Mutex::new(Queue { pending: Vec::new(), flushing: false })),
            write: Arc::new(move |rows| Box::pin(write(rows))),
        }
    }

    /// Queues `row` and returns once it is stored.
    pub async fn store(&self, row: T) -> Result<(), GroupCommitError> {
        let (stored, outcome) = oneshot::channel();
        let start_flush = {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.pending.push((row, stored));
            !std::mem::replace(&mut queue.flushing, true)
        };
        if start_flush {
            tokio::spawn(self.clone().flush());
        }
        outcome.await.map_err(|_| GroupCommitError::Stopped)?.map_err(GroupCommitError::Write)
    }

    /// Writes batches until the queue is empty.
    async fn flush(self) {
        loop {
            let batch: Vec<_> = {
                let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                if queue.pending.is_empty() {
                    queue.flushing = false;
                    return;
                }
                let take = queue.pending.len().min(MAX_BATCH);
                queue.pending.drain(..take).collect()
            };
            let (rows, waiting): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
            let result = (self.write)(rows).await;
            for stored in waiting {
                // The caller may have gone (client disconnected); its row is stored either way.
                let _ = stored.send(result.clone());
            }
        }
    }
}
