//! Which account an SSO sign-in is, decided from facts read beforehand: a pure function with a table
//! test (docs/sso.md, "Accounts and identity linking").
//!
//! An identity is the IdP's immutable id for the person, never an email. Entra's `email` and
//! `preferred_username` are mutable and unverified: the "nOAuth" account takeover is an IdP (or a
//! directory) asserting somebody else's address. So an email is only trusted to name an account when
//! the IdP proves it (`email_verified`, Entra `xms_edov`) *and* its domain is verified by the
//! connection's own organization; a new account is only made under the same two conditions.
//!
//! A tenant-wide social connection ("Continue with Google") belongs to no organization: an address
//! of a domain an organization verified signs in through that organization, never socially (one way
//! in), and a new account is made only where the tenant lets people sign up.

/// What is known about an existing account with the asserted email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account<'a> {
    pub user_id: &'a str,
    pub disabled: bool,
    /// The account is already linked to an IdP identity (this connection's or another's).
    pub linked: bool,
    /// The account belongs to another organization of the tenant.
    pub in_other_organization: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts<'a> {
    /// The account this IdP identity is already linked to, and whether it is disabled.
    pub linked_account: Option<(&'a str, bool)>,
    /// The account the organization's directory provisioned for a person whose `externalId` is this
    /// IdP's id for them (docs/scim.md), and whether it is disabled.
    pub provisioned_account: Option<(&'a str, bool)>,
    pub has_email: bool,
    pub email_proven: bool,
    /// The connection may vouch for the email's domain: its organization verified the domain (an
    /// organization's connection), or no organization did (a tenant-wide social connection).
    pub domain_verified: bool,
    /// Social connections: the domain is an organization's, whose people sign in there.
    pub organization_domain: bool,
    /// A new account may be made (organization connections; social ones where sign-up is open).
    pub may_create: bool,
    pub account_by_email: Option<Account<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Disabled,
    NoEmail,
    /// The IdP does not vouch for the address.
    EmailNotProven,
    /// The address's domain is not one the organization verified.
    DomainNotVerified,
    /// The address's account signs in another way (another identity or connection).
    LinkedElsewhere,
    OtherOrganization,
    /// A social sign-in with an address of an organization's domain.
    OrganizationSignIn,
    /// No account has this address, and the tenant does not let people sign up.
    NoAccount,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Disabled => "disabled",
            Refusal::NoEmail => "no_email",
            Refusal::EmailNotProven => "email_not_proven",
            Refusal::DomainNotVerified => "domain_not_verified",
            Refusal::LinkedElsewhere => "linked_elsewhere",
            Refusal::OtherOrganization => "other_organization",
            Refusal::OrganizationSignIn => "organization_sign_in",
            Refusal::NoAccount => "no_account",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link<'a> {
    /// The identity is known: sign in its account.
    SignIn(&'a str),
    /// Attach the identity to the existing account of the proven address, then sign in.
    Attach(&'a str),
    /// Just-in-time provisioning: a new account with the proven address.
    Create,
    Refuse(Refusal),
}

pub fn decide(facts: Facts<'_>) -> Link<'_> {
    if let Some((user_id, disabled)) = facts.linked_account {
        return if disabled { Link::Refuse(Refusal::Disabled) } else { Link::SignIn(user_id) };
    }
    // The organization's own directory named this IdP id: that account, whatever the address says.
    if let Some((user_id, disabled)) = facts.provisioned_account {
        return if disabled { Link::Refuse(Refusal::Disabled) } else { Link::Attach(user_id) };
    }
    if !facts.has_email {
        return Link::Refuse(Refusal::NoEmail);
    }
    if facts.organization_domain {
        return Link::Refuse(Refusal::OrganizationSignIn);
    }
    if !facts.domain_verified {
        return Link::Refuse(Refusal::DomainNotVerified);
    }
    if !facts.email_proven {
        return Link::Refuse(Refusal::EmailNotProven);
    }
    match facts.account_by_email {
        None if !facts.may_create => Link::Refuse(Refusal::NoAccount),
        None => Link::Create,
        Some(account) if account.linked => Link::Refuse(Refusal::LinkedElsewhere),
        Some(account) if account.disabled => Link::Refuse(Refusal::Disabled),
        Some(account) if account.in_other_organization => Link::Refuse(Refusal::OtherOrganization),
        Some(account) => Link::Attach(account.user_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_an_sso_sign_in_is() {
        let plain = Account { user_id: "u1", disabled: false, linked: false, in_other_organization: false };
        let proven = Facts { has_email: true, email_proven: true, domain_verified: true, may_create: true, ..Default::default() };
        for (facts, expected) in [
            // A known identity is its account, whatever the token says about email now.
            (Facts { linked_account: Some(("u9", false)), ..Default::default() }, Link::SignIn("u9")),
            (Facts { linked_account: Some(("u9", true)), ..proven }, Link::Refuse(Refusal::Disabled)),
            // Provisioned by the organization's directory under this IdP id: that account, even
            // without an address; a deprovisioned one is refused.
            (Facts { provisioned_account: Some(("u7", false)), ..Default::default() }, Link::Attach("u7")),
            (Facts { provisioned_account: Some(("u7", false)), account_by_email: Some(plain), ..proven }, Link::Attach("u7")),
            (Facts { provisioned_account: Some(("u7", true)), ..proven }, Link::Refuse(Refusal::Disabled)),
            (Facts { linked_account: Some(("u9", false)), provisioned_account: Some(("u7", false)), ..proven }, Link::SignIn("u9")),
            // New identity, proven address of a verified domain: attach, or create.
            (Facts { account_by_email: Some(plain), ..proven }, Link::Attach("u1")),
            (proven, Link::Create),
            // nOAuth: an address the IdP does not vouch for, or of a domain this organization has
            // not verified, names no account and makes none.
            (Facts { email_proven: false, account_by_email: Some(plain), ..proven }, Link::Refuse(Refusal::EmailNotProven)),
            (Facts { email_proven: false, ..proven }, Link::Refuse(Refusal::EmailNotProven)),
            (Facts { domain_verified: false, account_by_email: Some(plain), ..proven }, Link::Refuse(Refusal::DomainNotVerified)),
            (Facts { domain_verified: false, ..proven }, Link::Refuse(Refusal::DomainNotVerified)),
            (Facts { has_email: false, ..proven }, Link::Refuse(Refusal::NoEmail)),
            // One way in per account: already linked to an identity, it is not taken by another.
            (Facts { account_by_email: Some(Account { linked: true, ..plain }), ..proven }, Link::Refuse(Refusal::LinkedElsewhere)),
            (Facts { account_by_email: Some(Account { disabled: true, ..plain }), ..proven }, Link::Refuse(Refusal::Disabled)),
            (Facts { account_by_email: Some(Account { in_other_organization: true, ..plain }), ..proven }, Link::Refuse(Refusal::OtherOrganization)),
            // Social connections: an organization's address signs in there; sign-up as the tenant says.
            (Facts { organization_domain: true, account_by_email: Some(plain), ..proven }, Link::Refuse(Refusal::OrganizationSignIn)),
            (Facts { organization_domain: true, linked_account: Some(("u9", false)), ..proven }, Link::SignIn("u9")),
            (Facts { may_create: false, ..proven }, Link::Refuse(Refusal::NoAccount)),
            (Facts { may_create: false, account_by_email: Some(plain), ..proven }, Link::Attach("u1")),
        ] {
            assert_eq!(decide(facts), expected, "{facts:?}");
        }
    }
}
