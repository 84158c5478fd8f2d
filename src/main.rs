//! The `latchkey` binary: the server and the operator CLI.

use std::{path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use clap::{Parser, Subcommand};
use latchkey::{
    app::{App, DEFAULT_TENANT},
    client::{self, GrantType, NewClient},
    config::Config,
    keys::{self, SigningAlg},
    resource,
    tenant::{self, RegistrationPolicy, Tenant},
};
use serde_json::json;

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
    #[command(subcommand)]
    Tenant(TenantCommand),
    #[command(subcommand)]
    Client(ClientCommand),
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Protected resources (RFC 8707): the audiences access tokens may be issued for.
    #[command(subcommand)]
    Resource(ResourceCommand),
    /// Initial access tokens for the `token` registration policy (RFC 7591 §3).
    #[command(subcommand)]
    RegistrationToken(RegistrationTokenCommand),
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand)]
enum ResourceCommand {
    /// Register a resource: clients name its URI in `resource`, tokens for it carry it as `aud`.
    Create {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        #[arg(long)]
        uri: String,
        #[arg(long)]
        name: Option<String>,
        /// A scope tokens for this resource may carry (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Tokens for this resource need a passkey sign-in (acr `phr`).
        #[arg(long)]
        step_up: bool,
    },
    List {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    Delete {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        #[arg(long)]
        uri: String,
    },
}

#[derive(Subcommand)]
enum RegistrationTokenCommand {
    /// Issue an initial access token: clients present it to register. Printed once.
    Create {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
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
    },
    List,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client. A confidential client's secret is printed once and never again.
    Create {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        confidential: bool,
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// authorization_code, refresh_token, client_credentials (default: the first two)
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// Allowed scopes (default: openid email offline_access)
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Skip the consent page for this client.
        #[arg(long)]
        first_party: bool,
        #[arg(long, default_value = "RS256")]
        id_token_alg: SigningAlg,
        #[arg(long, default_value = "ES256")]
        access_token_alg: SigningAlg,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    Delete {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        client_id: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// New signing keys become current; old ones stay in the JWKS until their tokens have expired.
    Rotate {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// The most recent audit events, newest first, as JSON lines.
    Tail {
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Config(#[from] latchkey::config::ConfigError),
    #[error(transparent)]
    Startup(#[from] latchkey::app::StartupError),
    #[error(transparent)]
    Store(#[from] latchkey::store::StoreError),
    #[error(transparent)]
    Tenant(#[from] latchkey::tenant::TenantError),
    #[error(transparent)]
    Client(#[from] latchkey::client::ClientError),
    #[error(transparent)]
    Resource(#[from] latchkey::resource::ResourceError),
    #[error("{0}")]
    Usage(String),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LATCHKEY_LOG")
                .unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
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

async fn tenant_named(app: &App, slug: &str) -> Result<Arc<Tenant>, CliError> {
    app.tenant(slug)
        .await?
        .ok_or_else(|| CliError::Usage(format!("no tenant {slug:?}")))
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            App::start(config, false).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Tenant(command) => {
            let app = App::start(config, true).await?;
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
                } => {
                    tenant_named(&app, &slug).await?;
                    if let Some(required) = require_authenticator_app {
                        tenant::set_require_totp(&app.db, &slug, required).await?;
                        println!("tenant {slug}: authenticator app required = {required}");
                    }
                    if let Some(policy) = registration {
                        tenant::set_registration_policy(&app.db, &slug, policy).await?;
                        println!("tenant {slug}: client registration = {}", policy.as_str());
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
        Command::Client(command) => client_command(App::start(config, true).await?, command).await,
        Command::Resource(command) => {
            let app = App::start(config, true).await?;
            match command {
                ResourceCommand::Create { tenant, uri, name, scopes, step_up } => {
                    let tenant = tenant_named(&app, &tenant).await?;
                    let name = name.unwrap_or_else(|| uri.clone());
                    let created = resource::create(tenant.scope(&app.db), resource::Resource { uri, name, scopes, step_up }).await?;
                    println!("registered resource {} in tenant {}", created.uri, tenant.slug);
                }
                ResourceCommand::List { tenant } => {
                    let tenant = tenant_named(&app, &tenant).await?;
                    for r in resource::list(tenant.scope(&app.db)).await? {
                        let step_up = if r.step_up { "\tstep-up" } else { "" };
                        println!("{}\t{}\t{}{step_up}", r.uri, r.name, r.scopes.join(" "));
                    }
                }
                ResourceCommand::Delete { tenant, uri } => {
                    let tenant = tenant_named(&app, &tenant).await?;
                    if !resource::delete(tenant.scope(&app.db), &uri).await? {
                        return Err(CliError::Usage(format!("no resource {uri:?}")));
                    }
                    println!("deleted resource {uri}");
                }
            }
            Ok(())
        }
        Command::RegistrationToken(RegistrationTokenCommand::Create { tenant, days }) => {
            let app = App::start(config, true).await?;
            let tenant = tenant_named(&app, &tenant).await?;
            let token = latchkey::oauth::registration::issue_initial_access_token(
                tenant.scope(&app.db),
                i64::from(days) * 24 * 3600,
            )
            .await?;
            println!("{token}");
            eprintln!("initial access token for tenant {} (valid {days} days; shown once)", tenant.slug);
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate { tenant }) => {
            let app = App::start(config, true).await?;
            let tenant = tenant_named(&app, &tenant).await?;
            let kids = keys::rotate(
                tenant.scope(&app.db),
                &tenant.data_key,
                app.config.key_publish_grace(),
            )
            .await?;
            latchkey::audit::record(
                &app.db,
                &Default::default(),
                latchkey::audit::Event::new(&tenant.id, "operator", "keys.rotate")
                    .details(json!({ "new_kids": kids })),
            )
            .await?;
            println!(
                "rotated signing keys for {}: new kids {}",
                tenant.slug,
                kids.join(", ")
            );
            Ok(())
        }
        Command::Audit(AuditCommand::Tail { limit }) => {
            let app = App::start(config, false).await?;
            for event in latchkey::audit::recent(&app.db, limit).await? {
                println!(
                    "{}",
                    json!({
                        "id": event.id, "tenant_id": event.tenant_id, "at": event.occurred_at, "actor": event.actor,
                        "action": event.action, "target": event.target, "outcome": event.outcome, "ip": event.ip,
                        "details": event.details,
                    })
                );
            }
            Ok(())
        }
    }
}

async fn client_command(app: Arc<App>, command: ClientCommand) -> Result<(), CliError> {
    match command {
        ClientCommand::Create {
            tenant,
            name,
            confidential,
            redirect_uris,
            post_logout_redirect_uris,
            grant_types,
            scopes,
            first_party,
            id_token_alg,
            access_token_alg,
            json: as_json,
        } => {
            let tenant = tenant_named(&app, &tenant).await?;
            let grant_types = if grant_types.is_empty() {
                vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
            } else {
                grant_types
                    .iter()
                    .map(|g| {
                        GrantType::parse(g)
                            .ok_or_else(|| CliError::Usage(format!("unknown grant type {g:?}")))
                    })
                    .collect::<Result<_, _>>()?
            };
            let scopes = if scopes.is_empty() {
                vec!["openid".into(), "email".into(), "offline_access".into()]
            } else {
                scopes
                    .iter()
                    .flat_map(|s| s.split(' '))
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            };
            let new = NewClient {
                name,
                confidential,
                redirect_uris,
                post_logout_redirect_uris,
                grant_types,
                scopes,
                first_party,
                id_token_alg,
                access_token_alg,
                registration: None,
            };
            let (created, secret) = client::create(tenant.scope(&app.db), new).await?;
            latchkey::audit::record(
                &app.db,
                &Default::default(),
                latchkey::audit::Event::new(&tenant.id, "operator", "client.create")
                    .target(format!("client:{}", created.client_id)),
            )
            .await?;
            if as_json {
                println!(
                    "{}",
                    json!({ "client_id": created.client_id, "client_secret": secret })
                );
            } else {
                println!("client_id:     {}", created.client_id);
                if let Some(secret) = secret {
                    println!(
                        "client_secret: {secret}\n(shown once: store it now; only its hash is kept)"
                    );
                }
            }
            Ok(())
        }
        ClientCommand::List { tenant } => {
            let tenant = tenant_named(&app, &tenant).await?;
            for c in client::list(tenant.scope(&app.db)).await? {
                let kind = if c.is_confidential() {
                    "confidential"
                } else {
                    "public"
                };
                let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
                println!(
                    "{}\t{}\t{kind}\tsecret:{}\t{}\t{}",
                    c.client_id,
                    c.name,
                    c.secret_prefix
                        .as_deref()
                        .map(|p| format!("{p}…"))
                        .unwrap_or_else(|| "-".into()),
                    grants.join(","),
                    c.redirect_uris.join(",")
                );
            }
            Ok(())
        }
        ClientCommand::Delete { tenant, client_id } => {
            let tenant = tenant_named(&app, &tenant).await?;
            if !client::delete(tenant.scope(&app.db), &client_id).await? {
                return Err(CliError::Usage(format!(
                    "no client {client_id:?} in tenant {}",
                    tenant.slug
                )));
            }
            latchkey::audit::record(
                &app.db,
                &Default::default(),
                latchkey::audit::Event::new(&tenant.id, "operator", "client.delete")
                    .target(format!("client:{client_id}")),
            )
            .await?;
            println!("deleted {client_id}");
            Ok(())
        }
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
    eprintln!(
        "\nLatchkey is listening on http://{listen}\n  issuer:    {issuer}\n  discovery: {issuer}/.well-known/openid-configuration\n  \
         mail:      {mail}\n\nNext: register a client, e.g.\n  latchkey client create --name \"My app\" --redirect-uri http://127.0.0.1:3000/callback\n",
        listen = app.config.listen
    );
    let shrinker = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            shrinker.limiters.shrink();
        }
    });
    latchkey::http::serve(app).await?;
    Ok(())
}
