//! Organization administration from the hosted pages (docs/organizations.md, "Administration"):
//! what an organization's owners and admins may do — members and their roles, domains and their TXT
//! records, SSO connections, enforced SSO — the same operations as `latchkey org`, each allowed only
//! to an administrator of that organization whose passkey assertion is fresh (`Session::is_fresh`),
//! and each audited. The handlers in `http::admin` only parse and render.

use crate::{
    scim::directory as scim,
    audit::Event,
    context::Ctx,
    organization::{self, Organization, OrganizationError},
    session::Session,
    sso::{
        connection::{self, Connection, ConnectionError, NewOidc, NewSaml, OidcSettings},
        domains::{self, Challenge, DomainClaim, DomainError, DomainName},
        enforcement::{self, EnforcementError, OWNER_ROLE},
        saml::{self, SamlError},
    },
    store::{StoreError, now, organizations},
    user::{self, Email},
};

/// The roles that administer an organization.
pub const ADMIN_ROLES: [&str; 2] = [OWNER_ROLE, "admin"];

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("Only the organization's owners and admins may do this.")]
    NotAdmin,
    #[error("Confirm it is you with one of your passkeys first.")]
    StepUpRequired,
    #[error("Only an owner may grant or take away the owner role.")]
    OwnersOnly,
    #[error("The organization would have no owner left.")]
    LastOwner,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::scim::directory::DirectoryError> for AdminError {
    fn from(error: crate::scim::directory::DirectoryError) -> Self {
        match error {
            crate::scim::directory::DirectoryError::Store(e) => AdminError::Store(e),
            other => AdminError::Invalid(other.to_string()),
        }
    }
}

impl From<DomainError> for AdminError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::Store(e) => AdminError::Store(e),
            other => AdminError::Invalid(other.to_string()),
        }
    }
}

impl From<ConnectionError> for AdminError {
    fn from(error: ConnectionError) -> Self {
        match error {
            ConnectionError::Store(e) => AdminError::Store(e),
            other => AdminError::Invalid(other.to_string()),
        }
    }
}

impl From<EnforcementError> for AdminError {
    fn from(error: EnforcementError) -> Self {
        match error {
            EnforcementError::Store(e) => AdminError::Store(e),
            other => AdminError::Invalid(other.to_string()),
        }
    }
}

impl From<OrganizationError> for AdminError {
    fn from(error: OrganizationError) -> Self {
        match error {
            OrganizationError::Store(e) => AdminError::Store(e),
            other => AdminError::Invalid(other.to_string()),
        }
    }
}

impl From<SamlError> for AdminError {
    fn from(error: SamlError) -> Self {
        AdminError::Invalid(error.to_string())
    }
}

/// A signed-in administrator of one organization.
#[derive(Debug, Clone)]
pub struct Administrator {
    pub organization: Organization,
    pub user_id: String,
    pub owner: bool,
    /// Their passkey assertion is recent enough for changes.
    pub fresh: bool,
}

/// The organization `slug` as administered by the session's person: only a multi-factor session of a
/// member with the owner or admin role.
pub async fn administrator(ctx: &Ctx<'_>, session: &Session, slug: &str) -> Result<Administrator, AdminError> {
    if !session.is_multi_factor() {
        return Err(AdminError::NotAdmin);
    }
    let membership = organization::membership_of(ctx.scope(), &session.user_id).await?.ok_or(AdminError::NotAdmin)?;
    if membership.organization != slug || !membership.roles.iter().any(|r| ADMIN_ROLES.contains(&r.as_str())) {
        return Err(AdminError::NotAdmin);
    }
    let organization = organization::find_by_slug(ctx.scope(), slug).await?.ok_or(AdminError::NotAdmin)?;
    Ok(Administrator {
        organization,
        user_id: session.user_id.clone(),
        owner: membership.roles.iter().any(|r| r == OWNER_ROLE),
        fresh: session.is_fresh(ctx.lifetimes(), now()),
    })
}

/// The organization an administrator's account page links to, if they administer one.
pub async fn administered_by(ctx: &Ctx<'_>, session: &Session) -> Result<Option<String>, StoreError> {
    if !session.is_multi_factor() {
        return Ok(None);
    }
    Ok(organization::membership_of(ctx.scope(), &session.user_id)
        .await?
        .filter(|m| m.roles.iter().any(|r| ADMIN_ROLES.contains(&r.as_str())))
        .map(|m| m.organization))
}

