//! `latchkey service-account`: bot identities of an organization (client credentials or agent tokens).

use clap::Subcommand;
use latchkey::service_account;
use serde_json::json;

use super::{Admin, CliError, DEFAULT_TENANT};

#[derive(Subcommand)]
pub enum ServiceAccountCommand {
    /// Create a service account; prints its client credentials once.
    Create {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// What the account is (shown in listings and the audit log).
        #[arg(long)]
        name: String,
        /// A scope its tokens may carry (repeatable, at least one).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// An organization role its tokens carry (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List an organization's service accounts.
    List {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The organization's slug.
        #[arg(long)]
        org: String,
    },
    /// Stop the account: its client and every agent token stop working at once.
    Disable {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The service account's id.
        id: String,
    },
}

pub async fn run(app: &Admin, command: ServiceAccountCommand) -> Result<(), CliError> {
    match command {
        ServiceAccountCommand::Create { tenant, org, name, scopes, roles, json } => {
            let tenant = app.tenant(&tenant).await?;
            let org = app.organization(&tenant, &org).await?;
            let (account, secret) =
                service_account::create(tenant.scope(&app.db), &org, &name, &scopes, &roles).await?;
            app.audit(&tenant, "service_account.create", format!("service_account:{}", account.id)).await?;
            if json {
                println!("{}", json!({ "id": account.id, "client_id": account.client_id, "client_secret": secret }));
            } else {
                println!("service account: {}
client_id:       {}", account.id, account.client_id);
                println!("client_secret:   {}
(shown once: store it now; only its hash is kept)", secret.expose());
            }
        }
        ServiceAccountCommand::List { tenant, org } => {
            let tenant = app.tenant(&tenant).await?;
            let org = app.organization(&tenant, &org).await?;
            for a in service_account::list(tenant.scope(&app.db), &org).await? {
                let state = if a.is_active() { "active" } else { "disabled" };
                println!("{}	{}	{state}	client:{}	roles:{}	scopes:{}", a.id, a.name, a.client_id, a.roles.join(","), a.scopes.join(","));
            }
        }
        ServiceAccountCommand::Disable { tenant, id } => {
            let tenant = app.tenant(&tenant).await?;
            let revoked = service_account::disable(tenant.scope(&app.db), &id).await?;
            app.audit(&tenant, "service_account.disable", format!("service_account:{id}")).await?;
            println!("disabled {id}; {revoked} agent token(s) revoked with it");
        }
    }
    Ok(())
}
