//! SCIM directory rows (`scim` decides what they mean): one directory per organization, its bearer
//! tokens (hashes only), and the users and groups an identity provider provisions into it.
//!
//! A user's or group's document changes only through a write that names the version it was read at
//! (optimistic concurrency: a stale write changes nothing and says so), and its searchable columns
//! and email rows change in the same transaction. Group members are rows of their own: adding
//! members inserts rows (`ON CONFLICT DO NOTHING`, so a duplicate add is a no-op) and bumps the
//! group's version by an atomic increment, so concurrent PATCHes on one group never lose a member.

use entity::{scim_directory, scim_group, scim_group_member, scim_token, scim_user, scim_user_email};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Expr, ExprTrait, Query},
};

use super::{Scoped, StoreError, StoreResult, unique_violation};

pub use scim_directory::Model as DirectoryRow;
pub use scim_group::Model as GroupRow;
pub use scim_token::Model as TokenRow;
pub use scim_user::Model as UserRow;

/// On SQLite, this node's directory writes take turns here. SQLite has one writer at a time, and a
/// writer that finds the lock taken sleeps in its busy handler (1, 2, 5, 10 … 100 ms), so concurrent
/// provisioning requests on separate pooled connections left the core idle and the p99 at ~120 ms;
/// queued in process they wait only for each other. PostgreSQL locks rows: no turns there.
static SQLITE_TURNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn turn<C: ConnectionTrait>(db: &C) -> Option<tokio::sync::MutexGuard<'static, ()>> {
    match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => Some(SQLITE_TURNS.lock().await),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------------
// Directories and tokens