fn changing(admin: &Administrator) -> Result<(), AdminError> {
    if admin.fresh { Ok(()) } else { Err(AdminError::StepUpRequired) }
}

async fn audit(ctx: &Ctx<'_>, admin: &Administrator, action: &'static str, target: String, details: serde_json::Value) {
    ctx.audit(
        Event::new(&ctx.tenant.id, format!("user:{}", admin.user_id), action)
            .target(target)
            .details(serde_json::json!({ "organization": admin.organization.slug, "via": "admin pages", "details": details })),
    )
    .await;
}

/// One member as the page lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub roles: Vec<String>,
}

/// What the administration page shows.
#[derive(Debug)]
pub struct Overview {
    pub members: Vec<Member>,
    pub domains: Vec<(DomainClaim, Challenge)>,
    pub connections: Vec<Connection>,
    /// The SCIM directory, once one exists (the first token makes it).
    pub scim: Option<ScimOverview>,
}

/// The directory as its administration shows it: read-only people and groups (the IdP is the source
/// of truth), its tokens and its latest provisioning events.
#[derive(Debug)]
pub struct ScimOverview {
    pub base_url: String,
    pub tokens: Vec<scim::Token>,
    pub role_map: Vec<(String, String)>,
    pub events: Vec<crate::store::audit_events::AuditRow>,
    pub users_total: u64,
    pub users: Vec<scim::ProvisionedUser>,
    pub groups_total: u64,
    pub groups: Vec<scim::ProvisionedGroup>,
}

/// Rows of each kind the page lists.
const SCIM_LISTED: u64 = 50;

pub async fn overview(ctx: &Ctx<'_>, admin: &Administrator) -> Result<Overview, AdminError> {
    let scope = ctx.scope();
    let members = organizations::members(scope, &admin.organization.id)
        .await?
        .into_iter()
        .map(|(user_id, email, roles)| Member { user_id, email, roles })
        .collect();
    let domains = domains::claims(scope, &admin.organization)
        .await?
        .into_iter()
        .map(|claim| {
            let challenge = domains::challenge(&ctx.services.hasher, &ctx.tenant.id, &claim);
            (claim, challenge)
        })
        .collect();
    let connections = connection::of_organization(scope, &admin.organization.id).await?;
    let scim = match scim::of_organization(scope, &admin.organization).await? {
        None => None,
        Some(directory) => {
            let (users_total, users, groups_total, groups) = scim::overview(scope, &directory, SCIM_LISTED).await?;
            Some(ScimOverview {
                base_url: scim::base_url(ctx, &admin.organization.slug),
                tokens: scim::tokens(scope, &directory).await?,
                events: scim::recent_events(scope, &directory, 20).await?,
                role_map: directory.role_map,
                users_total,
                users,
                groups_total,
                groups,
            })
        }
    };
    Ok(Overview { members, domains, connections, scim })
}

/// `IDP_GROUP=ROLE` pairs, separated by commas or spaces.
pub fn parse_role_map(text: &str) -> Result<Vec<(String, String)>, AdminError> {
    text.split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((group, role)) if !group.is_empty() && !role.is_empty() => Ok((group.to_owned(), role.to_owned())),
            _ => Err(AdminError::Invalid(format!("{pair:?}: roles from groups are written group=role"))),
        })
        .collect()
}

fn parse_roles(text: &str) -> Vec<String> {
    let mut roles: Vec<String> = Vec::new();
    for role in text.split([' ', ',']).map(str::trim).filter(|r| !r.is_empty()) {
        if !roles.iter().any(|r| r == role) {
            roles.push(role.to_owned());
        }
    }
    roles
}

/// Adds a person (by address; the account is made if need be) or changes a member's roles. Only an
/// owner grants or takes away `owner`, and the last owner stays one.
pub async fn set_member(ctx: &Ctx<'_>, admin: &Administrator, email: &str, roles: &str) -> Result<(), AdminError> {
    changing(admin)?;
    let email = Email::parse(email).ok_or_else(|| AdminError::Invalid("Enter an email address like name@example.com.".into()))?;
    let roles = parse_roles(roles);
    let scope = ctx.scope();
    let existing = user::find_by_email(scope, &email).await?;
    let before = match &existing {
        Some(user) => organization::membership_of(scope, &user.id).await?.filter(|m| m.organization == admin.organization.slug),
        None => None,
    };
    let was_owner = before.as_ref().is_some_and(|m| m.roles.iter().any(|r| r == OWNER_ROLE));
    let is_owner = roles.iter().any(|r| r == OWNER_ROLE);
    if was_owner != is_owner && !admin.owner {
        return Err(AdminError::OwnersOnly);
    }
    if was_owner && !is_owner && owners(ctx, admin).await? <= 1 {
        return Err(AdminError::LastOwner);
    }
    let user = match existing {
        Some(user) => user,
        None => user::find_or_create(scope, &email).await?,
    };
    organization::set_member(scope, &admin.organization, &user.id, &roles).await?;
    audit(ctx, admin, "organization.member_set", format!("user:{}", user.id), serde_json::json!({ "roles": roles })).await;
    Ok(())
}

