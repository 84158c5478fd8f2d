//! OAuth clients and the origins they may be called from. A client's secret and registration access
//! token are stored as hashes only. `client_origins` holds one row per (client, origin) so a CORS
//! preflight, which names no client, is one primary-key lookup.

use entity::{client, client_origin};
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter, QueryOrder};

use super::{Scoped, StoreResult, to_json_list};

/// A client's row as stored (lists as JSON text); `client::from_row` reads it into a `Client`.
pub use entity::client::Model as ClientRow;

/// What re-registration (RFC 7592 §2.2) replaces: the client metadata, not its id, secret or token.
pub struct Metadata<'a> {
    pub name: &'a str,
    pub redirect_uris: &'a [String],
    pub post_logout_redirect_uris: &'a [String],
    pub grant_types: &'a [String],
    pub scopes: &'a [String],
    /// The registration request as JSON text.
    pub registration_metadata: Option<String>,
    pub userinfo_alg: Option<&'a str>,
    pub allowed_origins: &'a [String],
}

/// Stores a client and the origins it allows; a client id already taken fails on the unique index.
pub async fn insert(scope: Scoped<'_>, row: ClientRow, origins: &[String]) -> StoreResult<()> {
    let client_id = row.client_id.clone();
    scope.insert::<client::Entity, _>(row).await?;
    replace_origins(scope, &client_id, origins).await
}

/// Replaces the rows naming the origins a client allows.
async fn replace_origins(scope: Scoped<'_>, client_id: &str, origins: &[String]) -> StoreResult<()> {
    forget_origins(scope, client_id).await?;
    for origin in origins {
        let row = client_origin::ActiveModel {
            origin: Set(origin.clone()),
            client_id: Set(client_id.to_owned()),
            ..Default::default()
        };
        scope.insert::<client_origin::Entity, _>(row).await?;
    }
    Ok(())
}

async fn forget_origins(scope: Scoped<'_>, client_id: &str) -> StoreResult<()> {
    scope.delete::<client_origin::Entity>().filter(client_origin::Column::ClientId.eq(client_id)).exec(scope.db).await?;
    Ok(())
}

/// Whether any client of the tenant allows `origin`.
pub async fn any_allows_origin(scope: Scoped<'_>, origin: &str) -> StoreResult<bool> {
    let row = scope.select::<client_origin::Entity>().filter(client_origin::Column::Origin.eq(origin)).one(scope.db).await?;
    Ok(row.is_some())
}

pub async fn find(scope: Scoped<'_>, client_id: &str) -> StoreResult<Option<ClientRow>> {
    Ok(scope.select::<client::Entity>().filter(client::Column::ClientId.eq(client_id)).one(scope.db).await?)
}

/// Every client of the tenant, oldest first.
pub async fn all(scope: Scoped<'_>) -> StoreResult<Vec<ClientRow>> {
    Ok(scope.select::<client::Entity>().order_by_asc(client::Column::CreatedAt).all(scope.db).await?)
}

/// Replaces a dynamically registered client's metadata and origins; returns whether there was one.
/// An operator-registered client is never changed here.
pub async fn replace_registration(
    scope: Scoped<'_>,
    client_id: &str,
    new: Metadata<'_>,
    origins: &[String],
) -> StoreResult<bool> {
    let result = scope
        .update::<client::Entity>()
        .col_expr(client::Column::Name, new.name.into())
        .col_expr(client::Column::RedirectUris, to_json_list(new.redirect_uris).into())
        .col_expr(client::Column::PostLogoutRedirectUris, to_json_list(new.post_logout_redirect_uris).into())
        .col_expr(client::Column::GrantTypes, to_json_list(new.grant_types).into())
        .col_expr(client::Column::Scopes, to_json_list(new.scopes).into())
        .col_expr(client::Column::RegistrationMetadata, new.registration_metadata.into())
        .col_expr(client::Column::UserinfoAlg, new.userinfo_alg.map(str::to_owned).into())
        .col_expr(client::Column::AllowedOrigins, Some(to_json_list(new.allowed_origins)).into())
        .filter(client::Column::ClientId.eq(client_id))
        .filter(client::Column::RegisteredDynamically.eq(true))
        .exec(scope.db)
        .await?;
    origins_of_updated(scope, client_id, result.rows_affected, origins).await
}

