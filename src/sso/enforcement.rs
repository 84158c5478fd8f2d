//! Enforced SSO (docs/sso.md, "Enforcing SSO"): when an organization enforces single sign-on for a
//! verified domain, the people of that domain sign in only through the organization's identity
//! provider — no email code, no passkey on its own, no recovery code. The organization's owners keep
//! a way in when the IdP is down or misconfigured (break-glass): the usual email code and passkey,
//! audited as such. A pure decision with a table test; `sso::signin` and `crate::signin` ask it.

use super::{
    connection::{self, ConnectionError},
    domains::{self, DomainName},
};
use crate::{
    organization::{self, Organization},
    store::{Scoped, StoreError, StoreResult, organization_domains},
    user::Email,
};

#[derive(Debug, thiserror::Error)]
pub enum EnforcementError {
    #[error("{0} is not verified by this organization")]
    NotVerified(String),
    #[error("{0}: the organization has no enabled SSO connection, so enforcing SSO would lock its people out")]
    NoConnection(String),
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What is known about the person's address and their place in its organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    /// The address's domain is verified by an organization that enforces SSO for it.
    pub enforced: bool,
    /// The person is an owner of that organization.
    pub owner: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Allowed because the person owns the organization: audited as `signin.break_glass`.
    BreakGlass,
    /// Refused: the page says to sign in through the organization.
    SsoRequired,
}

/// The role that keeps a way in when SSO is enforced (and that, with `admin`, administers the
/// organization's SSO).
pub const OWNER_ROLE: &str = "owner";

/// The same for every way in other than the IdP (an email code, a passkey alone, a recovery code):
/// each would let someone the organization removed at its IdP keep signing in.
pub fn decide(facts: Facts) -> Decision {
    match facts {
        Facts { enforced: false, .. } => Decision::Allow,
        Facts { owner: true, .. } => Decision::BreakGlass,
        _ => Decision::SsoRequired,
    }
}

/// The facts for a sign-in of `email` (by the account `user_id`, when there is one): whether the
/// address's domain is enforced, and whether the account owns the organization that enforces it.
pub async fn facts(scope: Scoped<'_>, email: &Email, user_id: Option<&str>) -> StoreResult<Facts> {
    let Some(domain) = DomainName::of_email(email.as_str()) else { return Ok(Facts::default()) };
    let Some(claim) = domains::verified_owner(scope, &domain).await?.filter(|claim| claim.enforce_sso) else {
        return Ok(Facts::default());
    };
    let owner = match user_id {
        Some(user_id) => match (organization::membership_of(scope, user_id).await?, organization::find(scope, &claim.organization_id).await?) {
            (Some(membership), Some(org)) => membership.organization == org.slug && membership.roles.iter().any(|r| r == OWNER_ROLE),
            _ => false,
        },
        None => false,
    };
    Ok(Facts { enforced: true, owner })
}

/// Switches enforced SSO for one of the organization's verified domains. Switching it on needs an
/// enabled connection: otherwise only the owners could sign in.
pub async fn set(scope: Scoped<'_>, organization: &Organization, domain: &DomainName, on: bool) -> Result<(), EnforcementError> {
    let claim = organization_domains::find(scope, &organization.id, domain.as_str())
        .await?
        .filter(|claim| claim.verified_at.is_some())
        .ok_or_else(|| EnforcementError::NotVerified(domain.to_string()))?;
    if on && connection::active_of(scope, &organization.id).await?.is_none() {
        return Err(EnforcementError::NoConnection(organization.slug.clone()));
    }
    if !organization_domains::set_enforced(scope, &claim.id, on).await? {
        return Err(EnforcementError::NotVerified(domain.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_may_sign_in_without_the_identity_provider() {
        for (facts, expected) in [
            (Facts { enforced: false, owner: false }, Decision::Allow),
            (Facts { enforced: false, owner: true }, Decision::Allow),
            (Facts { enforced: true, owner: false }, Decision::SsoRequired),
            (Facts { enforced: true, owner: true }, Decision::BreakGlass),
        ] {
            assert_eq!(decide(facts), expected, "{facts:?}");
        }
    }
}
