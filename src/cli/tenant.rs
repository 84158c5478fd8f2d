//! `latchkey tenant`: issuers and their tenant-wide policies.

use clap::Subcommand;
use latchkey::tenant::{self, RegistrationPolicy};

use super::{Admin, CliError};

#[derive(Subcommand)]
pub enum TenantCommand {
    Create {
        slug: String,
        #[arg(long)]
        name: Option<String>,
        /// Only existing users may sign in.
        #[arg(long)]
        no_self_signup: bool,
        /// Every user must set up an authenticator app (TOTP) before an authorization completes.
        #[arg(long)]
        require_authenticator_app: bool,
    },
    /// Change a tenant's policy.
    Set {
        slug: String,
        /// Require (true) or stop requiring (false) an authenticator app for every user.
        #[arg(long)]
        require_authenticator_app: Option<bool>,
        /// Dynamic client registration: open, token (an initial access token) or closed.
        #[arg(long)]
        registration: Option<RegistrationPolicy>,
        /// Whether self-registered clients may use the client-credentials grant (default false:
        /// with open registration, anyone could otherwise mint machine tokens).
        #[arg(long)]
        registration_client_credentials: Option<bool>,
    },
    List,
}

pub async fn run(app: &Admin, command: TenantCommand) -> Result<(), CliError> {
    match command {
        TenantCommand::Create {
            slug,
            name,
            no_self_signup,
            require_authenticator_app,
        } => {
            let name = name.unwrap_or_else(|| slug.clone());
            let tenant =
                tenant::create(&app.db, &app.master, &slug, &name, !no_self_signup).await?;
            if require_authenticator_app {
                tenant::set_require_totp(&app.db, &slug, true).await?;
            }
            println!(
                "created tenant {} — issuer {}",
                tenant.slug,
                tenant.issuer(app.config.base_url())
            );
        }
        TenantCommand::Set {
            slug,
            require_authenticator_app,
            registration,
            registration_client_credentials,
        } => {
            app.tenant(&slug).await?;
            if let Some(required) = require_authenticator_app {
                tenant::set_require_totp(&app.db, &slug, required).await?;
                println!("tenant {slug}: authenticator app required = {required}");
            }
            if let Some(policy) = registration {
                tenant::set_registration_policy(&app.db, &slug, policy).await?;
                println!("tenant {slug}: client registration = {}", policy.as_str());
            }
            if let Some(allowed) = registration_client_credentials {
                tenant::set_registration_client_credentials(&app.db, &slug, allowed).await?;
                println!("tenant {slug}: self-registered clients may use client credentials = {allowed}");
            }
        }
        TenantCommand::List => {
            for t in tenant::list(&app.db).await? {
                println!(
                    "{}\t{}\t{}/t/{}",
                    t.slug,
                    t.display_name,
                    app.config.base_url(),
                    t.slug
                );
            }
        }
    }
    Ok(())
}