async fn owners(ctx: &Ctx<'_>, admin: &Administrator) -> Result<usize, AdminError> {
    Ok(organizations::members(ctx.scope(), &admin.organization.id)
        .await?
        .iter()
        .filter(|(_, _, roles)| roles.iter().any(|r| r == OWNER_ROLE))
        .count())
}

pub async fn remove_member(ctx: &Ctx<'_>, admin: &Administrator, user_id: &str) -> Result<(), AdminError> {
    changing(admin)?;
    let scope = ctx.scope();
    let member = organizations::members(scope, &admin.organization.id)
        .await?
        .into_iter()
        .find(|(id, _, _)| id == user_id)
        .ok_or_else(|| AdminError::Invalid("That person is not a member.".into()))?;
    if member.2.iter().any(|r| r == OWNER_ROLE) {
        if !admin.owner {
            return Err(AdminError::OwnersOnly);
        }
        if owners(ctx, admin).await? <= 1 {
            return Err(AdminError::LastOwner);
        }
    }
    organization::remove_member(scope, &admin.organization, user_id).await?;
    audit(ctx, admin, "organization.member_remove", format!("user:{user_id}"), serde_json::Value::Null).await;
    Ok(())
}

pub async fn add_domain(ctx: &Ctx<'_>, admin: &Administrator, domain: &str) -> Result<(), AdminError> {
    changing(admin)?;
    let domain = DomainName::parse(domain)?;
    let (claim, _) = domains::claim(ctx.scope(), &ctx.services.hasher, &admin.organization, &domain).await?;
    audit(ctx, admin, "domain.claim", format!("domain:{}", claim.domain), serde_json::Value::Null).await;
    Ok(())
}

pub async fn verify_domain(ctx: &Ctx<'_>, admin: &Administrator, domain: &str) -> Result<(), AdminError> {
    changing(admin)?;
    let domain = DomainName::parse(domain)?;
    let claim = domains::verify(ctx.scope(), &ctx.services.hasher, &ctx.services.dns, &admin.organization, &domain).await?;
    audit(ctx, admin, "domain.verify", format!("domain:{}", claim.domain), serde_json::Value::Null).await;
    Ok(())
}

pub async fn remove_domain(ctx: &Ctx<'_>, admin: &Administrator, domain: &str) -> Result<(), AdminError> {
    changing(admin)?;
    let domain = DomainName::parse(domain)?;
    domains::remove(ctx.scope(), &admin.organization, &domain).await?;
    audit(ctx, admin, "domain.remove", format!("domain:{domain}"), serde_json::Value::Null).await;
    Ok(())
}

pub async fn set_enforced(ctx: &Ctx<'_>, admin: &Administrator, domain: &str, on: bool) -> Result<(), AdminError> {
    changing(admin)?;
    let domain = DomainName::parse(domain)?;
    enforcement::set(ctx.scope(), &admin.organization, &domain, on).await?;
    let action = if on { "domain.sso_enforce" } else { "domain.sso_relax" };
    audit(ctx, admin, action, format!("domain:{domain}"), serde_json::Value::Null).await;
    Ok(())
}