/// Creates the organization's directory; `false` when it has one (the unique index decides a race).
pub async fn insert_directory(scope: Scoped<'_>, row: DirectoryRow) -> StoreResult<bool> {
    match scope.insert::<scim_directory::Entity, _>(row).await {
        Ok(()) => Ok(true),
        Err(e) if unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

pub async fn directory_of(scope: Scoped<'_>, organization_id: &str) -> StoreResult<Option<DirectoryRow>> {
    Ok(scope
        .select::<scim_directory::Entity>()
        .filter(scim_directory::Column::OrganizationId.eq(organization_id))
        .one(scope.db)
        .await?)
}

pub async fn set_role_map(scope: Scoped<'_>, directory_id: &str, role_map: &str) -> StoreResult<()> {
    scope
        .update::<scim_directory::Entity>()
        .col_expr(scim_directory::Column::RoleMap, Expr::value(role_map))
        .filter(scim_directory::Column::Id.eq(directory_id))
        .exec(scope.db)
        .await?;
    Ok(())
}

pub async fn insert_token(scope: Scoped<'_>, row: TokenRow) -> StoreResult<()> {
    scope.insert::<scim_token::Entity, _>(row).await
}

/// The directory's tokens, newest first (revoked ones included, for the admin page).
pub async fn tokens(scope: Scoped<'_>, directory_id: &str) -> StoreResult<Vec<TokenRow>> {
    Ok(scope
        .select::<scim_token::Entity>()
        .filter(scim_token::Column::DirectoryId.eq(directory_id))
        .order_by_desc(scim_token::Column::CreatedAt)
        .all(scope.db)
        .await?)
}

/// The unrevoked token with this hash, with its directory and the directory's organization. Three
/// primary-key reads: as one three-table join, PostgreSQL spent ~1.4 ms planning it (measured), more
/// than the two reads it saves.
pub async fn find_live_token(scope: Scoped<'_>, token_hash: &str) -> StoreResult<Option<(TokenRow, DirectoryRow, super::organizations::Organization)>> {
    let Some(token) = scope
        .select::<scim_token::Entity>()
        .filter(scim_token::Column::TokenHash.eq(token_hash))
        .filter(scim_token::Column::RevokedAt.is_null())
        .one(scope.db)
        .await?
    else {
        return Ok(None);
    };
    let Some(directory) = scope.select::<scim_directory::Entity>().filter(scim_directory::Column::Id.eq(&token.directory_id)).one(scope.db).await? else {
        return Ok(None);
    };
    let organization = super::organizations::find(scope, &directory.organization_id).await?;
    Ok(organization.map(|organization| (token, directory, organization)))
}

/// Revokes one of the directory's tokens; `false` when it names none, or one already revoked.
pub async fn revoke_token(scope: Scoped<'_>, directory_id: &str, token_id: &str, now: i64) -> StoreResult<bool> {
    let result = scope
        .update::<scim_token::Entity>()
        .col_expr(scim_token::Column::RevokedAt, Expr::value(now))
        .filter(scim_token::Column::Id.eq(token_id))
        .filter(scim_token::Column::DirectoryId.eq(directory_id))
        .filter(scim_token::Column::RevokedAt.is_null())
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Records a token's use, at most once per `interval` seconds (a write per request would make every
/// provisioning call a write to the token row too).
pub async fn token_used(scope: Scoped<'_>, token_id: &str, now: i64, interval: i64) -> StoreResult<()> {
    scope
        .update::<scim_token::Entity>()
        .col_expr(scim_token::Column::LastUsedAt, Expr::value(now))
        .filter(scim_token::Column::Id.eq(token_id))
        .filter(
            Condition::any()
                .add(scim_token::Column::LastUsedAt.is_null())
                .add(scim_token::Column::LastUsedAt.lt(now - interval)),
        )
        .exec(scope.db)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Queries

/// What a list query can ask of the indexes: the domain turns the indexable part of a filter into
/// this (`scim::query`), and the rest is evaluated on the rows it selects.
#[derive(Debug, Clone, PartialEq)]
pub enum Narrowing {
    All,
    Is(Indexed, String),
    /// An email address, case-folded (users only).
    Email(String),
    And(Vec<Narrowing>),
    Or(Vec<Narrowing>),
}

/// The columns a narrowing may name. Keys are case-folded by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexed {
    Id,
    /// `userName` (users) or `displayName` (groups), case-folded.
    NameKey,
    ExternalId,
    /// A user's `displayName`, case-folded.
    DisplayNameKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Created,
    Id,
    NameKey,
    DisplayNameKey,
    ExternalId,
}

fn user_condition(directory_id: &str, tenant_id: &str, narrowing: &Narrowing) -> Condition {
    match narrowing {
        Narrowing::All => Condition::all(),
        Narrowing::Is(column, value) => {
            let column = match column {
                Indexed::Id => scim_user::Column::Id,
                Indexed::NameKey => scim_user::Column::UserNameKey,
                Indexed::ExternalId => scim_user::Column::ExternalId,
                Indexed::DisplayNameKey => scim_user::Column::DisplayNameKey,
            };
            Condition::all().add(column.eq(value.as_str()))
        }
        Narrowing::Email(address) => {
            let mut holders = Query::select();
            holders
                .column(scim_user_email::Column::UserId)
                .from(scim_user_email::Entity)
                .and_where(scim_user_email::Column::TenantId.eq(tenant_id))
                .and_where(scim_user_email::Column::DirectoryId.eq(directory_id))
                .and_where(scim_user_email::Column::ValueKey.eq(address.as_str()));
            Condition::all().add(scim_user::Column::Id.in_subquery(holders.take()))
        }
        Narrowing::And(parts) => parts.iter().fold(Condition::all(), |c, p| c.add(user_condition(directory_id, tenant_id, p))),
        Narrowing::Or(parts) => parts.iter().fold(Condition::any(), |c, p| c.add(user_condition(directory_id, tenant_id, p))),
    }
}

fn group_condition(narrowing: &Narrowing) -> Condition {
    match narrowing {
        Narrowing::All => Condition::all(),
        Narrowing::Is(column, value) => {
            let column = match column {
                Indexed::Id => scim_group::Column::Id,
                Indexed::NameKey | Indexed::DisplayNameKey => scim_group::Column::DisplayNameKey,
                Indexed::ExternalId => scim_group::Column::ExternalId,
            };
            Condition::all().add(column.eq(value.as_str()))
        }
        // Groups have no email rows: nothing matches.
        Narrowing::Email(_) => Condition::all().add(Expr::value(false)),
        Narrowing::And(parts) => parts.iter().fold(Condition::all(), |c, p| c.add(group_condition(p))),
        Narrowing::Or(parts) => parts.iter().fold(Condition::any(), |c, p| c.add(group_condition(p))),
    }
}

/// A page of the directory's users the narrowing selects, in `order` (ties by id).
pub async fn users(
    scope: Scoped<'_>,
    directory_id: &str,
    narrowing: &Narrowing,
    order: (Order, bool),
    offset: u64,
    limit: u64,
) -> StoreResult<Vec<UserRow>> {
    let column = match order.0 {
        Order::Created => scim_user::Column::CreatedAt,
        Order::Id => scim_user::Column::Id,
        Order::NameKey => scim_user::Column::UserNameKey,
        Order::DisplayNameKey => scim_user::Column::DisplayNameKey,
        Order::ExternalId => scim_user::Column::ExternalId,
    };
    let direction = if order.1 { sea_orm::Order::Asc } else { sea_orm::Order::Desc };
    Ok(users_select(scope, directory_id, narrowing)
        .order_by(column, direction.clone())
        .order_by(scim_user::Column::Id, direction)
        .offset(offset)
        .limit(limit)
        .all(scope.db)
        .await?)
}

fn users_select(scope: Scoped<'_>, directory_id: &str, narrowing: &Narrowing) -> sea_orm::Select<scim_user::Entity> {
    scope
        .select::<scim_user::Entity>()
        .filter(scim_user::Column::DirectoryId.eq(directory_id))
        .filter(user_condition(directory_id, scope.tenant_id(), narrowing))
}

pub async fn count_users(scope: Scoped<'_>, directory_id: &str, narrowing: &Narrowing) -> StoreResult<u64> {
    Ok(users_select(scope, directory_id, narrowing).count(scope.db).await?)
}

pub async fn groups(
    scope: Scoped<'_>,
    directory_id: &str,
    narrowing: &Narrowing,
    order: (Order, bool),
    offset: u64,
    limit: u64,
) -> StoreResult<Vec<GroupRow>> {
    let column = match order.0 {
        Order::Created => scim_group::Column::CreatedAt,
        Order::Id => scim_group::Column::Id,
        Order::NameKey | Order::DisplayNameKey => scim_group::Column::DisplayNameKey,
        Order::ExternalId => scim_group::Column::ExternalId,
    };
    let direction = if order.1 { sea_orm::Order::Asc } else { sea_orm::Order::Desc };
    Ok(groups_select(scope, directory_id, narrowing)
        .order_by(column, direction.clone())
        .order_by(scim_group::Column::Id, direction)
        .offset(offset)
        .limit(limit)
        .all(scope.db)
        .await?)
}

fn groups_select(scope: Scoped<'_>, directory_id: &str, narrowing: &Narrowing) -> sea_orm::Select<scim_group::Entity> {
    scope.select::<scim_group::Entity>().filter(scim_group::Column::DirectoryId.eq(directory_id)).filter(group_condition(narrowing))
}

pub async fn count_groups(scope: Scoped<'_>, directory_id: &str, narrowing: &Narrowing) -> StoreResult<u64> {
    Ok(groups_select(scope, directory_id, narrowing).count(scope.db).await?)
}

// ---------------------------------------------------------------------------------------------------
// Users

/// A user's document and the columns derived from it, as the domain wrote them.
#[derive(Debug, Clone)]
pub struct UserWrite {
    pub user_name: String,
    pub user_name_key: String,
    pub external_id: Option<String>,
    pub display_name_key: Option<String>,
    pub active: bool,
    pub document: String,
    /// Case-folded addresses, each once.
    pub emails: Vec<String>,
}

/// What a conditional write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Stored; the resource's new version.
    Done(i64),
    /// The resource changed since it was read (or is gone): nothing was written.
    Stale,
    /// Another resource of the directory has this userName: nothing was written.
    NameTaken,
}

fn email_rows(tenant_id: &str, directory_id: &str, user_id: &str, emails: &[String]) -> Vec<scim_user_email::Model> {
    emails
        .iter()
        .map(|value| scim_user_email::Model {
            tenant_id: tenant_id.to_owned(),
            directory_id: directory_id.to_owned(),
            value_key: value.clone(),
            user_id: user_id.to_owned(),
        })
        .collect()
}

/// The account a new directory user is provisioned with, written in the user's own transaction.
#[derive(Debug, Clone)]
pub struct AccountLink<'a> {
    /// The account: an existing one, or (with `new_email`) one to create with this id.
    pub id: &'a str,
    pub new_email: Option<&'a str>,
    /// Names to set, when they differ from the account's.
    pub profile: Option<super::users::Profile>,
    /// A membership to make (its id, the organization), when the account has none.
    pub membership: Option<(&'a str, &'a str)>,
}

/// Inserts a directory user with its email rows and, given `account`, links it to that account (made
/// if new) with its names and membership — one transaction, one commit. Returns what was written and
/// the account linked: `None` when the account was made or taken meanwhile by another directory user,
/// and the user was then stored without one.
pub async fn insert_user(
    scope: Scoped<'_>,
    directory_id: &str,
    id: &str,
    write: UserWrite,
    now: i64,
    account: Option<AccountLink<'_>>,
) -> StoreResult<(Written, Option<String>)> {
    match insert_user_once(scope, directory_id, id, write.clone(), now, account.as_ref()).await {
        Err(e) if account.is_some() && unique_violation(&e) => {
            // The account link lost a race (one directory user per account): store the user alone.
            Ok((insert_user_once(scope, directory_id, id, write, now, None).await?.0, None))
        }
        other => other,
    }
}

async fn insert_user_once(
    scope: Scoped<'_>,
    directory_id: &str,
    id: &str,
    write: UserWrite,
    now: i64,
    account: Option<&AccountLink<'_>>,
) -> StoreResult<(Written, Option<String>)> {
    use entity::{organization_member, user};
    use sea_orm::ActiveValue::Set;
    let _turn = turn(scope.db).await;
    let txn = scope.db.begin().await?;
    let tx = Scoped::new(&txn, scope.tenant_id());
    let row = UserRow {
        id: id.to_owned(),
        tenant_id: String::new(),
        directory_id: directory_id.to_owned(),
        user_name: write.user_name,
        user_name_key: write.user_name_key,
        external_id: write.external_id,
        display_name_key: write.display_name_key,
        active: write.active,
        account_id: None,
        document: write.document,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    // ON CONFLICT on the userName key: a conflict must not abort a PostgreSQL transaction.
    if !tx.insert_if_absent::<scim_user::Entity, _>(row, [scim_user::Column::TenantId, scim_user::Column::DirectoryId, scim_user::Column::UserNameKey]).await? {
        return Ok((Written::NameTaken, None));
    }
    tx.insert_many_if_absent::<scim_user_email::Entity, _>(
        email_rows(scope.tenant_id(), directory_id, id, &write.emails),
        [scim_user_email::Column::TenantId, scim_user_email::Column::DirectoryId, scim_user_email::Column::ValueKey, scim_user_email::Column::UserId],
    )
    .await?;
    let mut linked = None;
    if let Some(link) = account {
        let mut account_id = link.id.to_owned();
        if let Some(email) = link.new_email {
            let person = user::ActiveModel {
                id: Set(link.id.to_owned()),
                email: Set(email.to_owned()),
                email_verified: Set(true),
                created_at: Set(now),
                last_sign_in_at: Set(None),
                disabled_at: Set(None),
                passkey_handle: Set(None),
                ..Default::default()
            };
            if !tx.insert_if_absent::<user::Entity, _>(person, [user::Column::TenantId, user::Column::Email]).await? {
                // Made meanwhile (a sign-in): that account.
                let existing: Option<String> =
                    tx.select::<user::Entity>().select_only().column(user::Column::Id).filter(user::Column::Email.eq(email)).into_tuple().one(&txn).await?;
                account_id = existing.ok_or_else(|| StoreError::Corrupt("account vanished".into()))?;
            }
        }
        // The unique index on the account decides a race between directory users (see `insert_user`).
        tx.update::<scim_user::Entity>()
            .col_expr(scim_user::Column::AccountId, Expr::value(account_id.as_str()))
            .filter(scim_user::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        if let Some(profile) = &link.profile {
            tx.update::<user::Entity>()
                .col_expr(user::Column::Name, profile.name.clone().into())
                .col_expr(user::Column::GivenName, profile.given_name.clone().into())
                .col_expr(user::Column::FamilyName, profile.family_name.clone().into())
                .col_expr(user::Column::Locale, profile.locale.clone().into())
                .col_expr(user::Column::UpdatedAt, now.into())
                .filter(user::Column::Id.eq(account_id.as_str()))
                .exec(&txn)
                .await?;
        }
        if let Some((member_id, organization_id)) = link.membership {
            let member = organization_member::ActiveModel {
                id: Set(member_id.to_owned()),
                organization_id: Set(organization_id.to_owned()),
                user_id: Set(account_id.clone()),
                roles: Set("[]".into()),
                created_at: Set(now),
                ..Default::default()
            };
            tx.insert_if_absent::<organization_member::Entity, _>(member, [organization_member::Column::TenantId, organization_member::Column::UserId]).await?;
        }
        linked = Some(account_id);
    }
    txn.commit().await?;
    Ok((Written::Done(1), linked))
}

/// Replaces the user's document if it is still at `version`.
pub async fn update_user(scope: Scoped<'_>, directory_id: &str, id: &str, version: i64, write: UserWrite, now: i64) -> StoreResult<Written> {
    let _turn = turn(scope.db).await;
    let txn = scope.db.begin().await?;
    let tx = Scoped::new(&txn, scope.tenant_id());
    let updated = tx
        .update::<scim_user::Entity>()
        .col_expr(scim_user::Column::UserName, Expr::value(write.user_name))
        .col_expr(scim_user::Column::UserNameKey, Expr::value(write.user_name_key))
        .col_expr(scim_user::Column::ExternalId, Expr::value(write.external_id))
        .col_expr(scim_user::Column::DisplayNameKey, Expr::value(write.display_name_key))
        .col_expr(scim_user::Column::Active, Expr::value(write.active))
        .col_expr(scim_user::Column::Document, Expr::value(write.document))
        .col_expr(scim_user::Column::Version, Expr::value(version + 1))
        .col_expr(scim_user::Column::UpdatedAt, Expr::value(now))
        .filter(scim_user::Column::Id.eq(id))
        .filter(scim_user::Column::DirectoryId.eq(directory_id))
        .filter(scim_user::Column::Version.eq(version))
        .exec(&txn)
        .await;
    match updated {
        Ok(result) if result.rows_affected == 1 => {}
        Ok(_) => return Ok(Written::Stale),
        Err(e) if unique_violation(&StoreError::Db(e.clone())) => return Ok(Written::NameTaken),
        Err(e) => return Err(e.into()),
    }
    tx.delete::<scim_user_email::Entity>().filter(scim_user_email::Column::UserId.eq(id)).exec(&txn).await?;
    tx.insert_many_if_absent::<scim_user_email::Entity, _>(
        email_rows(scope.tenant_id(), directory_id, id, &write.emails),
        [scim_user_email::Column::TenantId, scim_user_email::Column::DirectoryId, scim_user_email::Column::ValueKey, scim_user_email::Column::UserId],
    )
    .await?;
    txn.commit().await?;
    Ok(Written::Done(version + 1))
}

pub async fn find_user(scope: Scoped<'_>, directory_id: &str, id: &str) -> StoreResult<Option<UserRow>> {
    find_user_in(scope, directory_id, id).await
}

/// The directory user provisioned for an account, in any directory of the tenant.
pub async fn user_of_account(scope: Scoped<'_>, account_id: &str) -> StoreResult<Option<UserRow>> {
    Ok(scope.select::<scim_user::Entity>().filter(scim_user::Column::AccountId.eq(account_id)).one(scope.db).await?)
}

/// The directory's users with this `externalId` (case-exact).
pub async fn users_by_external_id(scope: Scoped<'_>, directory_id: &str, external_id: &str) -> StoreResult<Vec<UserRow>> {
    Ok(scope
        .select::<scim_user::Entity>()
        .filter(scim_user::Column::DirectoryId.eq(directory_id))
        .filter(scim_user::Column::ExternalId.eq(external_id))
        .limit(2)
        .all(scope.db)
        .await?)
}

/// Links the directory user to an account; `false` when the account already has a directory user.
pub async fn set_account(scope: Scoped<'_>, id: &str, account_id: &str) -> StoreResult<bool> {
    let result = scope
        .update::<scim_user::Entity>()
        .col_expr(scim_user::Column::AccountId, Expr::value(account_id))
        .filter(scim_user::Column::Id.eq(id))
        .exec(scope.db)
        .await;
    match result {
        Ok(r) => Ok(r.rows_affected == 1),
        Err(e) if unique_violation(&StoreError::Db(e.clone())) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the user, its email rows and its group memberships; returns the row it deleted.
pub async fn delete_user(scope: Scoped<'_>, directory_id: &str, id: &str) -> StoreResult<Option<UserRow>> {
    let _turn = turn(scope.db).await;
    let txn = scope.db.begin().await?;
    let tx = Scoped::new(&txn, scope.tenant_id());
    let Some(row) = find_user_in(tx, directory_id, id).await? else { return Ok(None) };
    tx.delete::<scim_user::Entity>().filter(scim_user::Column::Id.eq(id)).exec(&txn).await?;
    tx.delete::<scim_user_email::Entity>().filter(scim_user_email::Column::UserId.eq(id)).exec(&txn).await?;
    let groups: Vec<String> = tx
        .select::<scim_group_member::Entity>()
        .filter(scim_group_member::Column::UserId.eq(id))
        .all(&txn)
        .await?
        .into_iter()
        .map(|m| m.group_id)
        .collect();
    tx.delete::<scim_group_member::Entity>().filter(scim_group_member::Column::UserId.eq(id)).exec(&txn).await?;
    bump_groups(&tx, &groups).await?;
    txn.commit().await?;
    Ok(Some(row))
}

async fn find_user_in<C: ConnectionTrait>(scope: Scoped<'_, C>, directory_id: &str, id: &str) -> StoreResult<Option<UserRow>> {
    Ok(scope
        .select::<scim_user::Entity>()
        .filter(scim_user::Column::DirectoryId.eq(directory_id))
        .filter(scim_user::Column::Id.eq(id))
        .one(scope.db)
        .await?)
}

async fn bump_groups<C: ConnectionTrait>(tx: &Scoped<'_, C>, group_ids: &[String]) -> StoreResult<()> {
    if group_ids.is_empty() {
        return Ok(());
    }
    tx.update::<scim_group::Entity>()
        .col_expr(scim_group::Column::Version, Expr::col(scim_group::Column::Version).add(1))
        .filter(scim_group::Column::Id.is_in(group_ids.iter().map(String::as_str)))
        .exec(tx.db)
        .await?;
    Ok(())
}

/// Which of `ids` are users of the directory.
pub async fn existing_users(scope: Scoped<'_>, directory_id: &str, ids: &[String]) -> StoreResult<Vec<String>> {
    let mut found = Vec::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<String> = scope
            .select::<scim_user::Entity>()
            .select_only()
            .column(scim_user::Column::Id)
            .filter(scim_user::Column::DirectoryId.eq(directory_id))
            .filter(scim_user::Column::Id.is_in(chunk.iter().map(String::as_str)))
            .into_tuple()
            .all(scope.db)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

// ---------------------------------------------------------------------------------------------------
// Groups

#[derive(Debug, Clone)]
pub struct GroupWrite {
    pub display_name: String,
    pub display_name_key: String,
    pub external_id: Option<String>,
    pub document: String,
}

/// How a write changes a group's members (user ids of the directory).
#[derive(Debug, Clone, Default)]
pub struct MemberChanges {
    /// Remove every member first (PUT, `replace` or `remove` of `members`).
    pub clear: bool,
    pub remove: Vec<String>,
    pub add: Vec<String>,
}

impl MemberChanges {
    pub fn is_empty(&self) -> bool {
        !self.clear && self.remove.is_empty() && self.add.is_empty()
    }
}

fn member_rows(group_id: &str, users: &[String]) -> Vec<scim_group_member::Model> {
    users
        .iter()
        .map(|user_id| scim_group_member::Model { tenant_id: String::new(), group_id: group_id.to_owned(), user_id: user_id.clone() })
        .collect()
}

const MEMBER_KEY: [scim_group_member::Column; 3] =
    [scim_group_member::Column::TenantId, scim_group_member::Column::GroupId, scim_group_member::Column::UserId];

pub async fn insert_group(scope: Scoped<'_>, directory_id: &str, id: &str, write: GroupWrite, members: &[String], now: i64) -> StoreResult<()> {
    let _turn = turn(scope.db).await;
    let txn = scope.db.begin().await?;
    let tx = Scoped::new(&txn, scope.tenant_id());
    let row = GroupRow {
        id: id.to_owned(),
        tenant_id: String::new(),
        directory_id: directory_id.to_owned(),
        display_name: write.display_name,
        display_name_key: write.display_name_key,
        external_id: write.external_id,
        document: write.document,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    tx.insert::<scim_group::Entity, _>(row).await?;
    for chunk in members.chunks(500) {
        tx.insert_many_if_absent::<scim_group_member::Entity, _>(member_rows(id, chunk), MEMBER_KEY).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Changes a group: its document (only if it is still at `version`; `None` leaves the document as
/// it is and applies whatever version it has) and its members. Returns the new version.
pub async fn update_group(
    scope: Scoped<'_>,
    directory_id: &str,
    id: &str,
    document: Option<(i64, GroupWrite)>,
    members: &MemberChanges,
    now: i64,
) -> StoreResult<Written> {
    let _turn = turn(scope.db).await;
    let txn = scope.db.begin().await?;
    let tx = Scoped::new(&txn, scope.tenant_id());
    let mut update = tx
        .update::<scim_group::Entity>()
        .col_expr(scim_group::Column::Version, Expr::col(scim_group::Column::Version).add(1))
        .col_expr(scim_group::Column::UpdatedAt, Expr::value(now))
        .filter(scim_group::Column::Id.eq(id))
        .filter(scim_group::Column::DirectoryId.eq(directory_id));
    if let Some((version, write)) = document {
        update = update
            .col_expr(scim_group::Column::DisplayName, Expr::value(write.display_name))
            .col_expr(scim_group::Column::DisplayNameKey, Expr::value(write.display_name_key))
            .col_expr(scim_group::Column::ExternalId, Expr::value(write.external_id))
            .col_expr(scim_group::Column::Document, Expr::value(write.document))
            .filter(scim_group::Column::Version.eq(version));
    }
    // The increment also takes the row's write lock first, so member changes on one group queue.
    if update.exec(&txn).await?.rows_affected != 1 {
        return Ok(Written::Stale);
    }
    if members.clear {
        tx.delete::<scim_group_member::Entity>().filter(scim_group_member::Column::GroupId.eq(id)).exec(&txn).await?;
    }
    for chunk in members.remove.chunks(500) {
        tx.delete::<scim_group_member::Entity>()
            .filter(scim_group_member::Column::GroupId.eq(id))
            .filter(scim_group_member::Column::UserId.is_in(chunk.iter().map(String::as_str)))
            .exec(&txn)
            .await?;
    }
    for chunk in members.add.chunks(500) {
        tx.insert_many_if_absent::<scim_group_member::Entity, _>(member_rows(id, chunk), MEMBER_KEY).await?;
    }
    let version: Option<i64> = tx
        .select::<scim_group::Entity>()
        .select_only()
        .column(scim_group::Column::Version)
        .filter(scim_group::Column::Id.eq(id))
        .into_tuple()
        .one(&txn)
        .await?;
    txn.commit().await?;
    Ok(version.map_or(Written::Stale, Written::Done))
}

pub async fn find_group(scope: Scoped<'_>, directory_id: &str, id: &str) -> StoreResult<Option<GroupRow>> {
    Ok(scope
        .select::<scim_group::Entity>()
        .filter(scim_group::Column::DirectoryId.eq(directory_id))
        .filter(scim_group::Column::Id.eq(id))
        .one(scope.db)
        .await?)
}

/// Deletes the group and its member rows; returns the user ids that were members.
pub async fn delete_group(scope: Scoped<'_>, directory_id: &str, id: &str) -> StoreResult<Option<Vec<String>>> {
    let _turn = turn(scope.db).await;
    let txn = scope.db.begin().await?;
    let tx = Scoped::new(&txn, scope.tenant_id());
    let deleted = tx
        .delete::<scim_group::Entity>()
        .filter(scim_group::Column::Id.eq(id))
        .filter(scim_group::Column::DirectoryId.eq(directory_id))
        .exec(&txn)
        .await?;
    if deleted.rows_affected != 1 {
        return Ok(None);
    }
    let members: Vec<String> = tx
        .select::<scim_group_member::Entity>()
        .filter(scim_group_member::Column::GroupId.eq(id))
        .all(&txn)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    tx.delete::<scim_group_member::Entity>().filter(scim_group_member::Column::GroupId.eq(id)).exec(&txn).await?;
    txn.commit().await?;
    Ok(Some(members))
}

/// The members (user ids) of each of these groups.
pub async fn members_of(scope: Scoped<'_>, group_ids: &[&str]) -> StoreResult<Vec<(String, String)>> {
    if group_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(scope
        .select::<scim_group_member::Entity>()
        .filter(scim_group_member::Column::GroupId.is_in(group_ids.iter().copied()))
        .order_by_asc(scim_group_member::Column::UserId)
        .all(scope.db)
        .await?
        .into_iter()
        .map(|m| (m.group_id, m.user_id))
        .collect())
}

/// The groups a user is a member of, by name order.
pub async fn groups_of(scope: Scoped<'_>, user_id: &str) -> StoreResult<Vec<GroupRow>> {
    let ids: Vec<String> = scope
        .select::<scim_group_member::Entity>()
        .filter(scim_group_member::Column::UserId.eq(user_id))
        .all(scope.db)
        .await?
        .into_iter()
        .map(|m| m.group_id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(scope
        .select::<scim_group::Entity>()
        .filter(scim_group::Column::Id.is_in(ids.iter().map(String::as_str)))
        .order_by_asc(scim_group::Column::DisplayNameKey)
        .all(scope.db)
        .await?)
}

/// The users (with their accounts) of each of these ids, for the role sync after member changes.
pub async fn users_by_ids(scope: Scoped<'_>, directory_id: &str, ids: &[String]) -> StoreResult<Vec<UserRow>> {
    let mut found = Vec::new();
    for chunk in ids.chunks(500) {
        found.extend(
            scope
                .select::<scim_user::Entity>()
                .filter(scim_user::Column::DirectoryId.eq(directory_id))
                .filter(scim_user::Column::Id.is_in(chunk.iter().map(String::as_str)))
                .all(scope.db)
                .await?,
        );
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, QueryTrait, Statement};

    use super::*;

    /// The lookups every provisioning run makes are index searches, never scans (SQLite has no
    /// statistics here, so this is the plan a fresh database gets).
    #[tokio::test]
    async fn directory_lookups_search_their_indexes() {
        let db = crate::store::connect("sqlite::memory:", 1).await.expect("connect");
        crate::store::migrate(&db).await.expect("migrate");
        let scope = Scoped::new(&db, "t1");
        let plan = |statement: Statement| {
            let db = &db;
            async move {
                let explain = Statement::from_sql_and_values(db.get_database_backend(), format!("EXPLAIN QUERY PLAN {}", statement.sql), statement.values.map(|v| v.0).unwrap_or_default());
                db.query_all_raw(explain)
                    .await
                    .expect("explain")
                    .iter()
                    .map(|row| row.try_get::<String>("", "detail").expect("detail"))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        };
        let backend = db.get_database_backend();
        for (narrowing, index) in [
            (Narrowing::Is(Indexed::NameKey, "ada@example.com".into()), "scim_users_by_user_name"),
            (Narrowing::Is(Indexed::ExternalId, "E-1".into()), "scim_users_by_external_id"),
            (Narrowing::Is(Indexed::DisplayNameKey, "ada".into()), "scim_users_by_display_name"),
            (Narrowing::Email("ada@example.com".into()), "sqlite_autoindex_scim_user_emails_1"),
        ] {
            let detail = plan(users_select(scope, "d1", &narrowing).build(backend)).await;
            assert!(detail.contains(&format!("INDEX {index}")) && !detail.contains("SCAN"), "{narrowing:?}: {detail}");
        }
        let groups_of = scope.select::<scim_group_member::Entity>().filter(scim_group_member::Column::UserId.eq("u1")).build(backend);
        let detail = plan(groups_of).await;
        assert!(detail.contains("scim_group_members_by_user"), "{detail}");
    }
}
