//! A tiny time-bounded cache. Nodes are stateless: anything cached here is re-read from the database
//! after `ttl`, so a change made on another node (a rotated key, a deleted client) is seen within it.

use std::{
    borrow::Borrow,
    collections::HashMap,
    hash::Hash,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

const MAX_ENTRIES: usize = 10_000;

pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: RwLock<HashMap<K, (Arc<V>, Instant)>>,
}

impl<K: Eq + Hash + Clone, V> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// By a borrowed key (`&str` for a `String` key), so a lookup allocates nothing.
    pub fn get<Q: Eq + Hash + ?Sized>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
    {
        let entries = self
            .entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .get(key)
            .filter(|(_, loaded)| loaded.elapsed() < self.ttl)
            .map(|(value, _)| value.clone())
    }

    pub fn put(&self, key: K, value: Arc<V>) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, (_, loaded)| loaded.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                // Everything is fresh: start over rather than grow without bound. A cache miss only
                // costs a re-read.
                entries.clear();
            }
        }
        entries.insert(key, (value, Instant::now()));
    }

    /// Drops an entry this node knows to be stale (it changed it itself).
    pub fn invalidate(&self, key: &K) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.remove(key);
    }
}
