//! `latchkey org`: organizations (customer companies in a tenant) and their members' roles.

use clap::Subcommand;
use latchkey::organization;

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
    }
    Ok(())
}
