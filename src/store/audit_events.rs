//! The audit trail's table: rows are only inserted, never updated; the only deletion is retention,
//! oldest first. Ordering by `id` gives the sequence a later hash chain or export can follow. Not
//! tenant-scoped through `Scoped`: an event may belong to no tenant (operator actions), and the
//! operator reads across tenants.

use entity::audit_event;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, NotSet, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait,
};

use super::StoreResult;

/// A stored event, as the operator's listing shows it.
pub use entity::audit_event::Model as AuditRow;

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub tenant_id: Option<String>,
    pub occurred_at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub outcome: &'static str,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// JSON text.
    pub details: Option<String>,
}

fn row(event: NewEvent) -> audit_event::ActiveModel {
    audit_event::ActiveModel {
        id: NotSet,
        tenant_id: Set(event.tenant_id),
        occurred_at: Set(event.occurred_at),
        actor: Set(event.actor),
        action: Set(event.action),
        target: Set(event.target),
        outcome: Set(event.outcome.to_owned()),
        ip: Set(event.ip),
        user_agent: Set(event.user_agent),
        details: Set(event.details),
    }
}

pub async fn insert(db: &DatabaseConnection, event: NewEvent) -> StoreResult<()> {
    audit_event::Entity::insert(row(event)).exec_without_returning(db).await?;
    Ok(())
}

/// Many events in one INSERT (the group commit's).
pub async fn insert_many(db: &DatabaseConnection, events: Vec<NewEvent>) -> StoreResult<()> {
    audit_event::Entity::insert_many(events.into_iter().map(row)).exec_without_returning(db).await?;
    Ok(())
}

/// Deletes a tenant's events (`None`: those of no tenant) that occurred before `cutoff`, oldest first,
/// `batch` rows per statement. Returns how many.
pub async fn forget_before(db: &DatabaseConnection, tenant_id: Option<&str>, cutoff: i64, batch: u64) -> StoreResult<u64> {
    let of_tenant = || match tenant_id {
        Some(id) => audit_event::Column::TenantId.eq(id),
        None => audit_event::Column::TenantId.is_null(),
    };
    let mut total = 0;
    loop {
        let oldest = audit_event::Entity::find()
            .select_only()
            .column(audit_event::Column::Id)
            .filter(of_tenant())
            .filter(audit_event::Column::OccurredAt.lt(cutoff))
            .order_by_asc(audit_event::Column::Id)
            .limit(batch)
            .into_query();
        let deleted = audit_event::Entity::delete_many()
            .filter(of_tenant())
            .filter(audit_event::Column::Id.in_subquery(oldest))
            .exec(db)
            .await?
            .rows_affected;
        total += deleted;
        if deleted < batch {
            return Ok(total);
        }
    }
}

/// The most recent events of every tenant, newest first.
pub async fn recent(db: &DatabaseConnection, limit: u64) -> StoreResult<Vec<AuditRow>> {
    Ok(audit_event::Entity::find().order_by_desc(audit_event::Column::Id).limit(limit).all(db).await?)
}

/// The tenant's most recent events by actors whose name starts with `actor_prefix` (a SCIM
/// directory's tokens: `scim:{directory}:`), newest first.
pub async fn recent_by_actor(scope: super::Scoped<'_>, actor_prefix: &str, limit: u64) -> StoreResult<Vec<AuditRow>> {
    Ok(audit_event::Entity::find()
        .filter(audit_event::Column::TenantId.eq(scope.tenant_id()))
        .filter(audit_event::Column::Actor.starts_with(actor_prefix))
        .order_by_desc(audit_event::Column::Id)
        .limit(limit)
        .all(scope.db)
        .await?)
}
