//! Organizations: customer companies inside a tenant. Here, what tokens need from them: the
//! organization a person or a service account belongs to and the roles held there, carried as the
//! access token's `org` and `roles` so a resource server can apply the organization's rules offline.
//!
//! A person belongs to at most one organization of a tenant (the usual shape of a workforce directory;
//! see docs/organizations.md). Slugs are immutable: tokens and permission rules name organizations by
//! them.

use entity::{organization, organization_member};
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter, QueryOrder};

use crate::{
    client::valid_scope_token,
    crypto,
    store::{Scoped, StoreError, StoreResult, from_json_list, now, to_json_list},
};

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

#[derive(Debug, thiserror::Error)]
pub enum OrganizationError {
    #[error("organization slugs are 1-63 lowercase letters, digits and dashes")]
    InvalidSlug,
    #[error("organization {0:?} already exists")]
    Exists(String),
    #[error("no organization {0:?}")]
    NotFound(String),
    #[error("invalid role {0:?}: roles are scope-like tokens without spaces")]
    InvalidRole(String),
    #[error("that person already belongs to organization {0:?}")]
    AlreadyMember(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn valid_slug(slug: &str) -> bool {
    (1..=63).contains(&slug.len())
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
}

pub fn check_roles(roles: &[String]) -> Result<(), OrganizationError> {
    match roles.iter().find(|r| !valid_scope_token(r)) {
        Some(bad) => Err(OrganizationError::InvalidRole(bad.clone())),
        None => Ok(()),
    }
}

pub(crate) fn from_row(row: organization::Model) -> Organization {
    Organization { id: row.id, slug: row.slug, name: row.name, created_at: row.created_at }
}

pub async fn create(scope: Scoped<'_>, slug: &str, name: &str) -> Result<Organization, OrganizationError> {
    if !valid_slug(slug) {
        return Err(OrganizationError::InvalidSlug);
    }
    if find_by_slug(scope, slug).await?.is_some() {
        return Err(OrganizationError::Exists(slug.to_owned()));
    }
    let row = organization::Model {
        id: format!("org_{}", crypto::random_id()),
        tenant_id: scope.tenant_id().to_owned(),
        slug: slug.to_owned(),
        name: name.to_owned(),
        created_at: now(),
    };
    // Two racing creators: the unique index lets one win, the other gets a database error.
    scope.insert::<organization::Entity, _>(row.clone()).await?;
    Ok(from_row(row))
}

pub async fn find_by_slug(scope: Scoped<'_>, slug: &str) -> StoreResult<Option<Organization>> {
    Ok(scope
        .select::<organization::Entity>()
        .filter(organization::Column::Slug.eq(slug))
        .one(scope.db)
        .await?
        .map(from_row))
}

pub async fn find(scope: Scoped<'_>, id: &str) -> StoreResult<Option<Organization>> {
    Ok(scope
        .select::<organization::Entity>()
        .filter(organization::Column::Id.eq(id))
        .one(scope.db)
        .await?
        .map(from_row))
}

pub async fn list(scope: Scoped<'_>) -> StoreResult<Vec<Organization>> {
    Ok(scope
        .select::<organization::Entity>()
        .order_by_asc(organization::Column::Slug)
        .all(scope.db)
        .await?
        .into_iter()
        .map(from_row)
        .collect())
}

/// Makes a person a member with these roles, or changes the roles of an existing member.
pub async fn set_member(
    scope: Scoped<'_>,
    organization: &Organization,
    user_id: &str,
    roles: &[String],
) -> Result<(), OrganizationError> {
    check_roles(roles)?;
    let existing = scope
        .select::<organization_member::Entity>()
        .filter(organization_member::Column::UserId.eq(user_id))
        .one(scope.db)
        .await
        .map_err(StoreError::from)?;
    match existing {
        Some(member) if member.organization_id != organization.id => {
            let other = find(scope, &member.organization_id).await?.map(|o| o.slug).unwrap_or_default();
            Err(OrganizationError::AlreadyMember(other))
        }
        Some(_) => {
            scope
                .update::<organization_member::Entity>()
                .col_expr(organization_member::Column::Roles, to_json_list(roles).into())
                .filter(organization_member::Column::UserId.eq(user_id))
                .exec(scope.db)
                .await
                .map_err(StoreError::from)?;
            Ok(())
        }
        None => {
            let row = organization_member::ActiveModel {
                id: Set(crypto::random_id()),
                organization_id: Set(organization.id.clone()),
                user_id: Set(user_id.to_owned()),
                roles: Set(to_json_list(roles)),
                created_at: Set(now()),
                ..Default::default()
            };
            scope.insert::<organization_member::Entity, _>(row).await?;
            Ok(())
        }
    }
}

pub async fn remove_member(scope: Scoped<'_>, organization: &Organization, user_id: &str) -> StoreResult<bool> {
    let result = scope
        .delete::<organization_member::Entity>()
        .filter(organization_member::Column::OrganizationId.eq(&organization.id))
        .filter(organization_member::Column::UserId.eq(user_id))
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected > 0)
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

/// A membership row joined with its organization (both tenant-scoped; a membership always comes with
/// its organization).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for good in ["acme", "acme-corp", "a1"] {
            assert!(valid_slug(good), "{good}");
        }
        for bad in ["", "Acme", "acme corp", "-acme", "acme_corp", &"a".repeat(64)] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }
}
