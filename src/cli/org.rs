//! `latchkey org`: organizations (customer companies in a tenant) and their members' roles.

use clap::Subcommand;
use latchkey::{
    crypto::CodeHasher,
    organization,
    sso::{
        dns::TxtResolver,
        domains::{self, DomainName, Recheck},
    },
};

use super::{Admin, CliError, DEFAULT_TENANT};

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Create an organization (a customer company) in a tenant.
    Create {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// Lowercase letters, digits and dashes; never changes (tokens and rules name it).
        slug: String,
        /// Display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the tenant's organizations.
    List {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Make a person (by email; created if new) a member with these roles, or change their roles.
    Member {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The organization's slug.
        org: String,
        /// Kept lower-cased, like every address (a sign-in finds it in any case).
        #[arg(long)]
        email: latchkey::user::Email,
        /// A role to hold (repeatable; owner, admin, member or the tenant's own).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Remove the person from the organization instead.
        #[arg(long)]
        remove: bool,
    },
    /// The organization's domains: claim one, prove it with a DNS TXT record, list, remove.
    Domain {
        #[command(subcommand)]
        command: DomainCommand,
    },
    /// The organization's single sign-on connections.
    Sso {
        #[command(subcommand)]
        command: SsoCommand,
    },
    /// The organization's SCIM directory: its URL, its tokens, its group-to-role map.
    Scim {
        #[command(subcommand)]
        command: ScimCommand,
    },
}

#[derive(Subcommand)]
pub enum ScimCommand {
    /// Print the directory's base URL (making the directory on first use) and its tokens.
    Show {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The organization's slug.
        org: String,
    },
    /// Issue a directory token (printed once). Several may be live: rotate by issuing the next one,
    /// moving the identity provider to it, then revoking the old one.
    Token {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The organization's slug.
        org: String,
    },
    /// Revoke a directory token: requests with it are refused at once.
    Revoke {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The organization's slug.
        org: String,
        /// The token's id (from `show`).
        token_id: String,
    },
    /// Replace the group-to-role map: members of a group named GROUP get ROLE (none: groups map to
    /// no roles and administrators assign them).
    RoleMap {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The organization's slug.
        org: String,
        /// GROUP=ROLE (repeatable).
        #[arg(long = "map")]
        pairs: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum SsoCommand {
    /// Connect an OpenID Provider (Entra ID, Google Workspace, Okta, Auth0, Keycloak, …).
    AddOidc {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The organization's slug.
        org: String,
        /// Shown on the sign-in page and the administration page.
        #[arg(long)]
        name: String,
        /// Where discovery starts, e.g. https://login.microsoftonline.com/{directory id}/v2.0
        #[arg(long)]
        issuer: String,
        /// The client id registered at the IdP.
        #[arg(long)]
        client_id: String,
        /// The environment variable holding the client secret (kept off the command line).
        #[arg(long)]
        client_secret_env: Option<String>,
        /// generic, entra or google
        #[arg(long, default_value = "generic")]
        flavor: latchkey::sso::connection::Flavor,
        /// Entra multi-tenant connections: a directory (tenant) id whose people may sign in; repeat.
        #[arg(long = "allowed-tenant")]
        allowed_tenants: Vec<String>,
        /// Google Workspace: the hosted domain (hd) every sign-in must carry.
        #[arg(long)]
        hosted_domain: Option<String>,
        /// IDP_GROUP_OR_ROLE=ROLE: members with that group or app role get the organization role; repeat.
        #[arg(long = "role-map")]
        role_map: Vec<String>,
        /// Do not require a passkey after SSO when the IdP reports multi-factor authentication.
        #[arg(long)]
        no_passkey: bool,
        /// client-secret (default) or private-key-jwt (a key Latchkey makes; its JWKS and certificate
        /// are printed for the IdP).
        #[arg(long, default_value = "client-secret")]
        client_auth: latchkey::sso::connection::ClientAuth,
    },
    /// Connect a SAML 2.0 identity provider (Entra ID, Okta, ADFS, …) from its metadata.
    AddSaml {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The organization's slug.
        org: String,
        /// Shown on the sign-in page and the administration page.
        #[arg(long)]
        name: String,
        /// The IdP's metadata document (Entra: "Federation Metadata XML").
        #[arg(long, conflicts_with = "metadata_url", required_unless_present = "metadata_url")]
        metadata_file: Option<std::path::PathBuf>,
        /// Where the IdP publishes its metadata (Entra: "App Federation Metadata Url"); https.
        #[arg(long)]
        metadata_url: Option<String>,
        /// Accept sign-ins the IdP starts (its app tiles), not only those started here.
        #[arg(long)]
        allow_idp_initiated: bool,
        /// IDP_GROUP_OR_ROLE=ROLE: members with that group or role get the organization role; repeat.
        #[arg(long = "role-map")]
        role_map: Vec<String>,
        /// Do not require a passkey after SSO when the IdP reports multi-factor authentication.
        #[arg(long)]
        no_passkey: bool,
    },
    /// List the organization's SSO connections.
    List {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The organization's slug.
        org: String,
    },
    /// Remove an SSO connection: its people can no longer sign in through it.
    Remove {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The organization's slug.
        org: String,
        /// The connection's id (from `list`).
        connection: String,
    },
}

#[derive(Subcommand)]
pub enum DomainCommand {
    /// Claim a domain and print the TXT record that proves it (again, if already claimed).
    Add {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The organization's slug.
        org: String,
        /// The domain, e.g. acme.com.
        domain: String,
    },
    /// Look the TXT record up now and, if it holds the value, mark the domain verified.
    Verify {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The organization's slug.
        org: String,
        /// The domain, e.g. acme.com.
        domain: String,
    },
    /// List the organization's domains and their state.
    List {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The organization's slug.
        org: String,
    },
    /// Remove the organization's claim on a domain.
    Remove {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The organization's slug.
        org: String,
        /// The domain, e.g. acme.com.
        domain: String,
    },
    /// Enforce single sign-on for a verified domain: its people sign in only through the
    /// organization's identity provider; owners keep an audited email-code way in (break-glass).
    Enforce {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The organization's slug.
        org: String,
        /// The domain, e.g. acme.com.
        domain: String,
        /// Stop enforcing it.
        #[arg(long)]
        off: bool,
    },
    /// Re-check every verified domain of the tenant now (the server does it every
    /// `domains.recheck_interval_seconds`).
    Recheck {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
}

pub async fn run(app: &Admin, command: OrgCommand) -> Result<(), CliError> {
    match command {
        OrgCommand::Create { tenant, slug, name } => {
            let tenant = app.tenant(&tenant).await?;
            let name = name.unwrap_or_else(|| slug.clone());
            let org = organization::create(tenant.scope(&app.db), &slug, &name).await?;
            app.audit(&tenant, "organization.create", format!("organization:{}", org.slug)).await?;
            println!("created organization {} ({})", org.slug, org.id);
        }
        OrgCommand::List { tenant } => {
            let tenant = app.tenant(&tenant).await?;
            for org in organization::list(tenant.scope(&app.db)).await? {
                println!("{}	{}	{}", org.slug, org.name, org.id);
            }
        }
        OrgCommand::Member { tenant, org, email, roles, remove } => {
            let tenant = app.tenant(&tenant).await?;
            let org = app.organization(&tenant, &org).await?;
            let scope = tenant.scope(&app.db);
            if remove {
                let user = latchkey::user::find_by_email(scope, &email).await?;
                let removed = match &user {
                    Some(user) => organization::remove_member(scope, &org, &user.id).await?,
                    None => false,
                };
                if !removed {
                    return Err(CliError::Usage(format!("{email} is not a member of {}", org.slug)));
                }
                app.audit(&tenant, "organization.member_remove", format!("organization:{}", org.slug)).await?;
                println!("removed {email} from {}", org.slug);
            } else {
                let user = latchkey::user::find_or_create(scope, &email).await?;
                organization::set_member(scope, &org, &user.id, &roles).await?;
                app.audit(&tenant, "organization.member_set", format!("user:{}", user.id)).await?;
                println!("{email} is a member of {} with roles [{}]", org.slug, roles.join(" "));
            }
        }
        OrgCommand::Domain { command } => domain(app, command).await?,
        OrgCommand::Sso { command } => sso(app, command).await?,
        OrgCommand::Scim { command } => scim(app, command).await?,
    }
    Ok(())
}

fn state(claim: &domains::DomainClaim) -> String {
    let enforced = if claim.enforce_sso { ", SSO enforced" } else { "" };
    match (claim.verified_at, claim.lost_at) {
        (Some(_), Some(since)) => format!("verified, record missing since {}{enforced}", super::when(since)),
        (Some(at), None) => format!("verified {}{enforced}", super::when(at)),
        (None, _) => "pending".to_owned(),
    }
}

async fn domain(app: &Admin, command: DomainCommand) -> Result<(), CliError> {
    let hasher = CodeHasher::new(&app.master);
    match command {
        DomainCommand::Add { tenant, org, domain } => {
            let tenant = app.tenant(&tenant).await?;
            let org = app.organization(&tenant, &org).await?;
            let domain = DomainName::parse(&domain)?;
            let (claim, challenge) = domains::claim(tenant.scope(&app.db), &hasher, &org, &domain).await?;
            app.audit(&tenant, "domain.claim", format!("domain:{}", claim.domain)).await?;
            println!("{} is claimed by {} ({})", claim.domain, org.slug, state(&claim));
            println!("publish this DNS record, then run `latchkey org domain verify {} {}`:", org.slug, claim.domain);
            println!("{}\tTXT\t{}", challenge.name, challenge.value);
        }
        DomainCommand::Verify { tenant, org, domain } => {
            let tenant = app.tenant(&tenant).await?;
            let org = app.organization(&tenant, &org).await?;
            let domain = DomainName::parse(&domain)?;
            let resolver = TxtResolver::from_config(&app.config.domains);
            let claim = domains::verify(tenant.scope(&app.db), &hasher, &resolver, &org, &domain).await?;
            app.audit(&tenant, "domain.verify", format!("domain:{}", claim.domain)).await?;
            println!("{} is verified for {}", claim.domain, org.slug);
        }
        DomainCommand::List { tenant, org } => {
            let tenant = app.tenant(&tenant).await?;
            let org = app.organization(&tenant, &org).await?;
            for claim in domains::claims(tenant.scope(&app.db), &org).await? {
                let challenge = domains::challenge(&hasher, &tenant.id, &claim);
                println!("{}\t{}\t{}\t{}", claim.domain, state(&claim), challenge.name, challenge.value);
            }
        }
        DomainCommand::Remove { tenant, org, domain } => {
            let tenant = app.tenant(&tenant).await?;
            let org = app.organization(&tenant, &org).await?;
            let domain = DomainName::parse(&domain)?;
            domains::remove(tenant.scope(&app.db), &org, &domain).await?;
            app.audit(&tenant, "domain.remove", format!("domain:{domain}")).await?;
            println!("{domain} is no longer claimed by {}", org.slug);
        }
        DomainCommand::Enforce { tenant, org, domain, off } => {
            let tenant = app.tenant(&tenant).await?;
            let org = app.organization(&tenant, &org).await?;
            let domain = DomainName::parse(&domain)?;
            latchkey::sso::enforcement::set(tenant.scope(&app.db), &org, &domain, !off).await?;
            let action = if off { "domain.sso_relax" } else { "domain.sso_enforce" };
            app.audit(&tenant, action, format!("domain:{domain}")).await?;
            if off {
                println!("{domain}: SSO no longer enforced");
            } else {
                println!("{domain}: SSO enforced; owners of {} keep an email-code way in (break-glass)", org.slug);
            }
        }
        DomainCommand::Recheck { tenant } => {
            let tenant = app.tenant(&tenant).await?;
            let resolver = TxtResolver::from_config(&app.config.domains);
            let grace = app.config.domains.lost_grace_seconds as i64;
            let outcomes = domains::recheck(tenant.scope(&app.db), &hasher, &resolver, latchkey::store::now(), grace).await?;
            for (claim, outcome) in outcomes {
                let said = match &outcome {
                    Recheck::Found => "found".to_owned(),
                    Recheck::Lost => "record missing: flagged".to_owned(),
                    Recheck::StillLost => "record still missing".to_owned(),
                    Recheck::Withdrawn => "record missing past the grace period: verification withdrawn".to_owned(),
                    Recheck::Unknown(reason) => format!("no answer ({reason}): unchanged"),
                };
                if let Some(action) = outcome.audit_action() {
                    app.audit(&tenant, action, format!("domain:{}", claim.domain)).await?;
                }
                println!("{}\t{said}", claim.domain);
            }
        }
    }
    Ok(())
}

fn parse_role_map(pairs: &[String]) -> Result<Vec<(String, String)>, CliError> {
    pairs
        .iter()
        .map(|pair| pair.split_once('=').map(|(g, r)| (g.to_owned(), r.to_owned())))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| CliError::Usage("--role-map takes IDP_VALUE=ROLE".into()))
}

async fn sso(app: &Admin, command: SsoCommand) -> Result<(), CliError> {
    use latchkey::sso::{
        connection::{self, NewOidc, NewSaml, OidcSettings, Protocol},
        saml,
    };
    match command {
        SsoCommand::AddOidc {
            tenant, org, name, issuer, client_id, client_secret_env, flavor, allowed_tenants, hosted_domain, role_map, no_passkey, client_auth,
        } => {
            let tenant = app.tenant(&tenant).await?;
            let org = app.organization(&tenant, &org).await?;
            let client_secret = super::secret_from_env(client_secret_env.as_deref())?;
            let role_map = parse_role_map(&role_map)?;
            let settings = OidcSettings {
                issuer, client_id, flavor, allowed_tenants, any_tenant: false, hosted_domain, scopes: vec![], client_auth, client_certificate: None, role_map,
            };
            let new = NewOidc { name, settings, client_secret, require_passkey: !no_passkey };
            let created = connection::create_oidc(tenant.scope(&app.db), &tenant.data_key, &org, new).await?;
            app.audit(&tenant, "sso.connection_create", format!("sso:{}", created.id)).await?;
            println!("created SSO connection {} for {}", created.id, org.slug);
            println!("redirect URI to register at the identity provider: {}/sso/callback", tenant.issuer(app.config.base_url()));
            if let Protocol::Oidc(OidcSettings { client_certificate: Some(certificate), .. }) = &created.protocol {
                println!("client assertion keys (JWKS): {}/sso/{}/jwks", tenant.issuer(app.config.base_url()), created.id);
                println!("certificate (for Entra: Certificates & secrets → Upload certificate):");
                println!("-----BEGIN CERTIFICATE-----");
                for line in certificate.as_bytes().chunks(64) {
                    println!("{}", String::from_utf8_lossy(line));
                }
                println!("-----END CERTIFICATE-----");
            }
        }
        SsoCommand::AddSaml { tenant, org, name, metadata_file, metadata_url, allow_idp_initiated, role_map: pairs, no_passkey } => {
            let tenant = app.tenant(&tenant).await?;
            let org = app.organization(&tenant, &org).await?;
            let idp = match (&metadata_file, &metadata_url) {
                (Some(path), _) => {
                    let text = std::fs::read_to_string(path).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
                    saml::parse_metadata(&text, app.config.sso.allow_loopback)
                }
                (None, Some(url)) => latchkey::sso::Sso::new(&app.config.sso).map_err(CliError::Usage)?.fetch_saml_metadata(url).await,
                (None, None) => return Err(CliError::Usage("--metadata-file or --metadata-url".into())),
            }
            .map_err(|e| CliError::Usage(e.to_string()))?;
            let new = NewSaml { name, idp, metadata_url, allow_idp_initiated, role_map: parse_role_map(&pairs)?, require_passkey: !no_passkey };
            let created = connection::create_saml(tenant.scope(&app.db), &tenant.data_key, &org, new).await?;
            app.audit(&tenant, "sso.connection_create", format!("sso:{}", created.id)).await?;
            let base = format!("{}/sso/saml/{}", tenant.issuer(app.config.base_url()), created.id);
            println!("created SSO connection {} for {}", created.id, org.slug);
            println!("entity id (identifier):\t{base}/metadata");
            println!("reply URL (assertion consumer service):\t{base}/acs");
            println!("SP metadata:\t{base}/metadata");
        }
        SsoCommand::List { tenant, org } => {
            let tenant = app.tenant(&tenant).await?;
            let org = app.organization(&tenant, &org).await?;
            for c in connection::of_organization(tenant.scope(&app.db), &org.id).await? {
                let state = if c.enabled { "enabled" } else { "disabled" };
                match &c.protocol {
                    Protocol::Oidc(oidc) => println!("{}\t{}\toidc\t{:?}\t{}\t{state}", c.id, c.name, oidc.flavor, oidc.issuer),
                    Protocol::Saml(saml) => println!("{}\t{}\tsaml\t{}\t{}\t{state}", c.id, c.name, saml.idp_entity_id, saml.sso_url),
                }
            }
        }
        SsoCommand::Remove { tenant, org, connection: id } => {
            let tenant = app.tenant(&tenant).await?;
            let org = app.organization(&tenant, &org).await?;
            connection::remove(tenant.scope(&app.db), &org, &id).await?;
            app.audit(&tenant, "sso.connection_remove", format!("sso:{id}")).await?;
            println!("removed SSO connection {id}");
        }
    }
    Ok(())
}

async fn scim(app: &Admin, command: ScimCommand) -> Result<(), CliError> {
    use latchkey::scim::directory::{self, DirectoryError};
    let directory_error = |e: DirectoryError| match e {
        DirectoryError::Store(e) => CliError::from(e),
        other => CliError::Usage(other.to_string()),
    };
    let (tenant_slug, org_slug) = match &command {
        ScimCommand::Show { tenant, org } | ScimCommand::Token { tenant, org } | ScimCommand::Revoke { tenant, org, .. } | ScimCommand::RoleMap { tenant, org, .. } => {
            (tenant.clone(), org.clone())
        }
    };
    let tenant = app.tenant(&tenant_slug).await?;
    let org = app.organization(&tenant, &org_slug).await?;
    let scope = tenant.scope(&app.db);
    let existing = directory::of_organization(scope, &org).await?;
    let directory = directory::enable(scope, &org).await?;
    if existing.is_none() {
        app.audit(&tenant, "scim.directory_create", format!("scim-directory:{}", directory.id)).await?;
    }
    match command {
        ScimCommand::Show { .. } => {
            println!("SCIM base URL (Entra: Tenant URL): {}/scim/v2/{}", tenant.issuer(app.config.base_url()), org.slug);
            for token in directory::tokens(scope, &directory).await? {
                let state = match (token.revoked_at, token.last_used_at) {
                    (Some(at), _) => format!("revoked {}", super::when(at)),
                    (None, Some(at)) => format!("live, last used {}", super::when(at)),
                    (None, None) => "live, never used".to_owned(),
                };
                println!("{}\t{}…\t{}", token.id, token.prefix, state);
            }
            for (group, role) in &directory.role_map {
                println!("role map\t{group}\t{role}");
            }
        }
        ScimCommand::Token { .. } => {
            let (token, secret) = directory::issue_token(scope, &directory).await.map_err(directory_error)?;
            app.audit(&tenant, "scim.token_create", format!("scim-directory:{}", directory.id)).await?;
            println!("SCIM base URL (Entra: Tenant URL): {}/scim/v2/{}", tenant.issuer(app.config.base_url()), org.slug);
            println!("token {} (Entra: Secret Token; shown once):", token.id);
            println!("{}", secret.expose());
        }
        ScimCommand::Revoke { token_id, .. } => {
            if !directory::revoke_token(scope, &directory, &token_id).await? {
                return Err(CliError::Usage(format!("{token_id} is not a live token of this directory")));
            }
            app.audit(&tenant, "scim.token_revoke", format!("scim-directory:{}", directory.id)).await?;
            println!("revoked {token_id}");
        }
        ScimCommand::RoleMap { pairs, .. } => {
            let pairs = parse_role_map(&pairs)?;
            directory::set_role_map(scope, &directory, &pairs).await.map_err(directory_error)?;
            app.audit(&tenant, "scim.role_map_set", format!("scim-directory:{}", directory.id)).await?;
            println!("{} group-to-role pairs set", pairs.len());
        }
    }
    Ok(())
}