/// After an UPDATE of a client's row: its origins are replaced too, if there was a row to change.
async fn origins_of_updated(scope: Scoped<'_>, client_id: &str, rows_affected: u64, origins: &[String]) -> StoreResult<bool> {
    if rows_affected == 0 {
        return Ok(false);
    }
    replace_origins(scope, client_id, origins).await?;
    Ok(true)
}

/// What an operator may change in place on a client it manages.
pub struct Settings<'a> {
    pub name: &'a str,
    pub redirect_uris: &'a [String],
    pub post_logout_redirect_uris: &'a [String],
    pub scopes: &'a [String],
    pub allowed_origins: &'a [String],
    pub first_party: bool,
}

/// Changes an operator-managed client's settings and its origins (never a self-registered one's).
pub async fn update_settings(scope: Scoped<'_>, client_id: &str, new: Settings<'_>, origins: &[String]) -> StoreResult<bool> {
    let result = scope
        .update::<client::Entity>()
        .col_expr(client::Column::Name, new.name.into())
        .col_expr(client::Column::RedirectUris, to_json_list(new.redirect_uris).into())
        .col_expr(client::Column::PostLogoutRedirectUris, to_json_list(new.post_logout_redirect_uris).into())
        .col_expr(client::Column::Scopes, to_json_list(new.scopes).into())
        .col_expr(client::Column::AllowedOrigins, Some(to_json_list(new.allowed_origins)).into())
        .col_expr(client::Column::FirstParty, new.first_party.into())
        .filter(client::Column::ClientId.eq(client_id))
        .filter(client::Column::RegisteredDynamically.eq(false))
        .exec(scope.db)
        .await?;
    origins_of_updated(scope, client_id, result.rows_affected, origins).await
}

/// The new secret becomes current and the current one the previous, valid until `previous_until`,
/// in one UPDATE (the columns' old values are read by the same statement): concurrent rotations
/// each leave a consistent pair. Only a confidential client has a secret to rotate.
pub async fn rotate_secret(
    scope: Scoped<'_>,
    client_id: &str,
    hash: Vec<u8>,
    prefix: String,
    previous_until: i64,
) -> StoreResult<bool> {
    use sea_orm::sea_query::Expr;
    let result = scope
        .update::<client::Entity>()
        .col_expr(client::Column::PreviousSecretHash, Expr::col(client::Column::SecretHash))
        .col_expr(client::Column::PreviousSecretPrefix, Expr::col(client::Column::SecretPrefix))
        .col_expr(client::Column::PreviousSecretExpiresAt, Expr::value(previous_until))
        .col_expr(client::Column::SecretHash, Expr::value(hash))
        .col_expr(client::Column::SecretPrefix, Expr::value(prefix))
        .filter(client::Column::ClientId.eq(client_id))
        .filter(client::Column::SecretHash.is_not_null())
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Sets who may introspect through this client: every token, or those of the listed resources (JSON).
pub async fn set_introspection(scope: Scoped<'_>, client_id: &str, all: bool, resources: String) -> StoreResult<bool> {
    let result = scope
        .update::<client::Entity>()
        .col_expr(client::Column::IntrospectAll, all.into())
        .col_expr(client::Column::IntrospectResources, resources.into())
        .filter(client::Column::ClientId.eq(client_id))
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected == 1)
}

pub async fn link_service_account(scope: Scoped<'_>, client_id: &str, service_account_id: &str) -> StoreResult<()> {
    scope
        .update::<client::Entity>()
        .col_expr(client::Column::ServiceAccountId, service_account_id.into())
        .filter(client::Column::ClientId.eq(client_id))
        .exec(scope.db)
        .await?;
    Ok(())
}

/// Records the first use; a conditional UPDATE, so only the first use writes.
pub async fn mark_first_use(scope: Scoped<'_>, client_id: &str, now: i64) -> StoreResult<()> {
    scope
        .update::<client::Entity>()
        .col_expr(client::Column::FirstUsedAt, now.into())
        .filter(client::Column::ClientId.eq(client_id))
        .filter(client::Column::FirstUsedAt.is_null())
        .exec(scope.db)
        .await?;
    Ok(())
}

/// Deletes the client and its origins; returns whether there was one.
pub async fn delete(scope: Scoped<'_>, client_id: &str) -> StoreResult<bool> {
    forget_origins(scope, client_id).await?;
    let result = scope.delete::<client::Entity>().filter(client::Column::ClientId.eq(client_id)).exec(scope.db).await?;
    Ok(result.rows_affected > 0)
}
