//! The `latchkey` binary: the server (`serve`, the default) and the operator's commands (`cli`).

mod cli;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use latchkey::{
    app::{App, DEFAULT_TENANT},
    config::Config,
};

use cli::{Admin, CliError};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "latchkey",
    version,
    about = "Identity provider and OAuth 2.1 / OpenID Connect server"
)]
struct Cli {
    /// TOML configuration file (also LATCHKEY_CONFIG). Environment variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Tenants: issuers, each with its own keys, people, clients and policies.
    #[command(subcommand)]
    Tenant(cli::tenant::TenantCommand),
    /// OAuth clients (applications) registered by the operator.
    #[command(subcommand)]
    Client(cli::client::ClientCommand),
    /// A tenant's signing keys.
    #[command(subcommand)]
    Keys(cli::keys::KeysCommand),
    /// Protected resources (RFC 8707): the audiences access tokens may be issued for.
    #[command(subcommand)]
    Resource(cli::resource::ResourceCommand),
    /// Initial access tokens for the `token` registration policy (RFC 7591 §3).
    #[command(subcommand)]
    RegistrationToken(cli::registration_token::RegistrationTokenCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(cli::audit::AuditCommand),
    /// Organizations (customer companies in a tenant) and their members' roles.
    #[command(subcommand)]
    Org(cli::org::OrgCommand),
    /// Bot identities of an organization (client credentials or agent tokens).
    #[command(subcommand)]
    ServiceAccount(cli::service_account::ServiceAccountCommand),
    /// Long-lived agent tokens of a service account, exchanged for access tokens (RFC 8693).
    #[command(subcommand)]
    AgentToken(cli::agent_token::AgentTokenCommand),
    /// People's accounts.
    #[command(subcommand)]
    User(cli::user::UserCommand),
}

/// Logs to stderr: `LATCHKEY_LOG` filters (default `info`), `LATCHKEY_LOG_FORMAT=json` writes one JSON
/// object per line (for a log collector), colours only on a terminal.
fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("LATCHKEY_LOG").unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match std::env::var("LATCHKEY_LOG_FORMAT").as_deref() {
        // With the access log, a request's lines carry its `request` span (the request id).
        Ok("json") => builder.json().with_current_span(true).with_span_list(false).init(),
        _ => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let config = Config::load(cli.config.as_deref())?;
    // Administrative commands open storage only (`Admin`). The `default` tenant is made as a first
    // server start would make it, except by the commands that only migrate or read the audit log.
    let with_default = |config| Admin::open(config, true);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            Admin::open(config, false).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Audit(command) => cli::audit::run(&Admin::open(config, false).await?, command).await,
        Command::Tenant(command) => cli::tenant::run(&with_default(config).await?, command).await,
        Command::Client(command) => cli::client::run(&with_default(config).await?, command).await,
        Command::Resource(command) => cli::resource::run(&with_default(config).await?, command).await,
        Command::RegistrationToken(command) => cli::registration_token::run(&with_default(config).await?, command).await,
        Command::Keys(command) => cli::keys::run(&with_default(config).await?, command).await,
        Command::Org(command) => cli::org::run(&with_default(config).await?, command).await,
        Command::ServiceAccount(command) => cli::service_account::run(&with_default(config).await?, command).await,
        Command::AgentToken(command) => cli::agent_token::run(&with_default(config).await?, command).await,
        Command::User(command) => cli::user::run(&with_default(config).await?, command).await,
    }
}

async fn serve(config: Config) -> Result<(), CliError> {
    let app = App::start(config, true).await?;
    let issuer = format!("{}/t/{DEFAULT_TENANT}", app.config.base_url());
    let mail = if app.config.mail.smtp_host.is_some() {
        "SMTP".to_owned()
    } else {
        format!("console + {}", app.config.data_dir.join("outbox").display())
    };
    // The banner says where the server listens once it does: a port already taken fails here, before
    // anything claims to be serving or any background work starts.
    let listening = latchkey::http::bind(app.clone())?;
    latchkey::background::spawn(&app);
    let listen = listening.public.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let metrics = listening.metrics.iter().map(|a| format!("http://{a}/metrics")).collect::<Vec<_>>().join(", ");
    // For a log collector, one event; for a person at a terminal, the banner.
    if std::env::var("LATCHKEY_LOG_FORMAT").as_deref() == Ok("json") {
        tracing::info!(%listen, %issuer, %mail, %metrics, "latchkey serving");
    } else {
        let metrics = if metrics.is_empty() { String::new() } else { format!("  metrics:   {metrics}\n") };
        eprintln!(
            "\nLatchkey is listening on http://{listen}\n  issuer:    {issuer}\n  discovery: {issuer}/.well-known/openid-configuration\n  \
             mail:      {mail}\n{metrics}\nNext: register a client, e.g.\n  latchkey client create --name \"My app\" --redirect-uri http://127.0.0.1:3000/callback\n"
        );
    }
    listening.run().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// `latchkey help …` explains every command and flag: an operator reads the CLI, not its source.
    #[test]
    fn every_command_and_flag_says_what_it_does() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let generated = matches!(arg.get_id().as_str(), "help" | "version");
                if !generated && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} <{}>", arg.get_id()));
                }
            }
            for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(sub_path.clone());
                }
                walk(sub, &sub_path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "latchkey", &mut missing);
        assert!(missing.is_empty(), "without help text:\n{}", missing.join("\n"));
    }
}
