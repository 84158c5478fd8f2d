//! Organizations: customer companies inside a tenant. Here, what tokens need from them: the
//! organization a person or a service account belongs to and the roles held there, carried as the
//! access token's `org` and `roles` so a resource server can apply the organization's rules offline.
//!
//! A person belongs to at most one organization of a tenant (the usual shape of a workforce directory;
//! see docs/organizations.md). Slugs are immutable: tokens and permission rules name organizations by
//! them.

use crate::{
    client::valid_scope_token,
    crypto,
    store::{Scoped, StoreError, StoreResult, now, organizations},
};

pub use crate::store::organizations::{Membership, Organization, from_row, membership};

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

pub async fn create(scope: Scoped<'_>, slug: &str, name: &str) -> Result<Organization, OrganizationError> {
    if !valid_slug(slug) {
        return Err(OrganizationError::InvalidSlug);
    }
    if find_by_slug(scope, slug).await?.is_some() {
        return Err(OrganizationError::Exists(slug.to_owned()));
    }
    // Two racing creators: the unique index lets one win, the other gets a database error.
    Ok(organizations::insert(scope, &format!("org_{}", crypto::random_id()), slug, name, now()).await?)
}

pub async fn find_by_slug(scope: Scoped<'_>, slug: &str) -> StoreResult<Option<Organization>> {
    organizations::find_by_slug(scope, slug).await
}

pub async fn find(scope: Scoped<'_>, id: &str) -> StoreResult<Option<Organization>> {
    organizations::find(scope, id).await
}

pub async fn list(scope: Scoped<'_>) -> StoreResult<Vec<Organization>> {
    organizations::all(scope).await
}

/// Makes a person a member with these roles, or changes the roles of an existing member. A person
/// belongs to at most one organization of the tenant.
pub async fn set_member(
    scope: Scoped<'_>,
    organization: &Organization,
    user_id: &str,
    roles: &[String],
) -> Result<(), OrganizationError> {
    check_roles(roles)?;
    match organizations::member(scope, user_id).await? {
        Some(member) if member.organization_id != organization.id => {
            let other = find(scope, &member.organization_id).await?.map(|o| o.slug).unwrap_or_default();
            Err(OrganizationError::AlreadyMember(other))
        }
        Some(_) => Ok(organizations::set_roles(scope, user_id, roles).await?),
        None => Ok(organizations::insert_member(scope, &crypto::random_id(), &organization.id, user_id, roles, now()).await?),
    }
}

pub async fn remove_member(scope: Scoped<'_>, organization: &Organization, user_id: &str) -> StoreResult<bool> {
    organizations::delete_member(scope, &organization.id, user_id).await
}

/// The organization a person belongs to, and their roles there.
pub async fn membership_of(scope: Scoped<'_>, user_id: &str) -> StoreResult<Option<Membership>> {
    organizations::membership_of(scope, user_id).await
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
