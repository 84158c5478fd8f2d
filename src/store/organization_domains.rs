//! Domains organizations claim (`sso::domains` decides what a claim and a verification are): any
//! number of claims of a domain per tenant, at most one verified (a unique index on `verified_domain`,
//! so two organizations verifying at once cannot both win).

use entity::organization_domain;
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, SqlErr, sea_query::Expr};

use super::{Scoped, StoreError, StoreResult};

/// One organization's claim of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainClaim {
    pub id: String,
    pub organization_id: String,
    pub domain: String,
    pub verified_at: Option<i64>,
    pub checked_at: Option<i64>,
    pub lost_at: Option<i64>,
    pub created_at: i64,
    /// Its people sign in only through the organization's identity provider.
    pub enforce_sso: bool,
}

fn from_row(row: organization_domain::Model) -> DomainClaim {
    DomainClaim {
        id: row.id,
        organization_id: row.organization_id,
        domain: row.domain,
        verified_at: row.verified_at,
        checked_at: row.checked_at,
        lost_at: row.lost_at,
        created_at: row.created_at,
        enforce_sso: row.enforce_sso,
    }
}

/// Stores a claim; `false` when the organization already claims the domain.
pub async fn insert(scope: Scoped<'_>, id: &str, organization_id: &str, domain: &str, now: i64) -> StoreResult<bool> {
    let row = organization_domain::Model {
        id: id.to_owned(),
        tenant_id: scope.tenant_id().to_owned(),
        organization_id: organization_id.to_owned(),
        domain: domain.to_owned(),
        verified_domain: None,
        verified_at: None,
        checked_at: None,
        lost_at: None,
        created_at: now,
        enforce_sso: false,
    };
    let key = [
        organization_domain::Column::TenantId,
        organization_domain::Column::Domain,
        organization_domain::Column::OrganizationId,
    ];
    scope.insert_if_absent::<organization_domain::Entity, _>(row, key).await
}

pub async fn find(scope: Scoped<'_>, organization_id: &str, domain: &str) -> StoreResult<Option<DomainClaim>> {
    Ok(scope
        .select::<organization_domain::Entity>()
        .filter(organization_domain::Column::OrganizationId.eq(organization_id))
        .filter(organization_domain::Column::Domain.eq(domain))
        .one(scope.db)
        .await?
        .map(from_row))
}

/// The organization's claims, by domain.
pub async fn of_organization(scope: Scoped<'_>, organization_id: &str) -> StoreResult<Vec<DomainClaim>> {
    Ok(scope
        .select::<organization_domain::Entity>()
        .filter(organization_domain::Column::OrganizationId.eq(organization_id))
        .order_by_asc(organization_domain::Column::Domain)
        .all(scope.db)
        .await?
        .into_iter()
        .map(from_row)
        .collect())
}

/// The verified claim of `domain` in this tenant, whichever organization holds it.
pub async fn verified(scope: Scoped<'_>, domain: &str) -> StoreResult<Option<DomainClaim>> {
    Ok(scope
        .select::<organization_domain::Entity>()
        .filter(organization_domain::Column::VerifiedDomain.eq(domain))
        .one(scope.db)
        .await?
        .map(from_row))
}

/// Every verified claim of the tenant (for the periodic re-check), by domain.
pub async fn all_verified(scope: Scoped<'_>) -> StoreResult<Vec<DomainClaim>> {
    Ok(scope
        .select::<organization_domain::Entity>()
        .filter(organization_domain::Column::VerifiedDomain.is_not_null())
        .order_by_asc(organization_domain::Column::Domain)
        .all(scope.db)
        .await?
        .into_iter()
        .map(from_row)
        .collect())
}

/// Marks the claim verified; `false` when another organization of the tenant holds the domain
/// verified (the unique index decides between racing verifications).
pub async fn mark_verified(scope: Scoped<'_>, claim: &DomainClaim, now: i64) -> StoreResult<bool> {
    let result = scope
        .update::<organization_domain::Entity>()
        .col_expr(organization_domain::Column::VerifiedDomain, Expr::value(claim.domain.clone()))
        .col_expr(organization_domain::Column::VerifiedAt, Expr::value(now))
        .col_expr(organization_domain::Column::CheckedAt, Expr::value(now))
        .col_expr(organization_domain::Column::LostAt, Expr::value(Option::<i64>::None))
        .filter(organization_domain::Column::Id.eq(&claim.id))
        .exec(scope.db)
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(false),
        Err(error) => Err(StoreError::Db(error)),
    }
}

/// The re-check found the record: checked now, not lost.
pub async fn mark_found(scope: Scoped<'_>, claim_id: &str, now: i64) -> StoreResult<()> {
    scope
        .update::<organization_domain::Entity>()
        .col_expr(organization_domain::Column::CheckedAt, Expr::value(now))
        .col_expr(organization_domain::Column::LostAt, Expr::value(Option::<i64>::None))
        .filter(organization_domain::Column::Id.eq(claim_id))
        .exec(scope.db)
        .await?;
    Ok(())
}

/// The re-check did not find the record: lost since now, unless already lost earlier. Returns whether
/// this call flagged it (so the loss is reported once).
pub async fn mark_lost(scope: Scoped<'_>, claim_id: &str, now: i64) -> StoreResult<bool> {
    let result = scope
        .update::<organization_domain::Entity>()
        .col_expr(organization_domain::Column::LostAt, Expr::value(now))
        .filter(organization_domain::Column::Id.eq(claim_id))
        .filter(organization_domain::Column::LostAt.is_null())
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Withdraws a verification (the record has been gone too long, or an operator said so): the claim
/// stays, pending, and the domain is free for another organization to verify.
pub async fn withdraw(scope: Scoped<'_>, claim_id: &str) -> StoreResult<()> {
    scope
        .update::<organization_domain::Entity>()
        .col_expr(organization_domain::Column::VerifiedDomain, Expr::value(Option::<String>::None))
        .col_expr(organization_domain::Column::VerifiedAt, Expr::value(Option::<i64>::None))
        .col_expr(organization_domain::Column::LostAt, Expr::value(Option::<i64>::None))
        // Verified again later, the domain is not enforced again without an administrator saying so.
        .col_expr(organization_domain::Column::EnforceSso, Expr::value(false))
        .filter(organization_domain::Column::Id.eq(claim_id))
        .exec(scope.db)
        .await?;
    Ok(())
}

/// Switches enforced SSO for a verified claim; `false` when the claim is not verified.
pub async fn set_enforced(scope: Scoped<'_>, claim_id: &str, enforced: bool) -> StoreResult<bool> {
    let result = scope
        .update::<organization_domain::Entity>()
        .col_expr(organization_domain::Column::EnforceSso, Expr::value(enforced))
        .filter(organization_domain::Column::Id.eq(claim_id))
        .filter(organization_domain::Column::VerifiedDomain.is_not_null())
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Removes the claim: whether there was one.
pub async fn delete(scope: Scoped<'_>, organization_id: &str, domain: &str) -> StoreResult<bool> {
    let result = scope
        .delete::<organization_domain::Entity>()
        .filter(organization_domain::Column::OrganizationId.eq(organization_id))
        .filter(organization_domain::Column::Domain.eq(domain))
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected > 0)
}
