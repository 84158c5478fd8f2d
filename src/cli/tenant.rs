//! `latchkey tenant`: issuers and their tenant-wide policies.

use clap::Subcommand;
use latchkey::tenant::{self, RegistrationPolicy};

use super::{Admin, CliError};

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant: a new issuer ({public_url}/t/{slug}) with its own keys, people and clients.
    Create {
        /// Lowercase letters, digits and dashes; part of the issuer URL, never changes.
        slug: String,
        /// Display name on the sign-in pages and in mail (default: the slug).
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
        /// The tenant's slug.
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
        /// The RFC 9396 authorization details types backchannel (CIBA) requests may carry, comma
        /// separated (e.g. `tool_call`); an empty value accepts none (docs/approvals.md).
        #[arg(long, value_delimiter = ',')]
        authorization_details_types: Option<Vec<String>>,
    },
    /// List the tenants.
    List,
    /// Tenant-wide social sign-in: "Continue with Google / Microsoft" on the sign-in page.
    Social {
        #[command(subcommand)]
        command: SocialCommand,
    },
}

#[derive(Subcommand)]
pub enum SocialCommand {
    /// Add a "Continue with …" button: a social identity provider for the whole tenant.
    Add {
        /// The tenant, by its slug.
        #[arg(long, default_value = super::DEFAULT_TENANT)]
        tenant: String,
        /// google or microsoft
        provider: latchkey::sso::connection::SocialProvider,
        /// The client id registered at the provider.
        #[arg(long)]
        client_id: String,
        /// The environment variable holding the client secret (kept off the command line).
        #[arg(long)]
        client_secret_env: Option<String>,
        /// Another issuer than the provider's own (a test provider).
        #[arg(long)]
        issuer: Option<String>,
    },
    /// List the tenant's social providers.
    List {
        /// The tenant, by its slug.
        #[arg(long, default_value = super::DEFAULT_TENANT)]
        tenant: String,
    },
    /// Remove a social provider.
    Remove {
        /// The tenant, by its slug.
        #[arg(long, default_value = super::DEFAULT_TENANT)]
        tenant: String,
        /// The connection's id (from `list`).
        connection: String,
    },
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
            authorization_details_types,
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
            if let Some(types) = authorization_details_types {
                let types: Vec<String> = types.into_iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
                tenant::set_authorization_details_types(&app.db, &slug, &types).await?;
                println!("tenant {slug}: authorization details types = [{}]", types.join(", "));
            }
        }
        TenantCommand::Social { command } => social(app, command).await?,
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

async fn social(app: &Admin, command: SocialCommand) -> Result<(), CliError> {
    use latchkey::sso::connection::{self, Protocol};
    match command {
        SocialCommand::Add { tenant, provider, client_id, client_secret_env, issuer } => {
            let tenant = app.tenant(&tenant).await?;
            let client_secret = super::secret_from_env(client_secret_env.as_deref())?;
            let created = connection::create_social(tenant.scope(&app.db), &tenant.data_key, provider, issuer, client_id, client_secret).await?;
            app.audit(&tenant, "sso.social_create", format!("sso:{}", created.id)).await?;
            println!("created social sign-in {} ({})", created.id, created.name);
            println!("redirect URI to register at the provider: {}/sso/callback", tenant.issuer(app.config.base_url()));
        }
        SocialCommand::List { tenant } => {
            let tenant = app.tenant(&tenant).await?;
            for c in connection::social(tenant.scope(&app.db)).await? {
                if let Protocol::Oidc(oidc) = &c.protocol {
                    println!("{}\t{}\t{}", c.id, c.name, oidc.issuer);
                }
            }
        }
        SocialCommand::Remove { tenant, connection: id } => {
            let tenant = app.tenant(&tenant).await?;
            connection::remove_social(tenant.scope(&app.db), &id).await?;
            app.audit(&tenant, "sso.social_remove", format!("sso:{id}")).await?;
            println!("removed social sign-in {id}");
        }
    }
    Ok(())
}
