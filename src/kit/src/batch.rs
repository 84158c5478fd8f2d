//! Coalescing concurrent database work into batches: callers submit one item and wait for its own
//! result; items submitted while a batch is in flight go to the database together in the next one.
//!
//! On SQLite every statement is a hand-off to sqlx's per-connection worker thread (two context
//! switches), and every separate write is its own transaction behind the single writer lock; both,
//! not the SQL, limited the audit writes and introspection. Batching pays them once per batch instead of once per
//! request, without caching anything: each caller's result comes from a statement that started after
//! it submitted, so a write is stored before its response and a read sees every earlier commit.
//! Uses: group commit of audit rows (`audit`, `permission`), revocation reads
//! (`oauth::revocation_check`), the rows a token response issues and the refresh token it spends
//! (`store::token_writes` in the identity server).
//!
//! The batch runs as a task on the runtime of the caller that found none in flight — an HTTP worker's
//! own thread — rather than on a dedicated task, which measured as one more thread hand-off per request.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
};

use tokio::sync::oneshot;

/// Items per batch; keeps a multi-row statement well under SQLite's bound-parameter limit.
pub const MAX_BATCH: usize = 256;

type Outcome<Out> = Result<Out, String>;
type Run<In, Out> =
    dyn Fn(Vec<In>) -> Pin<Box<dyn Future<Output = Result<Vec<Out>, String>> + Send>> + Send + Sync;

pub struct Batch<In, Out = ()> {
    queue: Arc<Mutex<Queue<In, Out>>>,
    run: Arc<Run<In, Out>>,
}

impl<In, Out> Clone for Batch<In, Out> {
    fn clone(&self) -> Self {
        Self { queue: self.queue.clone(), run: self.run.clone() }
    }
}

struct Queue<In, Out> {
    pending: Vec<(In, oneshot::Sender<Outcome<Out>>)>,
    running: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("the batch runner has stopped")]
    Stopped,
    #[error("batch failed: {0}")]
    Failed(String),
}

impl<In: Send + 'static, Out: Clone + Send + 'static> Batch<In, Out> {
    /// `run` handles one batch (at most `MAX_BATCH` items) and returns one result per item, in order.
    pub fn new<F, Fut>(run: F) -> Self
    where
        F: Fn(Vec<In>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Out>, String>> + Send + 'static,
    {
        Self {
            queue: Arc::new(Mutex::new(Queue { pending: Vec::new(), running: false })),
            run: Arc::new(move |items| Box::pin(run(items))),
        }
    }

    /// Submits `item` and returns its result once its batch has run.
    pub async fn submit(&self, item: In) -> Result<Out, BatchError> {
        let (done, outcome) = oneshot::channel();
        let start = {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.pending.push((item, done));
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            tokio::spawn(self.clone().drain());
        }
        outcome.await.map_err(|_| BatchError::Stopped)?.map_err(BatchError::Failed)
    }

    /// Runs batches until the queue is empty.
    async fn drain(self) {
        loop {
            let batch: Vec<_> = {
                let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                if queue.pending.is_empty() {
                    queue.running = false;
                    return;
                }
                let take = queue.pending.len().min(MAX_BATCH);
                queue.pending.drain(..take).collect()
            };
            let (items, waiting): (Vec<In>, Vec<_>) = batch.into_iter().unzip();
            let expected = items.len();
            let results = match (self.run)(items).await {
                Ok(results) if results.len() == expected => results.into_iter().map(Ok).collect(),
                Ok(results) => {
                    let error = format!("{} results for {expected} items", results.len());
                    vec![Err(error); expected]
                }
                Err(error) => vec![Err(error); expected],
            };
            for (done, result) in waiting.into_iter().zip(results) {
                // The caller may have gone (client disconnected); its item was handled either way.
                let _ = done.send(result);
            }
        }
    }
}

impl<Row: Send + 'static> Batch<Row, ()> {
    /// Group commit: `write` stores one batch of rows (in one statement); `submit` returns once the
    /// caller's row is stored.
    pub fn group_commit<F, Fut>(write: F) -> Self
    where
        F: Fn(Vec<Row>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let write = Arc::new(write);
        Self::new(move |rows: Vec<Row>| {
            let count = rows.len();
            let stored = write(rows);
            async move { stored.await.map(|()| vec![(); count]) }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_items_share_batches_and_get_their_own_results() {
        let batches = Arc::new(AtomicUsize::new(0));
        let counted = batches.clone();
        let doubler = Batch::new(move |items: Vec<u32>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::task::yield_now().await;
                Ok(items.into_iter().map(|n| n * 2).collect())
            }
        });
        let calls = (0..100u32).map(|n| {
            let doubler = doubler.clone();
            async move { (n, doubler.submit(n).await) }
        });
        for (n, result) in futures_util::future::join_all(calls).await {
            assert_eq!(result.expect("batch ran"), n * 2);
        }
        let batches = batches.load(Ordering::SeqCst);
        assert!(batches < 100, "100 concurrent items ran in {batches} batches");
    }

    #[tokio::test]
    async fn a_failed_or_short_batch_fails_each_of_its_items() {
        let failing: Batch<u32, u32> = Batch::new(|_| async { Err("disk full".to_owned()) });
        assert!(matches!(failing.submit(1).await, Err(BatchError::Failed(e)) if e == "disk full"));
        let short: Batch<u32, u32> = Batch::new(|_| async { Ok(Vec::new()) });
        assert!(matches!(short.submit(1).await, Err(BatchError::Failed(_))));
    }
}
