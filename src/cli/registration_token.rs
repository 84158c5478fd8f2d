//! `latchkey registration-token`: initial access tokens for the `token` registration policy (RFC 7591 §3).

use clap::Subcommand;

use super::{Admin, CliError, DEFAULT_TENANT};

#[derive(Subcommand)]
pub enum RegistrationTokenCommand {
    /// Issue an initial access token: clients present it to register. Printed once.
    Create {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// Days until it expires.
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
}

pub async fn run(app: &Admin, command: RegistrationTokenCommand) -> Result<(), CliError> {
    let RegistrationTokenCommand::Create { tenant, days } = command;
    let tenant = app.tenant(&tenant).await?;
    let token = latchkey::oauth::registration::issue_initial_access_token(
        tenant.scope(&app.db),
        i64::from(days) * 24 * 3600,
    )
    .await?;
    println!("{}", token.expose());
    eprintln!("initial access token for tenant {} (valid {days} days; shown once)", tenant.slug);
    Ok(())
}
