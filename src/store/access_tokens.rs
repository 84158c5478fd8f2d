//! Access-token revocations. A signed access token has no row while it is good: one is written when
//! RFC 7009 revokes it, and the token's family (`grant_id`) says whether its grant still lives. The
//! revocation check reads both in one or two statements for a whole batch of tokens.

use std::collections::{HashMap, HashSet};

use entity::{access_token, refresh_family};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, QueryFilter, QuerySelect};

use super::{Scoped, StoreResult};
use crate::batch::Batch;

/// Records the token as revoked; the same for a token already revoked, by this call or a concurrent one.
pub async fn revoke(scope: Scoped<'_>, jti: &str, client_id: &str, expires_at: i64, now: i64) -> StoreResult<()> {
    let updated = scope
        .update::<access_token::Entity>()
        .col_expr(access_token::Column::RevokedAt, now.into())
        .filter(access_token::Column::Jti.eq(jti))
        .exec(scope.db)
        .await?;
    if updated.rows_affected > 0 {
        return Ok(());
    }
    // Tokens outside a family (client_credentials) are not recorded until revoked.
    let row = access_token::ActiveModel {
        jti: Set(jti.to_owned()),
        family_id: Set(None),
        client_id: Set(client_id.to_owned()),
        expires_at: Set(expires_at),
        revoked_at: Set(Some(now)),
        ..Default::default()
    };
    // A concurrent revocation may have inserted it first (the insert then fails on the primary key):
    // that is success. Any other failure must not be reported as a revocation.
    if let Err(insert_error) = scope.insert::<access_token::Entity, _>(row).await {
        let already = scope
            .select::<access_token::Entity>()
            .filter(access_token::Column::Jti.eq(jti))
            .filter(access_token::Column::RevokedAt.is_not_null())
            .one(scope.db)
            .await?;
        if already.is_none() {
            return Err(insert_error);
        }
    }
    Ok(())
}

/// What one tenant's reads found: revoked token ids, and families that are revoked or gone.
pub struct Revoked {
    pub jtis: HashSet<String>,
    pub dead_families: HashSet<String>,
}

/// Among `jtis`, the revoked ones; among `families` (and the families of those tokens' rows), the dead
/// ones. A token has a row only once revoked through RFC 7009 (or, before `grant_id`, when issued
/// under a family); a family id nothing knows counts as dead.
pub async fn revoked_among(scope: Scoped<'_>, jtis: HashSet<&str>, mut families: HashSet<&str>) -> StoreResult<Revoked> {
    let rows: Vec<(String, Option<String>, Option<i64>)> = scope
        .select::<access_token::Entity>()
        .select_only()
        .columns([access_token::Column::Jti, access_token::Column::FamilyId, access_token::Column::RevokedAt])
        .filter(access_token::Column::Jti.is_in(jtis))
        .into_tuple()
        .all(scope.db)
        .await?;
    families.extend(rows.iter().filter_map(|(_, family, _)| family.as_deref()));
    let live_families: HashSet<String> = if families.is_empty() {
        HashSet::new()
    } else {
        scope
            .select::<refresh_family::Entity>()
            .select_only()
            .column(refresh_family::Column::Id)
            .filter(refresh_family::Column::Id.is_in(families.iter().copied()))
            .filter(refresh_family::Column::RevokedAt.is_null())
            .into_tuple()
            .all(scope.db)
            .await?
            .into_iter()
            .collect()
    };
    let dead_families: HashSet<String> =
        families.into_iter().filter(|f| !live_families.contains(*f)).map(str::to_owned).collect();
    let jtis = rows
        .into_iter()
        .filter(|(_, family, revoked_at)| {
            revoked_at.is_some() || family.as_ref().is_some_and(|f| dead_families.contains(f))
        })
        .map(|(jti, _, _)| jti)
        .collect();
    Ok(Revoked { jtis, dead_families })
}

/// One question: is this token of this tenant revoked?
struct Asked {
    tenant_id: String,
    jti: String,
    /// The family the token names (`grant_id`), if it was issued under one.
    grant_id: Option<String>,
}

/// Revocation reads shared by concurrent callers (`crate::batch`): each caller's answer comes from
/// a query that started after it asked, never from a cache.
pub struct RevocationReads {
    batch: Batch<Asked, bool>,
}

impl RevocationReads {
    pub fn new(db: DatabaseConnection) -> Self {
        let batch = Batch::new(move |asked: Vec<Asked>| {
            let db = db.clone();
            async move { revoked_in_batch(&db, &asked).await.map_err(|e| e.to_string()) }
        });
        Self { batch }
    }

    /// Whether the token `jti` of the tenant `scope` is for was revoked, directly or through the family
    /// it names (`grant_id`; a family nothing knows counts as revoked).
    pub async fn is_revoked(&self, scope: Scoped<'_>, jti: &str, grant_id: Option<&str>) -> StoreResult<bool> {
        let asked = Asked {
            tenant_id: scope.tenant_id().to_owned(),
            jti: jti.to_owned(),
            grant_id: grant_id.map(str::to_owned),
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
        found.insert(tenant, revoked_among(Scoped::new(db, tenant), jtis, families).await?);
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