/// Where a SAML IdP's metadata comes from on the page.
#[derive(Debug)]
pub enum Metadata<'a> {
    Url(&'a str),
    Pasted(&'a str),
}

pub async fn add_saml(
    ctx: &Ctx<'_>,
    admin: &Administrator,
    name: &str,
    metadata: Metadata<'_>,
    allow_idp_initiated: bool,
    role_map: Vec<(String, String)>,
    require_passkey: bool,
) -> Result<Connection, AdminError> {
    changing(admin)?;
    let (idp, metadata_url) = match metadata {
        Metadata::Url(url) => (ctx.services.sso.fetch_saml_metadata(url).await?, Some(url.to_owned())),
        Metadata::Pasted(xml) => (saml::parse_metadata(xml, ctx.services.sso.allow_loopback)?, None),
    };
    let new = NewSaml { name: name.to_owned(), idp, metadata_url, allow_idp_initiated, role_map, require_passkey };
    let created = connection::create_saml(ctx.scope(), &ctx.tenant.data_key, &admin.organization, new).await?;
    audit(ctx, admin, "sso.connection_create", format!("sso:{}", created.id), serde_json::json!({ "protocol": "saml" })).await;
    Ok(created)
}

pub async fn add_oidc(
    ctx: &Ctx<'_>,
    admin: &Administrator,
    name: &str,
    settings: OidcSettings,
    client_secret: Option<latchkey_proto::Secret>,
    require_passkey: bool,
) -> Result<Connection, AdminError> {
    changing(admin)?;
    let new = NewOidc { name: name.to_owned(), settings, client_secret, require_passkey };
    let created = connection::create_oidc(ctx.scope(), &ctx.tenant.data_key, &admin.organization, new).await?;
    audit(ctx, admin, "sso.connection_create", format!("sso:{}", created.id), serde_json::json!({ "protocol": "oidc" })).await;
    Ok(created)
}

pub async fn remove_connection(ctx: &Ctx<'_>, admin: &Administrator, id: &str) -> Result<(), AdminError> {
    changing(admin)?;
    connection::remove(ctx.scope(), &admin.organization, id).await?;
    audit(ctx, admin, "sso.connection_remove", format!("sso:{id}"), serde_json::Value::Null).await;
    Ok(())
}

/// The connection an administrator tests, when it is their organization's.
pub async fn connection_to_test(ctx: &Ctx<'_>, admin: &Administrator, id: &str) -> Result<Connection, AdminError> {
    match connection::find(ctx.scope(), id).await? {
        Some(connection) if connection.organization_id == admin.organization.id => Ok(connection),
        _ => Err(AdminError::Invalid("There is no such connection in this organization.".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_read_as_a_set_of_words() {
        assert_eq!(parse_role_map("g-admins=admin, g-billing=billing").ok(), Some(vec![("g-admins".into(), "admin".into()), ("g-billing".into(), "billing".into())]));
        assert!(parse_role_map("admin").is_err() && parse_role_map("=admin").is_err());
        for (text, expected) in [
            ("", vec![]),
            ("admin", vec!["admin"]),
            ("owner, admin  owner", vec!["owner", "admin"]),
            (" billing ,", vec!["billing"]),
        ] {
            assert_eq!(parse_roles(text), expected, "{text:?}");
        }
    }
}

/// Issues a SCIM directory token (making the directory on first use); the secret is shown once.
pub async fn scim_token(ctx: &Ctx<'_>, admin: &Administrator) -> Result<latchkey_proto::Secret, AdminError> {
    changing(admin)?;
    let directory = scim::enable(ctx.scope(), &admin.organization).await?;
    let (token, secret) = scim::issue_token(ctx.scope(), &directory).await?;
    audit(ctx, admin, "scim.token_create", format!("scim-directory:{}", directory.id), serde_json::json!({ "token": token.id, "prefix": token.prefix })).await;
    Ok(secret)
}

pub async fn scim_revoke(ctx: &Ctx<'_>, admin: &Administrator, token_id: &str) -> Result<(), AdminError> {
    changing(admin)?;
    let directory = scim::of_organization(ctx.scope(), &admin.organization).await?.ok_or_else(|| AdminError::Invalid("There is no directory.".into()))?;
    if !scim::revoke_token(ctx.scope(), &directory, token_id).await? {
        return Err(AdminError::Invalid("That token is not live.".into()));
    }
    audit(ctx, admin, "scim.token_revoke", format!("scim-directory:{}", directory.id), serde_json::json!({ "token": token_id })).await;
    Ok(())
}

/// Replaces the directory's group-to-role map (`group=role` pairs).
pub async fn scim_role_map(ctx: &Ctx<'_>, admin: &Administrator, text: &str) -> Result<(), AdminError> {
    changing(admin)?;
    let pairs = parse_role_map(text)?;
    let directory = scim::enable(ctx.scope(), &admin.organization).await?;
    scim::set_role_map(ctx.scope(), &directory, &pairs).await?;
    audit(ctx, admin, "scim.role_map_set", format!("scim-directory:{}", directory.id), serde_json::json!({ "pairs": pairs.len() })).await;
    Ok(())
}
