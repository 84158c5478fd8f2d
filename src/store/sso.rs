//! Single sign-on rows (`sso` decides what they mean): connections, the IdP identities linked to
//! accounts (unique per IdP subject, and one per account), and the sign-in requests sent to an IdP,
//! each taken at most once, by the browser that started it, before it expires; and the SAML
//! assertions already accepted, each recorded once.

use entity::{sso_assertion, sso_connection, sso_identity, sso_request};
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, SqlErr, sea_query::Expr};

use super::{Scoped, StoreError, StoreResult};

pub use sso_connection::Model as ConnectionRow;
pub use sso_identity::Model as IdentityRow;
pub use sso_assertion::Model as AssertionRow;
pub use sso_request::Model as RequestRow;

pub async fn insert_connection(scope: Scoped<'_>, row: ConnectionRow) -> StoreResult<()> {
    scope.insert::<sso_connection::Entity, _>(row).await
}

pub async fn connection(scope: Scoped<'_>, id: &str) -> StoreResult<Option<ConnectionRow>> {
    Ok(scope.select::<sso_connection::Entity>().filter(sso_connection::Column::Id.eq(id)).one(scope.db).await?)
}

/// The organization's connections, oldest first.
pub async fn connections_of(scope: Scoped<'_>, organization_id: &str) -> StoreResult<Vec<ConnectionRow>> {
    Ok(scope
        .select::<sso_connection::Entity>()
        .filter(sso_connection::Column::OrganizationId.eq(organization_id))
        .order_by_asc(sso_connection::Column::CreatedAt)
        .all(scope.db)
        .await?)
}

pub async fn delete_connection(scope: Scoped<'_>, id: &str) -> StoreResult<bool> {
    let deleted = scope.delete::<sso_connection::Entity>().filter(sso_connection::Column::Id.eq(id)).exec(scope.db).await?;
    scope.delete::<sso_identity::Entity>().filter(sso_identity::Column::ConnectionId.eq(id)).exec(scope.db).await?;
    Ok(deleted.rows_affected > 0)
}

pub async fn identity(scope: Scoped<'_>, connection_id: &str, subject: &str) -> StoreResult<Option<IdentityRow>> {
    Ok(scope
        .select::<sso_identity::Entity>()
        .filter(sso_identity::Column::ConnectionId.eq(connection_id))
        .filter(sso_identity::Column::Subject.eq(subject))
        .one(scope.db)
        .await?)
}

/// The identity an account is linked to, whichever connection it belongs to.
pub async fn identity_of_user(scope: Scoped<'_>, user_id: &str) -> StoreResult<Option<IdentityRow>> {
    Ok(scope.select::<sso_identity::Entity>().filter(sso_identity::Column::UserId.eq(user_id)).one(scope.db).await?)
}

/// `Ok(false)` for an insert a unique index refused.
fn inserted(result: StoreResult<()>) -> StoreResult<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(StoreError::Db(error)) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Links an IdP subject to an account; `false` when the subject or the account is already linked
/// (a concurrent sign-in won: the unique indexes decide).
pub async fn insert_identity(scope: Scoped<'_>, row: IdentityRow) -> StoreResult<bool> {
    inserted(scope.insert::<sso_identity::Entity, _>(row).await)
}

/// Records a SAML assertion as used; `false` when it already was (a replay, on this node or
/// another: the primary key decides).
pub async fn record_assertion(scope: Scoped<'_>, row: AssertionRow) -> StoreResult<bool> {
    inserted(scope.insert::<sso_assertion::Entity, _>(row).await)
}

pub async fn identity_used(scope: Scoped<'_>, id: &str, now: i64) -> StoreResult<()> {
    scope
        .update::<sso_identity::Entity>()
        .col_expr(sso_identity::Column::LastUsedAt, Expr::value(now))
        .filter(sso_identity::Column::Id.eq(id))
        .exec(scope.db)
        .await?;
    Ok(())
}

pub async fn insert_request(scope: Scoped<'_>, row: RequestRow) -> StoreResult<()> {
    scope.insert::<sso_request::Entity, _>(row).await
}

/// Takes the request once: only with the browser binding it was created with, before it expires, and
/// only the first of several racing callers (a conditional UPDATE). A wrong binding consumes nothing.
pub async fn take_request(scope: Scoped<'_>, id: &str, binding_hash: &str, now: i64) -> StoreResult<Option<RequestRow>> {
    let claimed = scope
        .update::<sso_request::Entity>()
        .col_expr(sso_request::Column::ConsumedAt, Expr::value(now))
        .filter(sso_request::Column::Id.eq(id))
        .filter(sso_request::Column::BindingHash.eq(binding_hash))
        .filter(sso_request::Column::ConsumedAt.is_null())
        .filter(sso_request::Column::ExpiresAt.gt(now))
        .exec(scope.db)
        .await?;
    if claimed.rows_affected != 1 {
        return Ok(None);
    }
    Ok(scope.select::<sso_request::Entity>().filter(sso_request::Column::Id.eq(id)).one(scope.db).await?)
}
