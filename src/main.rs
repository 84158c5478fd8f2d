//! The `latchkey` binary: the server and the operator CLI.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use clap::{Parser, Subcommand};
use latchkey::{
    app::{App, DEFAULT_TENANT},
    client::{self, GrantType, Introspection, NewClient},
    config::Config,
    keys::{self, SigningAlg},
    organization, resource, service_account,
    tenant::{self, RegistrationPolicy, Tenant},
};
use serde_json::json;

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
    /// Organizations (customer companies in a tenant) and their members' roles.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Bot identities of an organization (client credentials or agent tokens).
    #[command(subcommand)]
    ServiceAccount(ServiceAccountCommand),
    /// Long-lived agent tokens of a service account, exchanged for access tokens (RFC 8693).
    #[command(subcommand)]
    AgentToken(AgentTokenCommand),
    /// People's accounts.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Set a person's profile claims (OIDC Core §5.1); the person is created if new. A field left out
    /// keeps its value; an empty value clears it.
    Profile {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        #[arg(long)]
        email: latchkey::user::Email,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        given_name: Option<String>,
        #[arg(long)]
        family_name: Option<String>,
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

#[derive(Subcommand)]
enum OrgCommand {
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

#[derive(Subcommand)]
enum ServiceAccountCommand {
    /// Create a service account; prints its client credentials once.
    Create {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        name: String,
        /// A scope its tokens may carry (repeatable, at least one).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        #[arg(long)]
        org: String,
    },
    /// Stop the account: its client and every agent token stop working at once.
    Disable {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        id: String,
    },
}

#[derive(Subcommand)]
enum AgentTokenCommand {
    /// Issue an agent token (printed once; at most three active per account).
    Create {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        #[arg(long)]
        service_account: String,
        #[arg(long)]
        name: String,
        /// Narrow it to these scopes (default: all of the account's).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long, default_value_t = 365)]
        days: u32,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        #[arg(long)]
        service_account: String,
    },
    Revoke {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        #[arg(long)]
        service_account: String,
        token_id: String,
    },
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
        /// With --step-up: still accept machine tokens (client credentials, agent tokens), which
        /// carry no passkey. Without it a step-up resource is for people only.
        #[arg(long, requires = "step_up")]
        accepts_agents: bool,
        /// A scope granted when a request names this resource and no scope (repeatable; default:
        /// all of its scopes).
        #[arg(long = "default-scope")]
        default_scopes: Vec<String>,
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
        /// Whether self-registered clients may use the client-credentials grant (default false:
        /// with open registration, anyone could otherwise mint machine tokens).
        #[arg(long)]
        registration_client_credentials: Option<bool>,
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
        /// Allowed scopes (default: openid profile email offline_access)
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A browser origin (scheme://host[:port]) that may call the token endpoints, beyond the
        /// redirect URIs' own origins (repeatable).
        #[arg(long = "allowed-origin")]
        allowed_origins: Vec<String>,
        /// Answer UserInfo as a JWT signed with this algorithm (RS256 or ES256).
        #[arg(long)]
        userinfo_alg: Option<SigningAlg>,
        /// Skip the consent page for this client.
        #[arg(long)]
        first_party: bool,
        #[arg(long, default_value = "RS256")]
        id_token_alg: SigningAlg,
        #[arg(long, default_value = "ES256")]
        access_token_alg: SigningAlg,
        /// Make it a resource server: it may introspect tokens for this registered resource (repeatable).
        #[arg(long = "introspect", value_name = "RESOURCE_URI")]
        introspect: Vec<String>,
        /// It may introspect every token of the tenant.
        #[arg(long, conflicts_with = "introspect")]
        introspect_all: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Which tokens a client may introspect (RFC 7662): only resource servers an operator names.
    Introspection {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        client_id: String,
        /// Tokens for this registered resource (repeatable).
        #[arg(long = "resource", value_name = "RESOURCE_URI")]
        resources: Vec<String>,
        /// Every token of the tenant.
        #[arg(long, conflicts_with = "resources")]
        all: bool,
        /// None (the default for every client).
        #[arg(long, conflicts_with_all = ["resources", "all"])]
        none: bool,
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
    #[error(transparent)]
    Organization(#[from] latchkey::organization::OrganizationError),
    #[error(transparent)]
    ServiceAccount(#[from] latchkey::service_account::ServiceAccountError),
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
                    registration_client_credentials,
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
        Command::Client(command) => client_command(App::start(config, true).await?, command).await,
        Command::Resource(command) => {
            let app = App::start(config, true).await?;
            match command {
                ResourceCommand::Create { tenant, uri, name, scopes, step_up, accepts_agents, default_scopes } => {
                    let tenant = tenant_named(&app, &tenant).await?;
                    let name = name.unwrap_or_else(|| uri.clone());
                    let default_scopes = (!default_scopes.is_empty()).then_some(default_scopes);
                    let new = resource::Resource { uri, name, scopes, step_up, accepts_agents, default_scopes };
                    let created = resource::create(tenant.scope(&app.db), new).await?;
                    println!("registered resource {} in tenant {}", created.uri, tenant.slug);
                }
                ResourceCommand::List { tenant } => {
                    let tenant = tenant_named(&app, &tenant).await?;
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
        Command::Org(command) => org_command(&*App::start(config, true).await?, command).await,
        Command::ServiceAccount(command) => {
            service_account_command(&*App::start(config, true).await?, command).await
        }
        Command::AgentToken(command) => agent_token_command(&*App::start(config, true).await?, command).await,
        Command::User(command) => user_command(&*App::start(config, true).await?, command).await,
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
            introspect,
            introspect_all,
            allowed_origins,
            userinfo_alg,
            json: as_json,
        } => {
            let tenant = tenant_named(&app, &tenant).await?;
            let introspection = introspection_rights(&app, &tenant, introspect, introspect_all).await?;
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
                vec!["openid".into(), "profile".into(), "email".into(), "offline_access".into()]
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
                introspection,
                userinfo_alg,
                allowed_origins,
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
        ClientCommand::Introspection { tenant, client_id, resources, all, none } => {
            let tenant = tenant_named(&app, &tenant).await?;
            if !none && !all && resources.is_empty() {
                return Err(CliError::Usage("name --resource URI (repeatable), --all or --none".into()));
            }
            let introspection = introspection_rights(&app, &tenant, resources, all).await?;
            if !client::set_introspection(tenant.scope(&app.db), &client_id, &introspection).await? {
                return Err(CliError::Usage(format!("no client {client_id:?} in tenant {}", tenant.slug)));
            }
            operator_audit(&app, &tenant, "client.introspection", format!("client:{client_id}")).await?;
            println!("{client_id} may introspect: {introspection:?}");
            Ok(())
        }
    }
}

/// `--introspect` / `--all`: registered resources only, so a typo does not silently grant nothing.
async fn introspection_rights(app: &App, tenant: &Tenant, resources: Vec<String>, all: bool) -> Result<Introspection, CliError> {
    if all {
        return Ok(Introspection::All);
    }
    for uri in &resources {
        if resource::find(tenant.scope(&app.db), uri).await?.is_none() {
            return Err(CliError::Usage(format!("no resource {uri:?} in tenant {} (latchkey resource create first)", tenant.slug)));
        }
    }
    Ok(if resources.is_empty() { Introspection::None } else { Introspection::Resources(resources) })
}

async fn operator_audit(app: &App, tenant: &Tenant, action: &'static str, target: String) -> Result<(), CliError> {
    let event = latchkey::audit::Event::new(&tenant.id, "operator", action).target(target);
    latchkey::audit::record(&app.db, &Default::default(), event).await?;
    Ok(())
}

async fn organization_named(app: &App, tenant: &Tenant, slug: &str) -> Result<organization::Organization, CliError> {
    organization::find_by_slug(tenant.scope(&app.db), slug)
        .await?
        .ok_or_else(|| CliError::Usage(format!("no organization {slug:?} in tenant {}", tenant.slug)))
}

async fn service_account_named(app: &App, tenant: &Tenant, id: &str) -> Result<service_account::ServiceAccount, CliError> {
    service_account::find(tenant.scope(&app.db), id)
        .await?
        .ok_or_else(|| CliError::Usage(format!("no service account {id:?} in tenant {}", tenant.slug)))
}

fn when(timestamp: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(timestamp)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| timestamp.to_string())
}

async fn user_command(app: &App, command: UserCommand) -> Result<(), CliError> {
    match command {
        UserCommand::Profile { tenant, email, name, given_name, family_name, preferred_username, locale, zoneinfo, picture } => {
            let tenant = tenant_named(app, &tenant).await?;
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
            operator_audit(app, &tenant, "user.profile", format!("user:{}", user.id)).await?;
            println!("profile of {} updated", user.email);
        }
    }
    Ok(())
}

async fn org_command(app: &App, command: OrgCommand) -> Result<(), CliError> {
    match command {
        OrgCommand::Create { tenant, slug, name } => {
            let tenant = tenant_named(app, &tenant).await?;
            let name = name.unwrap_or_else(|| slug.clone());
            let org = organization::create(tenant.scope(&app.db), &slug, &name).await?;
            operator_audit(app, &tenant, "organization.create", format!("organization:{}", org.slug)).await?;
            println!("created organization {} ({})", org.slug, org.id);
        }
        OrgCommand::List { tenant } => {
            let tenant = tenant_named(app, &tenant).await?;
            for org in organization::list(tenant.scope(&app.db)).await? {
                println!("{}	{}	{}", org.slug, org.name, org.id);
            }
        }
        OrgCommand::Member { tenant, org, email, roles, remove } => {
            let tenant = tenant_named(app, &tenant).await?;
            let org = organization_named(app, &tenant, &org).await?;
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
                operator_audit(app, &tenant, "organization.member_remove", format!("organization:{}", org.slug)).await?;
                println!("removed {email} from {}", org.slug);
            } else {
                let user = latchkey::user::find_or_create(scope, &email).await?;
                organization::set_member(scope, &org, &user.id, &roles).await?;
                operator_audit(app, &tenant, "organization.member_set", format!("user:{}", user.id)).await?;
                println!("{email} is a member of {} with roles [{}]", org.slug, roles.join(" "));
            }
        }
    }
    Ok(())
}

async fn service_account_command(app: &App, command: ServiceAccountCommand) -> Result<(), CliError> {
    match command {
        ServiceAccountCommand::Create { tenant, org, name, scopes, roles, json } => {
            let tenant = tenant_named(app, &tenant).await?;
            let org = organization_named(app, &tenant, &org).await?;
            let (account, secret) =
                service_account::create(tenant.scope(&app.db), &org, &name, &scopes, &roles).await?;
            operator_audit(app, &tenant, "service_account.create", format!("service_account:{}", account.id)).await?;
            if json {
                println!("{}", json!({ "id": account.id, "client_id": account.client_id, "client_secret": secret }));
            } else {
                println!("service account: {}
client_id:       {}", account.id, account.client_id);
                println!("client_secret:   {secret}
(shown once: store it now; only its hash is kept)");
            }
        }
        ServiceAccountCommand::List { tenant, org } => {
            let tenant = tenant_named(app, &tenant).await?;
            let org = organization_named(app, &tenant, &org).await?;
            for a in service_account::list(tenant.scope(&app.db), &org).await? {
                let state = if a.is_active() { "active" } else { "disabled" };
                println!("{}	{}	{state}	client:{}	roles:{}	scopes:{}", a.id, a.name, a.client_id, a.roles.join(","), a.scopes.join(","));
            }
        }
        ServiceAccountCommand::Disable { tenant, id } => {
            let tenant = tenant_named(app, &tenant).await?;
            let revoked = service_account::disable(tenant.scope(&app.db), &id).await?;
            operator_audit(app, &tenant, "service_account.disable", format!("service_account:{id}")).await?;
            println!("disabled {id}; {revoked} agent token(s) revoked with it");
        }
    }
    Ok(())
}

async fn agent_token_command(app: &App, command: AgentTokenCommand) -> Result<(), CliError> {
    match command {
        AgentTokenCommand::Create { tenant, service_account, name, scopes, days, json } => {
            let tenant = tenant_named(app, &tenant).await?;
            let account = service_account_named(app, &tenant, &service_account).await?;
            let scopes = (!scopes.is_empty()).then_some(scopes.as_slice());
            let (token, secret) = service_account::create_agent_token(
                tenant.scope(&app.db),
                &account,
                &name,
                scopes,
                i64::from(days) * 24 * 3600,
            )
            .await?;
            operator_audit(app, &tenant, "agent_token.create", format!("agent_token:{}", token.id)).await?;
            if json {
                println!("{}", json!({ "id": token.id, "token": secret, "expires_at": token.expires_at }));
            } else {
                println!("agent token: {}
expires:     {}
token:       {secret}", token.id, when(token.expires_at));
                println!("(shown once: store it now; only its hash is kept)");
            }
        }
        AgentTokenCommand::List { tenant, service_account } => {
            let tenant = tenant_named(app, &tenant).await?;
            let account = service_account_named(app, &tenant, &service_account).await?;
            let now = latchkey::store::now();
            for t in service_account::agent_tokens(tenant.scope(&app.db), &account.id).await? {
                let state = if t.revoked_at.is_some() { "revoked" } else if t.is_active(now) { "active" } else { "expired" };
                let used = t.last_used_at.map_or_else(|| "never".to_owned(), when);
                println!("{}	{}	{}…	{state}	expires:{}	last used:{used}	scopes:{}", t.id, t.name, t.prefix, when(t.expires_at), t.scopes.join(","));
            }
        }
        AgentTokenCommand::Revoke { tenant, service_account, token_id } => {
            let tenant = tenant_named(app, &tenant).await?;
            if !service_account::revoke_agent_token(tenant.scope(&app.db), &service_account, &token_id).await? {
                return Err(CliError::Usage(format!("no active agent token {token_id:?} for {service_account}")));
            }
            operator_audit(app, &tenant, "agent_token.revoke", format!("agent_token:{token_id}")).await?;
            println!("revoked {token_id}");
        }
    }
    Ok(())
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
    latchkey::background::spawn(&app);
    latchkey::http::serve(app).await?;
    Ok(())
}
