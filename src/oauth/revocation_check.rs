//! Is a signature-valid access token still good? Revocation takes effect at once on every node, so
//! this is a database read on every introspection and UserInfo call — never a cached answer.
//! Concurrent checks share one read (`crate::batch`): each caller's answer comes from a query that
//! started after it asked.

use std::collections::{HashMap, HashSet};

use entity::{access_token, refresh_family};
use sea_orm::{ColumnTrait, DatabaseConnection, QueryFilter, QuerySelect};

use crate::{
    app::Ctx,
    batch::Batch,
    jwt::AccessClaims,
    service_account,
    store::{Scoped, StoreResult},
};

/// Checks (tenant id, jti) pairs in batches.
pub struct RevocationCheck {
    batch: Batch<(String, String), bool>,
}

impl RevocationCheck {
    pub fn new(db: DatabaseConnection) -> Self {
        let batch = Batch::new(move |asked: Vec<(String, String)>| {
            let db = db.clone();
            async move { revoked_in_batch(&db, &asked).await.map_err(|e| e.to_string()) }
        });
        Self { batch }
    }
}

/// Whether a signature-valid access token has since been revoked (directly, or through its family),
/// or belongs to a service account that has been disabled.
pub async fn is_revoked(ctx: &Ctx<'_>, claims: &AccessClaims) -> StoreResult<bool> {
    let for_service_account = claims.caller.as_deref() == Some("agent") && claims.sub != claims.client_id;
    if for_service_account
        && !service_account::find(ctx.scope(), &claims.sub).await?.is_some_and(|a| a.is_active())
    {
        return Ok(true);
    }
    let asked = (ctx.tenant.id.clone(), claims.jti.clone());
    Ok(ctx.app.revocations.batch.submit(asked).await?)
}

/// One answer per (tenant, jti), in order; one or two reads per tenant in the batch.
async fn revoked_in_batch(db: &DatabaseConnection, asked: &[(String, String)]) -> StoreResult<Vec<bool>> {
    let mut jtis_by_tenant: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (tenant, jti) in asked {
        jtis_by_tenant.entry(tenant).or_default().insert(jti);
    }
    let mut revoked: HashMap<&str, HashSet<String>> = HashMap::new();
    for (tenant, jtis) in jtis_by_tenant {
        revoked.insert(tenant, revoked_among(Scoped::new(db, tenant), jtis).await?);
    }
    Ok(asked.iter().map(|(tenant, jti)| revoked.get(tenant.as_str()).is_some_and(|r| r.contains(jti))).collect())
}

/// The revoked ones among `jtis`. Only tokens issued under a refresh-token family or revoked through
/// RFC 7009 have a row; a token without one has never been revoked.
async fn revoked_among(scope: Scoped<'_>, jtis: HashSet<&str>) -> StoreResult<HashSet<String>> {
    let rows: Vec<(String, Option<String>, Option<i64>)> = scope
        .select::<access_token::Entity>()
        .select_only()
        .columns([access_token::Column::Jti, access_token::Column::FamilyId, access_token::Column::RevokedAt])
        .filter(access_token::Column::Jti.is_in(jtis))
        .into_tuple()
        .all(scope.db)
        .await?;
    let families: HashSet<&String> =
        rows.iter().filter(|(_, _, revoked_at)| revoked_at.is_none()).filter_map(|(_, family, _)| family.as_ref()).collect();
    let live_families: HashSet<String> = if families.is_empty() {
        HashSet::new()
    } else {
        scope
            .select::<refresh_family::Entity>()
            .select_only()
            .column(refresh_family::Column::Id)
            .filter(refresh_family::Column::Id.is_in(families))
            .filter(refresh_family::Column::RevokedAt.is_null())
            .into_tuple()
            .all(scope.db)
            .await?
            .into_iter()
            .collect()
    };
    Ok(rows
        .into_iter()
        .filter(|(_, family, revoked_at)| {
            revoked_at.is_some() || family.as_ref().is_some_and(|f| !live_families.contains(f))
        })
        .map(|(jti, _, _)| jti)
        .collect())
}
