//! `latchkey agent-token`: long-lived agent tokens of a service account, exchanged for access tokens (RFC 8693).

use clap::Subcommand;
use latchkey::service_account;
use serde_json::json;

use super::{Admin, CliError, DEFAULT_TENANT, when};

#[derive(Subcommand)]
pub enum AgentTokenCommand {
    /// Issue an agent token (printed once; at most three active per account).
    Create {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The service account's id.
        #[arg(long)]
        service_account: String,
        /// What the token is for (shown in listings and the audit log).
        #[arg(long)]
        name: String,
        /// Narrow it to these scopes (default: all of the account's).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Days until it expires.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List a service account's agent tokens (never the tokens themselves).
    List {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The service account's id.
        #[arg(long)]
        service_account: String,
    },
    /// Revoke an agent token: exchanges with it stop at once.
    Revoke {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The service account's id.
        #[arg(long)]
        service_account: String,
        /// The agent token's id (from `list`).
        token_id: String,
    },
}

pub async fn run(app: &Admin, command: AgentTokenCommand) -> Result<(), CliError> {
    match command {
        AgentTokenCommand::Create { tenant, service_account, name, scopes, days, json } => {
            let tenant = app.tenant(&tenant).await?;
            let account = app.service_account(&tenant, &service_account).await?;
            let scopes = (!scopes.is_empty()).then_some(scopes.as_slice());
            let (token, secret) = service_account::create_agent_token(
                tenant.scope(&app.db),
                &account,
                &name,
                scopes,
                i64::from(days) * 24 * 3600,
            )
            .await?;
            app.audit(&tenant, "agent_token.create", format!("agent_token:{}", token.id)).await?;
            if json {
                println!("{}", json!({ "id": token.id, "token": secret, "expires_at": token.expires_at }));
            } else {
                println!("agent token: {}
expires:     {}
token:       {}", token.id, when(token.expires_at), secret.expose());
                println!("(shown once: store it now; only its hash is kept)");
            }
        }
        AgentTokenCommand::List { tenant, service_account } => {
            let tenant = app.tenant(&tenant).await?;
            let account = app.service_account(&tenant, &service_account).await?;
            let now = latchkey::store::now();
            for t in service_account::agent_tokens(tenant.scope(&app.db), &account.id).await? {
                let state = if t.revoked_at.is_some() { "revoked" } else if t.is_active(now) { "active" } else { "expired" };
                let used = t.last_used_at.map_or_else(|| "never".to_owned(), when);
                println!("{}	{}	{}…	{state}	expires:{}	last used:{used}	scopes:{}", t.id, t.name, t.prefix, when(t.expires_at), t.scopes.join(","));
            }
        }
        AgentTokenCommand::Revoke { tenant, service_account, token_id } => {
            let tenant = app.tenant(&tenant).await?;
            if !service_account::revoke_agent_token(tenant.scope(&app.db), &service_account, &token_id).await? {
                return Err(CliError::Usage(format!("no active agent token {token_id:?} for {service_account}")));
            }
            app.audit(&tenant, "agent_token.revoke", format!("agent_token:{token_id}")).await?;
            println!("revoked {token_id}");
        }
    }
    Ok(())
}
