//! Storing what a token response issued — the new refresh token — and, for a refresh, spending the
//! presented refresh token, in one transaction. (An access token needs no row: it names its family in
//! `grant_id`, and revoking the family is what makes it inactive; see `revocation_check`.) Concurrent
//! token requests share that transaction (`crate::batch`), so a rotation costs a share of one commit
//! instead of two writes of its own.
//!
//! The spend is a conditional UPDATE (`rotated_at IS NULL`): whichever request commits first, on
//! whichever node, wins; a loser stores nothing and its response is never sent (OAuth 2.1 §4.3.1,
//! RFC 9700 §4.14.2). Within one batch the same token can be presented twice; the first in the
//! batch wins.

use super::{
    DatabaseConnection, StoreResult, now,
    refresh_families::{self, NewRefreshToken, TokenWrite},
};
use crate::batch::Batch;

pub struct TokenWrites {
    batch: Batch<TokenWrite, bool>,
}

impl TokenWrites {
    pub fn new(db: DatabaseConnection) -> Self {
        let batch = Batch::new(move |writes: Vec<TokenWrite>| {
            let db = db.clone();
            async move { refresh_families::write_batch(&db, writes, now()).await.map_err(|e| e.to_string()) }
        });
        Self { batch }
    }

    /// Stores the row of the refresh token a response of `tenant_id` `issues`. With `spends`, only if
    /// this call is the one that spends that refresh token: `false` means it had already been spent
    /// (reuse) and nothing was stored.
    pub async fn store(
        &self,
        tenant_id: &str,
        issues: Option<NewRefreshToken>,
        spends: Option<&str>,
    ) -> StoreResult<bool> {
        if spends.is_none() && issues.is_none() {
            return Ok(true);
        }
        let write = TokenWrite { tenant_id: tenant_id.to_owned(), spends: spends.map(str::to_owned), issues };
        Ok(self.batch.submit(write).await?)
    }
}
