//! `latchkey user`: people's accounts.

use clap::Subcommand;

use super::{Admin, CliError, DEFAULT_TENANT};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Set a person's profile claims (OIDC Core §5.1); the person is created if new. A field left out
    /// keeps its value; an empty value clears it.
    Profile {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The person's address.
        #[arg(long)]
        email: latchkey::user::Email,
        /// Full name.
        #[arg(long)]
        name: Option<String>,
        /// Given (first) name.
        #[arg(long)]
        given_name: Option<String>,
        /// Family (last) name.
        #[arg(long)]
        family_name: Option<String>,
        /// A short name the person goes by.
        #[arg(long)]
        preferred_username: Option<String>,
        /// A language tag such as en-US.
        #[arg(long)]
        locale: Option<String>,
        /// A time zone name such as Europe/Paris.
        #[arg(long)]
        zoneinfo: Option<String>,
        /// An https URL of the person's picture.
        #[arg(long)]
        picture: Option<String>,
    },
}

pub async fn run(app: &Admin, command: UserCommand) -> Result<(), CliError> {
    match command {
        UserCommand::Profile { tenant, email, name, given_name, family_name, preferred_username, locale, zoneinfo, picture } => {
            let tenant = app.tenant(&tenant).await?;
            let scope = tenant.scope(&app.db);
            let user = latchkey::user::find_or_create(scope, &email).await?;
            let current = latchkey::user::Profile::of(&user);
            let profile = latchkey::user::Profile {
                name: name.or(current.name),
                given_name: given_name.or(current.given_name),
                family_name: family_name.or(current.family_name),
                preferred_username: preferred_username.or(current.preferred_username),
                locale: locale.or(current.locale),
                zoneinfo: zoneinfo.or(current.zoneinfo),
                picture: picture.or(current.picture),
            }
            .checked()
            .map_err(CliError::Usage)?;
            latchkey::user::set_profile(scope, &user.id, profile).await?;
            app.audit(&tenant, "user.profile", format!("user:{}", user.id)).await?;
            println!("profile of {} updated", user.email);
        }
    }
    Ok(())
}
