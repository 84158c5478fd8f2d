//! Verified domains: an organization claims a domain, publishes a TXT record at
//! `_latchkey-challenge.<domain>` with the value Latchkey shows, and asks for a check. A verified
//! domain is what lets an SSO sign-in attach to an existing account by email, sends people of that
//! domain to their organization's sign-in (home-realm discovery) and lets the organization enforce SSO
//! for them (docs/sso.md).
//!
//! - The value is derived, not stored: HMAC (the server's code-hash key) over the tenant, the claim and
//!   the domain. It is public once published, but a database dump does not hand it out beforehand.
//! - Public suffixes (`com`, `co.uk`, `github.io`) are refused: nobody owns everyone's mail.
//! - Any number of organizations may claim a domain; only one per tenant holds it verified (the store's
//!   unique index decides a race), so a squatter's claim never blocks the real owner.
//! - Verified domains are re-checked periodically. A record not found is flagged (`lost_at`); after the
//!   grace period it is still missing, the verification is withdrawn. A lookup that fails (timeout,
//!   refused) flags nothing: it says nothing about the record.

use crate::{
    crypto::{self, CodeHasher},
    organization::Organization,
    store::{Scoped, StoreError, organization_domains},
};

use super::dns::{DnsError, TxtResolver};

pub use organization_domains::DomainClaim;

/// The label under the domain where the challenge is published.
pub const CHALLENGE_LABEL: &str = "_latchkey-challenge";

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{0:?} is not a domain name")]
    Invalid(String),
    #[error("{0} is a public suffix: claim a domain registered under it")]
    PublicSuffix(String),
    #[error("{0} is not claimed by this organization")]
    NotClaimed(String),
    #[error("no TXT record at {name} (publish the value shown, then check again)")]
    RecordMissing { name: String },
    #[error("the TXT record at {name} does not hold this organization's value")]
    RecordMismatch { name: String },
    #[error("{0} is verified by another organization of this tenant")]
    TakenByAnother(String),
    #[error("{0}")]
    Dns(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A domain name as stored and compared: lower-case ASCII (IDNA A-labels), no trailing dot, at least
/// two labels of letters, digits and inner dashes (RFC 1035 §2.3.1, RFC 5891).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainName(String);

impl DomainName {
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let invalid = || DomainError::Invalid(input.chars().take(80).collect());
        let trimmed = input.trim().trim_end_matches('.');
        if trimmed.is_empty() || trimmed.len() > 253 {
            return Err(invalid());
        }
        // url's host parser applies IDNA (UTS #46) and lower-cases; an IP address is not a domain.
        let ascii = match url::Host::parse(trimmed) {
            Ok(url::Host::Domain(domain)) => domain,
            _ => return Err(invalid()),
        };
        let labels: Vec<&str> = ascii.split('.').collect();
        let label_ok = |label: &&str| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) || ascii.len() > 253 {
            return Err(invalid());
        }
        // A name that is itself a public suffix has no registrable domain (psl's `domain` is None).
        if psl::domain(ascii.as_bytes()).is_none() {
            return Err(DomainError::PublicSuffix(ascii));
        }
        Ok(Self(ascii))
    }

    /// The domain part of an email address, if it is a domain name we would store.
    pub fn of_email(email: &str) -> Option<Self> {
        email.rsplit_once('@').and_then(|(_, domain)| Self::parse(domain).ok())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DomainName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The DNS record an organization publishes to prove a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `_latchkey-challenge.<domain>`
    pub name: String,
    pub value: String,
}

pub fn challenge(hasher: &CodeHasher, tenant_id: &str, claim: &DomainClaim) -> Challenge {
    let context = format!("domain-challenge/{tenant_id}/{}", claim.id);
    Challenge {
        name: format!("{CHALLENGE_LABEL}.{}", claim.domain),
        value: crypto::base64url(&hasher.hash(&context, &claim.domain)),
    }
}

/// Claims `domain` for the organization (or returns the existing claim) and the record to publish.
pub async fn claim(
    scope: Scoped<'_>,
    hasher: &CodeHasher,
    organization: &Organization,
    domain: &DomainName,
) -> Result<(DomainClaim, Challenge), DomainError> {
    organization_domains::insert(scope, &crypto::random_id(), &organization.id, domain.as_str(), crate::store::now())
        .await?;
    let claim = organization_domains::find(scope, &organization.id, domain.as_str())
        .await?
        .ok_or_else(|| DomainError::NotClaimed(domain.to_string()))?;
    let challenge = challenge(hasher, scope.tenant_id(), &claim);
    Ok((claim, challenge))
}

