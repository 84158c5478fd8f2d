//! Is a signature-valid access token still good? Revocation takes effect at once on every node, so
//! this is a database read on every introspection and UserInfo call — never a cached answer.
//! Concurrent checks share one read (`crate::batch`): each caller's answer comes from a query that
//! started after it asked.

use std::collections::{HashMap, HashSet};

use crate::{
    batch::Batch,
    jwt::AccessClaims,
    service_account,
    store::{
        DatabaseConnection, Scoped, StoreResult,
        access_tokens::{self, Revoked},
    },
};

/// One question: is this token of this tenant revoked?
struct Asked {
    tenant_id: String,
    jti: String,
    /// The family the token names (`grant_id`), if it was issued under one.
    grant_id: Option<String>,
}

/// Answers `Asked` in batches.
pub struct RevocationCheck {
    batch: Batch<Asked, bool>,
}

impl RevocationCheck {
    pub fn new(db: DatabaseConnection) -> Self {
        let batch = Batch::new(move |asked: Vec<Asked>| {
            let db = db.clone();
            async move { revoked_in_batch(&db, &asked).await.map_err(|e| e.to_string()) }
        });
        Self { batch }
    }

    /// Whether a signature-valid access token of the tenant `scope` is for has since been revoked
    /// (directly, or through its family), or belongs to a service account that has been disabled.
    pub async fn is_revoked(&self, scope: Scoped<'_>, claims: &AccessClaims) -> StoreResult<bool> {
        let for_service_account = claims.is_agent() && claims.sub != claims.client_id;
        if for_service_account && !service_account::find(scope, &claims.sub).await?.is_some_and(|a| a.is_active()) {
            return Ok(true);
        }
        let asked = Asked {
            tenant_id: scope.tenant_id().to_owned(),
            jti: claims.jti.clone(),
            grant_id: claims.grant_id.clone(),
        };
        Ok(self.batch.submit(asked).await?)
    }
}

/// One answer per question, in order; one or two reads per tenant in the batch.
async fn revoked_in_batch(db: &DatabaseConnection, asked: &[Asked]) -> StoreResult<Vec<bool>> {
    let mut by_tenant: HashMap<&str, (HashSet<&str>, HashSet<&str>)> = HashMap::new();
    for question in asked {
        let (jtis, families) = by_tenant.entry(&question.tenant_id).or_default();
        jtis.insert(&question.jti);
        families.extend(question.grant_id.as_deref());
    }
    let mut found: HashMap<&str, Revoked> = HashMap::new();
    for (tenant, (jtis, families)) in by_tenant {
        found.insert(tenant, access_tokens::revoked_among(Scoped::new(db, tenant), jtis, families).await?);
    }
    Ok(asked
        .iter()
        .map(|question| {
            found.get(question.tenant_id.as_str()).is_some_and(|found| {
                found.jtis.contains(&question.jti)
                    || question.grant_id.as_ref().is_some_and(|family| found.dead_families.contains(family))
            })
        })
        .collect())
}
