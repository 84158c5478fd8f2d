//! Token status lists (draft-ietf-oauth-status-list): a token whose `status` claim names an entry of
//! its issuer's list is refused once that entry is set (Latchkey sets a refresh family's entry when it
//! revokes the family). Each list is fetched at most once per `status_list_refresh_seconds` (30 by
//! default) — one fetch in flight per list, the rest of the traffic reading the copy in memory — so a
//! revocation is seen within that interval (plus the few seconds Latchkey serves one signed list), and
//! no token costs a call to Latchkey.
//!
//! A list is trusted only from the token's own issuer (its URI under the issuer's URL, signed by the
//! issuer's key, `sub` equal to that URI). When a list cannot be fetched, the last one is used until
//! its `exp`; after that, a token naming it is refused: its status cannot be known.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use latchkey_proto::{
    AccessClaims,
    status_list::{self, INVALID, MEDIA_TYPE, STATUS_LIST_TYP, StatusListClaims},
};

use super::{TokenError, Verifier};

/// The largest list (compressed, as fetched) and its entries (decompressed) a reader holds.
const MAX_FETCHED_BYTES: usize = 1 << 20;
const MAX_LIST_BYTES: usize = 16 << 20;
/// Lists held at once: an issuer publishes one per tenant, so this bounds nothing a caller controls.
const MAX_LISTS: usize = 256;
/// The least time between two fetches of one list (a failed fetch, or a token newer than the list,
/// cannot make us ask more often).
const MIN_FETCH_SPACING: Duration = Duration::from_secs(1);

struct Fetched {
    bytes: Vec<u8>,
    /// The list's own `exp`: not relied on after it.
    exp: Option<i64>,
    at: Instant,
}

#[derive(Default)]
struct List {
    current: Mutex<Option<Arc<Fetched>>>,
    /// No fetch before this (spacing after every attempt, a failed one too).
    next_fetch: Mutex<Option<Instant>>,
    fetching: tokio::sync::Mutex<()>,
}

pub(super) struct StatusLists {
    interval: Duration,
    lists: Mutex<HashMap<String, Arc<List>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl StatusLists {
    pub(super) fn new(interval: Duration) -> Self {
        Self { interval, lists: Mutex::new(HashMap::new()) }
    }

    fn list(&self, uri: &str) -> Result<Arc<List>, TokenError> {
        let mut lists = lock(&self.lists);
        if let Some(list) = lists.get(uri) {
            return Ok(list.clone());
        }
        if lists.len() >= MAX_LISTS {
            return Err(TokenError::Invalid("too many status lists"));
        }
        let list = Arc::new(List::default());
        lists.insert(uri.to_owned(), list.clone());
        Ok(list)
    }
}

impl Verifier {
    /// Refuses a token whose status list entry is set (or whose status cannot be known).
    pub(super) async fn check_status(&self, claims: &AccessClaims) -> Result<(), TokenError> {
        let Some(status) = &claims.status else { return Ok(()) };
        let reference = &status.status_list;
        if !reference.uri.strip_prefix(claims.iss.as_str()).is_some_and(|rest| rest.starts_with('/')) {
            return Err(TokenError::Invalid("the status list is not the issuer's"));
        }
        let mut fetched = self.current_list(&claims.iss, &reference.uri, false).await?;
        if status_list::entry(&fetched.bytes, reference.idx).is_none() {
            // A grant newer than the list in memory (the issuer publishes room for new ones, but a
            // burst can outgrow it): fetch now rather than wait out the interval.
            fetched = self.current_list(&claims.iss, &reference.uri, true).await?;
        }
        match status_list::entry(&fetched.bytes, reference.idx) {
            Some(INVALID) => Err(TokenError::Invalid("revoked")),
            Some(_) => Ok(()),
            None => Err(TokenError::Invalid("the status index is outside the list")),
        }
    }

    /// The list to judge by: the one in memory while it is younger than the interval (unless `newer`
    /// asks for one fetched since); otherwise a fresh one, fetched by one caller while the others keep
    /// using the one in memory. Fetches are at least a second apart whatever asks for them.
    async fn current_list(&self, issuer: &str, uri: &str, newer: bool) -> Result<Arc<Fetched>, TokenError> {
        let statuses = &self.status_lists;
        let list = statuses.list(uri)?;
        let usable = |fetched: &Option<Arc<Fetched>>| {
            fetched.as_ref().filter(|f| f.exp.is_none_or(|exp| exp > latchkey_proto::now())).cloned()
        };
        let fresh = |fetched: &Fetched| !newer && fetched.at.elapsed() < statuses.interval;
        let held = lock(&list.current).clone();
        if let Some(fetched) = &held
            && fresh(fetched)
            && let Some(fetched) = usable(&held)
        {
            return Ok(fetched);
        }
        // Stale or missing. Whoever holds the fetch refreshes; with a list in memory the others use
        // it meanwhile, without one they wait for the fetch.
        let _fetching = match list.fetching.try_lock() {
            Ok(guard) => guard,
            Err(_) => match usable(&held) {
                Some(fetched) => return Ok(fetched),
                None => list.fetching.lock().await,
            },
        };
        let held = lock(&list.current).clone();
        if let Some(fetched) = &held
            && fresh(fetched)
            && let Some(fetched) = usable(&held)
        {
            return Ok(fetched);
        }
        let may_fetch = lock(&list.next_fetch).is_none_or(|at| Instant::now() >= at);
        if may_fetch {
            let attempted = Instant::now();
            let result = self.fetch_list(issuer, uri).await;
            *lock(&list.next_fetch) = Some(attempted + statuses.interval.min(MIN_FETCH_SPACING));
            match result {
                Ok(fetched) => {
                    let fetched = Arc::new(fetched);
                    *lock(&list.current) = Some(fetched.clone());
                    return Ok(fetched);
                }
                Err(error) => {
                    tracing::warn!(%uri, %error, "status list fetch failed");
                    return usable(&held).ok_or(error);
                }
            }
        }
        usable(&held).ok_or_else(|| TokenError::Unreachable("the status list is not available".into()))
    }

    async fn fetch_list(&self, issuer: &str, uri: &str) -> Result<Fetched, TokenError> {
        let unreachable = |why: String| TokenError::Unreachable(format!("status list {uri}: {why}"));
        let response = self
            .http
            .get(uri)
            .header(reqwest::header::ACCEPT, MEDIA_TYPE)
            .send()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unreachable(response.status().to_string()));
        }
        if response.content_length().is_some_and(|n| n > MAX_FETCHED_BYTES as u64) {
            return Err(unreachable("too large".into()));
        }
        let body = response.bytes().await.map_err(|e| unreachable(e.to_string()))?;
        if body.len() > MAX_FETCHED_BYTES {
            return Err(unreachable("too large".into()));
        }
        let token = std::str::from_utf8(&body).map_err(|_| unreachable("not a JWT".into()))?.trim();
        let claims: StatusListClaims = self.verify_issued(issuer, token, STATUS_LIST_TYP, &["sub", "iat"]).await?;
        if claims.sub != uri {
            return Err(TokenError::Invalid("the status list names another URI"));
        }
        let bytes = status_list::decode(&claims.status_list, MAX_LIST_BYTES).map_err(|e| unreachable(e.to_string()))?;
        Ok(Fetched { bytes, exp: claims.exp, at: Instant::now() })
    }
}