pub async fn claims(scope: Scoped<'_>, organization: &Organization) -> Result<Vec<DomainClaim>, DomainError> {
    Ok(organization_domains::of_organization(scope, &organization.id).await?)
}

/// Whether the published TXT strings hold the challenge value (constant-time per value).
fn holds(values: &[String], expected: &str) -> bool {
    values.iter().any(|value| crypto::constant_time_eq(value.trim().as_bytes(), expected.as_bytes()))
}

/// What DNS says about a claim's record now.
async fn look(resolver: &TxtResolver, challenge: &Challenge) -> Result<bool, DomainError> {
    match resolver.txt(&challenge.name).await {
        Ok(values) => Ok(holds(&values, &challenge.value)),
        Err(DnsError::NoRecord) => Ok(false),
        Err(DnsError::Failed(reason)) => Err(DomainError::Dns(reason)),
    }
}

/// Checks the claim's record and, if it holds the value, marks the domain verified for the
/// organization. A failed check changes nothing.
pub async fn verify(
    scope: Scoped<'_>,
    hasher: &CodeHasher,
    resolver: &TxtResolver,
    organization: &Organization,
    domain: &DomainName,
) -> Result<DomainClaim, DomainError> {
    let claim = organization_domains::find(scope, &organization.id, domain.as_str())
        .await?
        .ok_or_else(|| DomainError::NotClaimed(domain.to_string()))?;
    let challenge = challenge(hasher, scope.tenant_id(), &claim);
    match resolver.txt(&challenge.name).await {
        Ok(values) if holds(&values, &challenge.value) => {}
        Ok(_) => return Err(DomainError::RecordMismatch { name: challenge.name }),
        Err(DnsError::NoRecord) => return Err(DomainError::RecordMissing { name: challenge.name }),
        Err(DnsError::Failed(reason)) => return Err(DomainError::Dns(reason)),
    }
    if !organization_domains::mark_verified(scope, &claim, crate::store::now()).await? {
        return Err(DomainError::TakenByAnother(domain.to_string()));
    }
    Ok(organization_domains::find(scope, &organization.id, domain.as_str()).await?.unwrap_or(claim))
}

/// The organization holding `domain` verified in this tenant, if any (home-realm discovery, linking).
pub async fn verified_owner(scope: Scoped<'_>, domain: &DomainName) -> Result<Option<DomainClaim>, StoreError> {
    organization_domains::verified(scope, domain.as_str()).await
}

pub async fn remove(scope: Scoped<'_>, organization: &Organization, domain: &DomainName) -> Result<(), DomainError> {
    if organization_domains::delete(scope, &organization.id, domain.as_str()).await? {
        Ok(())
    } else {
        Err(DomainError::NotClaimed(domain.to_string()))
    }
}

/// What a re-check did to one verified domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recheck {
    Found,
    /// The record is gone: flagged now (reported once).
    Lost,
    /// Still gone, within the grace period.
    StillLost,
    /// Gone longer than the grace period: no longer verified.
    Withdrawn,
    /// The lookup failed; nothing changed.
    Unknown(String),
}

impl Recheck {
    /// The audit action of a change worth recording: a record newly missing, a verification withdrawn.
    pub fn audit_action(&self) -> Option<&'static str> {
        match self {
            Recheck::Lost => Some("domain.lost"),
            Recheck::Withdrawn => Some("domain.withdrawn"),
            Recheck::Found | Recheck::StillLost | Recheck::Unknown(_) => None,
        }
    }
}

/// What to do with a verified claim given what DNS said: a pure function of the claim's flag, the
/// lookup and the clock.
pub fn recheck_decision(lost_at: Option<i64>, found: Result<bool, String>, now: i64, grace_seconds: i64) -> Recheck {
    match (found, lost_at) {
        (Err(reason), _) => Recheck::Unknown(reason),
        (Ok(true), _) => Recheck::Found,
        (Ok(false), None) => Recheck::Lost,
        (Ok(false), Some(since)) if now - since >= grace_seconds => Recheck::Withdrawn,
        (Ok(false), Some(_)) => Recheck::StillLost,
    }
}

