//! `latchkey resource`: protected resources (RFC 8707), the audiences access tokens may be issued for.

use clap::Subcommand;
use latchkey::oauth::resource;

use super::{Admin, CliError, DEFAULT_TENANT};

#[derive(Subcommand)]
pub enum ResourceCommand {
    /// Register a resource: clients name its URI in `resource`, tokens for it carry it as `aud`.
    Create {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The resource URI clients name (RFC 8707), e.g. https://files.example.com/mcp.
        #[arg(long)]
        uri: String,
        /// Shown on the consent page (default: the URI).
        #[arg(long)]
        name: Option<String>,
        /// A scope tokens for this resource may carry (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Tokens for this resource need a passkey sign-in (acr `phr`).
        #[arg(long)]
        step_up: bool,
        /// With --step-up: still accept machine tokens (client credentials, agent tokens), which
        /// carry no passkey. Without it a step-up resource is for people only.
        #[arg(long, requires = "step_up")]
        accepts_agents: bool,
        /// A scope granted when a request names this resource and no scope (repeatable; default:
        /// all of its scopes).
        #[arg(long = "default-scope")]
        default_scopes: Vec<String>,
    },
    /// List the tenant's resources.
    List {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Delete a resource: no new tokens are issued for it.
    Delete {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The resource URI.
        #[arg(long)]
        uri: String,
    },
}

pub async fn run(app: &Admin, command: ResourceCommand) -> Result<(), CliError> {
    match command {
        ResourceCommand::Create { tenant, uri, name, scopes, step_up, accepts_agents, default_scopes } => {
            let tenant = app.tenant(&tenant).await?;
            let name = name.unwrap_or_else(|| uri.clone());
            let default_scopes = (!default_scopes.is_empty()).then_some(default_scopes);
            let new = resource::Resource { uri, name, scopes, step_up, accepts_agents, default_scopes };
            let created = resource::create(tenant.scope(&app.db), new).await?;
            println!("registered resource {} in tenant {}", created.uri, tenant.slug);
        }
        ResourceCommand::List { tenant } => {
            let tenant = app.tenant(&tenant).await?;
            for r in resource::list(tenant.scope(&app.db)).await? {
                let step_up = match (r.step_up, r.accepts_agents) {
                    (false, _) => "",
                    (true, false) => "\tstep-up",
                    (true, true) => "\tstep-up\taccepts-agents",
                };
                println!("{}\t{}\t{}{step_up}", r.uri, r.name, r.scopes.join(" "));
            }
        }
        ResourceCommand::Delete { tenant, uri } => {
            let tenant = app.tenant(&tenant).await?;
            if !resource::delete(tenant.scope(&app.db), &uri).await? {
                return Err(CliError::Usage(format!("no resource {uri:?}")));
            }
            println!("deleted resource {uri}");
        }
    }
    Ok(())
}
