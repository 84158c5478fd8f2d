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

use std::collections::{BTreeSet, HashMap, HashSet};

use entity::refresh_token;
use sea_orm::{ColumnTrait, DatabaseConnection, DatabaseTransaction, QueryFilter, TransactionTrait};

use crate::{
    batch::Batch,
    store::{Scoped, StoreResult, now},
};

struct Write {
    tenant_id: String,
    /// SHA-256 (hex) of the refresh token this response replaces.
    spends: Option<String>,
    /// The row of the refresh token this response issues (its tenant column is set when stored).
    issues: Option<refresh_token::ActiveModel>,
}

pub struct TokenWrites {
    batch: Batch<Write, bool>,
}

impl TokenWrites {
    pub fn new(db: DatabaseConnection) -> Self {
        let batch = Batch::new(move |writes: Vec<Write>| {
            let db = db.clone();
            async move { write_batch(&db, writes).await.map_err(|e| e.to_string()) }
        });
        Self { batch }
    }

    /// Stores the row of the refresh token a response of `tenant_id` `issues`. With `spends`, only if
    /// this call is the one that spends that refresh token: `false` means it had already been spent
    /// (reuse) and nothing was stored.
    pub async fn store(
        &self,
        tenant_id: &str,
        issues: Option<refresh_token::ActiveModel>,
        spends: Option<&str>,
    ) -> StoreResult<bool> {
        if spends.is_none() && issues.is_none() {
            return Ok(true);
        }
        let write = Write { tenant_id: tenant_id.to_owned(), spends: spends.map(str::to_owned), issues };
        Ok(self.batch.submit(write).await?)
    }
}

async fn write_batch(db: &DatabaseConnection, writes: Vec<Write>) -> StoreResult<Vec<bool>> {
    let txn = db.begin().await?;
    let mut spent = spend(&txn, &writes).await?;
    let mut stored = Vec::with_capacity(writes.len());
    let mut rows_by_tenant: HashMap<String, Vec<refresh_token::ActiveModel>> = HashMap::new();
    for write in writes {
        // `remove`: a token presented twice in one batch is spent by the first only.
        let wins = match &write.spends {
            None => true,
            Some(hash) => spent.get_mut(&write.tenant_id).is_some_and(|hashes| hashes.remove(hash)),
        };
        stored.push(wins);
        if wins && let Some(row) = write.issues {
            rows_by_tenant.entry(write.tenant_id).or_default().push(row);
        }
    }
    for (tenant_id, rows) in rows_by_tenant {
        Scoped::new(&txn, &tenant_id).insert_many::<refresh_token::Entity, _>(rows).await?;
    }
    txn.commit().await?;
    Ok(stored)
}

/// Marks every refresh token the batch presents as rotated, if it was not; returns, per tenant, the
/// hashes this transaction spent.
async fn spend(txn: &DatabaseTransaction, writes: &[Write]) -> StoreResult<HashMap<String, HashSet<String>>> {
    let mut by_tenant: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for write in writes {
        if let Some(hash) = &write.spends {
            by_tenant.entry(&write.tenant_id).or_default().insert(hash);
        }
    }
    let now = now();
    let mut spent = HashMap::new();
    for (tenant_id, hashes) in by_tenant {
        let rows = Scoped::new(txn, tenant_id)
            .update::<refresh_token::Entity>()
            .col_expr(refresh_token::Column::RotatedAt, now.into())
            .filter(refresh_token::Column::TokenHash.is_in(hashes))
            .filter(refresh_token::Column::RotatedAt.is_null())
            .exec_with_returning(txn)
            .await?;
        spent.insert(tenant_id.to_owned(), rows.into_iter().map(|row| row.token_hash).collect());
    }
    Ok(spent)
}