/// Re-checks every verified domain of the tenant: the claims and what became of each.
pub async fn recheck(
    scope: Scoped<'_>,
    hasher: &CodeHasher,
    resolver: &TxtResolver,
    now: i64,
    grace_seconds: i64,
) -> Result<Vec<(DomainClaim, Recheck)>, StoreError> {
    let mut outcomes = Vec::new();
    for claim in organization_domains::all_verified(scope).await? {
        let found = look(resolver, &challenge(hasher, scope.tenant_id(), &claim)).await.map_err(|e| e.to_string());
        let mut outcome = recheck_decision(claim.lost_at, found, now, grace_seconds);
        match outcome {
            Recheck::Found => organization_domains::mark_found(scope, &claim.id, now).await?,
            Recheck::Lost => {
                if !organization_domains::mark_lost(scope, &claim.id, now).await? {
                    // Another node flagged it between our read and this write.
                    outcome = Recheck::StillLost;
                }
            }
            Recheck::Withdrawn => organization_domains::withdraw(scope, &claim.id).await?,
            Recheck::StillLost | Recheck::Unknown(_) => {}
        }
        outcomes.push((claim, outcome));
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names() {
        for (input, stored) in [
            ("example.com", "example.com"),
            ("Example.COM.", "example.com"),
            (" eu.acme.example ", "eu.acme.example"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("acme.co.uk", "acme.co.uk"),
            ("example.test", "example.test"),
        ] {
            assert_eq!(DomainName::parse(input).map(|d| d.0).ok().as_deref(), Some(stored), "{input}");
        }
        for bad in ["", "com.", "localhost", "127.0.0.1", "[::1]", "a..b", "-a.example", "a-.example", "a_b.example", "a b.example", "ex@mple.com", &format!("{}.com", "a".repeat(64))] {
            assert!(DomainName::parse(bad).is_err(), "{bad}");
        }
        for suffix in ["com", "co.uk", "github.io", "uk"] {
            assert!(matches!(DomainName::parse(suffix), Err(DomainError::PublicSuffix(_)) | Err(DomainError::Invalid(_))), "{suffix}");
        }
        assert!(matches!(DomainName::parse("co.uk"), Err(DomainError::PublicSuffix(_))));
        assert!(matches!(DomainName::parse("github.io"), Err(DomainError::PublicSuffix(_))));
        assert_eq!(DomainName::of_email("ana@Acme.Example").map(|d| d.0).as_deref(), Some("acme.example"));
    }

    #[test]
    fn recheck_decisions() {
        let day = 86_400;
        for (lost_at, found, now, expected) in [
            (None, Ok(true), 100, Recheck::Found),
            (Some(50), Ok(true), 100, Recheck::Found),
            (None, Ok(false), 100, Recheck::Lost),
            (Some(100), Ok(false), 100 + day, Recheck::StillLost),
            (Some(100), Ok(false), 100 + 7 * day, Recheck::Withdrawn),
            (Some(100), Err("timeout".to_owned()), 100 + 30 * day, Recheck::Unknown("timeout".to_owned())),
            (None, Err("refused".to_owned()), 100, Recheck::Unknown("refused".to_owned())),
        ] {
            assert_eq!(recheck_decision(lost_at, found.clone(), now, 7 * day), expected, "{lost_at:?} {found:?} {now}");
        }
    }

    #[test]
    fn the_value_is_bound_to_the_tenant_claim_and_domain() {
        let hasher = CodeHasher::new(&crypto::MasterKey::from_bytes([7; 32]));
        let claim = DomainClaim {
            id: "c1".into(),
            organization_id: "o".into(),
            domain: "acme.example".into(),
            verified_at: None,
            checked_at: None,
            lost_at: None,
            created_at: 0,
            enforce_sso: false,
        };
        let a = challenge(&hasher, "t1", &claim);
        assert_eq!(a.name, "_latchkey-challenge.acme.example");
        assert_eq!(a.value.len(), 43);
        assert_ne!(a.value, challenge(&hasher, "t2", &claim).value);
        assert_ne!(a.value, challenge(&hasher, "t1", &DomainClaim { id: "c2".into(), ..claim.clone() }).value);
        assert!(holds(&[" other".into(), format!("{} ", a.value)], &a.value));
        assert!(!holds(&["nope".into()], &a.value));
    }
}
