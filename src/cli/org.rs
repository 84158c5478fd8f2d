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
    Create {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// Lowercase letters, digits and dashes; never changes (tokens and rules name it).
        slug: String,
        #[arg(long)]
        name: Option<String>,
    },
    List {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Make a person (by email; created if new) a member with these roles, or change their roles.
    Member {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        org: String,
        /// Kept lower-cased, like every address (a sign-in finds it in any case).
        #[arg(long)]
        email: latchkey::user::Email,
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
}

#[derive(Subcommand)]
pub enum DomainCommand {
    /// Claim a domain and print the TXT record that proves it (again, if already claimed).
    Add {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        org: String,
        domain: String,
    },
    /// Look the TXT record up now and, if it holds the value, mark the domain verified.
    Verify {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        org: String,
        domain: String,
    },
    List {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        org: String,
    },
    Remove {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        org: String,
        domain: String,
    },
    /// Re-check every verified domain of the tenant now (the server does it every
    /// `domains.recheck_interval_seconds`).
    Recheck {
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
    }
    Ok(())
}

fn state(claim: &domains::DomainClaim) -> String {
    match (claim.verified_at, claim.lost_at) {
        (Some(_), Some(since)) => format!("verified, record missing since {}", super::when(since)),
        (Some(at), None) => format!("verified {}", super::when(at)),
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
            let resolver = TxtResolver::from_config(&app.config.domains).map_err(CliError::Usage)?;
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
        DomainCommand::Recheck { tenant } => {
            let tenant = app.tenant(&tenant).await?;
            let resolver = TxtResolver::from_config(&app.config.domains).map_err(CliError::Usage)?;
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
