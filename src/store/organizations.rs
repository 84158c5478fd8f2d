//! Organizations and their members: one organization row per slug, at most one membership per person
//! in a tenant (`organization` checks slugs and roles).

use entity::{organization, organization_member, user};
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter, QueryOrder};

use super::{Scoped, StoreResult, from_json_list, to_json_list};

#[derive(Debug, Clone)]
pub struct Organization {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
}

/// What a token says about its subject's organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub organization: String,
    pub roles: Vec<String>,
}

pub struct StoredMember {
    pub organization_id: String,
}

pub fn from_row(row: organization::Model) -> Organization {
    Organization { id: row.id, slug: row.slug, name: row.name, created_at: row.created_at }
}

/// A membership row joined with its organization (both tenant-scoped; a membership always comes with
/// its organization). For the queries that join them into a larger read (the refresh grant's).
pub fn membership(
    member: Option<organization_member::Model>,
    organization: Option<organization::Model>,
) -> StoreResult<Option<Membership>> {
    match (member, organization) {
        (Some(member), Some(organization)) => {
            Ok(Some(Membership { organization: organization.slug, roles: from_json_list(&member.roles)? }))
        }
        _ => Ok(None),
    }
}

/// Stores an organization; a slug already taken in the tenant fails on the unique index.
pub async fn insert(scope: Scoped<'_>, id: &str, slug: &str, name: &str, now: i64) -> StoreResult<Organization> {
    let row = organization::Model {
        id: id.to_owned(),
        tenant_id: scope.tenant_id().to_owned(),
        slug: slug.to_owned(),
        name: name.to_owned(),
        created_at: now,
    };
    scope.insert::<organization::Entity, _>(row.clone()).await?;
    Ok(from_row(row))
}

pub async fn find_by_slug(scope: Scoped<'_>, slug: &str) -> StoreResult<Option<Organization>> {
    Ok(scope.select::<organization::Entity>().filter(organization::Column::Slug.eq(slug)).one(scope.db).await?.map(from_row))
}

pub async fn find(scope: Scoped<'_>, id: &str) -> StoreResult<Option<Organization>> {
    Ok(scope.select::<organization::Entity>().filter(organization::Column::Id.eq(id)).one(scope.db).await?.map(from_row))
}

/// Every organization of the tenant, by slug.
pub async fn all(scope: Scoped<'_>) -> StoreResult<Vec<Organization>> {
    Ok(scope
        .select::<organization::Entity>()
        .order_by_asc(organization::Column::Slug)
        .all(scope.db)
        .await?
        .into_iter()
        .map(from_row)
        .collect())
}

/// The person's membership row, whichever organization it is in.
pub async fn member(scope: Scoped<'_>, user_id: &str) -> StoreResult<Option<StoredMember>> {
    Ok(scope
        .select::<organization_member::Entity>()
        .filter(organization_member::Column::UserId.eq(user_id))
        .one(scope.db)
        .await?
        .map(|row| StoredMember { organization_id: row.organization_id }))
}

pub async fn set_roles(scope: Scoped<'_>, user_id: &str, roles: &[String]) -> StoreResult<()> {
    scope
        .update::<organization_member::Entity>()
        .col_expr(organization_member::Column::Roles, to_json_list(roles).into())
        .filter(organization_member::Column::UserId.eq(user_id))
        .exec(scope.db)
        .await?;
    Ok(())
}

/// Adds a membership; a person already in an organization of the tenant fails on the unique index.
pub async fn insert_member(scope: Scoped<'_>, id: &str, organization_id: &str, user_id: &str, roles: &[String], now: i64) -> StoreResult<()> {
    let row = organization_member::ActiveModel {
        id: Set(id.to_owned()),
        organization_id: Set(organization_id.to_owned()),
        user_id: Set(user_id.to_owned()),
        roles: Set(to_json_list(roles)),
        created_at: Set(now),
        ..Default::default()
    };
    scope.insert::<organization_member::Entity, _>(row).await
}

/// Removes the person from this organization: whether they were in it.
pub async fn delete_member(scope: Scoped<'_>, organization_id: &str, user_id: &str) -> StoreResult<bool> {
    let result = scope
        .delete::<organization_member::Entity>()
        .filter(organization_member::Column::OrganizationId.eq(organization_id))
        .filter(organization_member::Column::UserId.eq(user_id))
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// The organization's members: user id, address and roles, by address (one query).
pub async fn members(scope: Scoped<'_>, organization_id: &str) -> StoreResult<Vec<(String, String, Vec<String>)>> {
    let rows = scope
        .select_with::<organization_member::Entity, user::Entity>()
        .filter(organization_member::Column::OrganizationId.eq(organization_id))
        .order_by_asc(user::Column::Email)
        .all(scope.db)
        .await?;
    rows.into_iter()
        .filter_map(|(member, user)| user.map(|user| (member, user)))
        .map(|(member, user)| Ok((member.user_id, user.email, from_json_list(&member.roles)?)))
        .collect()
}

/// The organization a person belongs to, and their roles there (one query: it runs for every token
/// issued to a person, refreshes included).
pub async fn membership_of(scope: Scoped<'_>, user_id: &str) -> StoreResult<Option<Membership>> {
    let found = scope
        .select_with::<organization_member::Entity, organization::Entity>()
        .filter(organization_member::Column::UserId.eq(user_id))
        .one(scope.db)
        .await?;
    match found {
        Some((member, organization)) => membership(Some(member), organization),
        None => Ok(None),
    }
}
