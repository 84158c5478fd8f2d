//! `latchkey client`: OAuth clients registered by the operator.

use clap::Subcommand;
use latchkey::{
    client::{self, GrantType, Introspection, NewClient},
    keys::SigningAlg,
    oauth::resource,
    tenant::Tenant,
};
use serde_json::json;

use super::{Admin, CliError, DEFAULT_TENANT};

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Register a client. A confidential client's secret is printed once and never again.
    Create {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// Shown on the consent page.
        #[arg(long)]
        name: String,
        /// A confidential client: it gets a secret (client_secret_basic or _post).
        #[arg(long)]
        confidential: bool,
        /// Where codes may be sent, in full with the scheme (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Where sign-out may return (repeatable).
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
        /// ID tokens signed with RS256 or ES256.
        #[arg(long, default_value = "RS256")]
        id_token_alg: SigningAlg,
        /// Access tokens signed with ES256 or RS256.
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
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The client's id.
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
    /// Change a client in place: what is named is replaced, the rest stays (its id and secret too).
    Update {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The client's id.
        client_id: String,
        /// Shown on the consent page.
        #[arg(long)]
        name: Option<String>,
        /// The redirect URIs, all of them (repeatable; replaces the list).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// The post-logout redirect URIs, all of them (repeatable; replaces the list).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// The allowed scopes, all of them (repeatable; replaces the list).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// The extra browser origins, all of them (repeatable; replaces the list).
        #[arg(long = "allowed-origin")]
        allowed_origins: Vec<String>,
        /// Skip the consent page (true) or show it (false).
        #[arg(long)]
        first_party: Option<bool>,
    },
    /// Give a confidential client a new secret (printed once). The old one keeps working for the
    /// overlap, so the client's deployment can switch without an outage; one replaced earlier stops.
    RotateSecret {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The client's id.
        client_id: String,
        /// Seconds the old secret keeps working (0: it stops now).
        #[arg(long, default_value_t = 86_400)]
        overlap_seconds: i64,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the tenant's clients.
    List {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Delete a client: its tokens stop working.
    Delete {
        /// The tenant, by its slug.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// The client's id.
        client_id: String,
    },
}

/// `--scope` values, each possibly space-separated (`--scope "openid email"`), as single scopes.
fn scope_values(flags: &[String]) -> Vec<String> {
    flags.iter().flat_map(|s| s.split(' ')).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

pub async fn run(app: &Admin, command: ClientCommand) -> Result<(), CliError> {
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
            let tenant = app.tenant(&tenant).await?;
            let introspection = introspection_rights(app, &tenant, introspect, introspect_all).await?;
            let grant_types = if grant_types.is_empty() {
                vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
            } else {
                grant_types
                    .iter()
                    .map(|g| {
                        GrantType::parse_client_grant(g)
                            .ok_or_else(|| CliError::Usage(format!("unknown grant type {g:?}")))
                    })
                    .collect::<Result<_, _>>()?
            };
            let scopes = if scopes.is_empty() {
                latchkey::client::PERSON_SCOPES.map(str::to_owned).to_vec()
            } else {
                scope_values(&scopes)
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
                        "client_secret: {}\n(shown once: store it now; only its hash is kept)",
                        secret.expose()
                    );
                }
            }
            Ok(())
        }
        ClientCommand::Update {
            tenant,
            client_id,
            name,
            redirect_uris,
            post_logout_redirect_uris,
            scopes,
            allowed_origins,
            first_party,
        } => {
            let tenant = app.tenant(&tenant).await?;
            let given = |list: Vec<String>| (!list.is_empty()).then_some(list);
            let changes = client::ClientChanges {
                name,
                redirect_uris: given(redirect_uris),
                post_logout_redirect_uris: given(post_logout_redirect_uris),
                scopes: given(scope_values(&scopes)),
                allowed_origins: given(allowed_origins),
                first_party,
            };
            let Some(updated) = client::update(tenant.scope(&app.db), &client_id, changes).await? else {
                return Err(CliError::Usage(format!(
                    "no client {client_id:?} an operator manages in tenant {} (self-registered clients change through RFC 7592)",
                    tenant.slug
                )));
            };
            app.audit(&tenant, "client.update", format!("client:{client_id}")).await?;
            println!("updated {}: redirect URIs {}", updated.client_id, updated.redirect_uris.join(", "));
            eprintln!("running servers see the change within lifetimes.cache ({} s)", app.config.lifetimes.cache);
            Ok(())
        }
        ClientCommand::RotateSecret { tenant, client_id, overlap_seconds, json: as_json } => {
            let tenant = app.tenant(&tenant).await?;
            let Some((secret, old_until)) = client::rotate_secret(tenant.scope(&app.db), &client_id, overlap_seconds).await?
            else {
                return Err(CliError::Usage(format!("no confidential client {client_id:?} in tenant {}", tenant.slug)));
            };
            app.audit(&tenant, "client.rotate_secret", format!("client:{client_id}")).await?;
            if as_json {
                println!("{}", json!({ "client_id": client_id, "client_secret": secret, "previous_secret_until": old_until }));
            } else {
                println!("client_secret: {}\n(shown once: store it now; only its hash is kept)", secret.expose());
                eprintln!(
                    "the previous secret works until {}; servers accept the new one within lifetimes.cache ({} s)",
                    super::when(old_until),
                    app.config.lifetimes.cache
                );
            }
            Ok(())
        }
        ClientCommand::List { tenant } => {
            let tenant = app.tenant(&tenant).await?;
            for c in client::list(tenant.scope(&app.db)).await? {
                let kind = if c.is_confidential() {
                    "confidential"
                } else {
                    "public"
                };
                let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
                // A rotation's overlap: the replaced secret, while it still works.
                let previous = c
                    .previous_secret()
                    .map(|(prefix, until)| format!("\tprevious secret:{prefix}… until {}", super::when(until)))
                    .unwrap_or_default();
                println!(
                    "{}\t{}\t{kind}\tsecret:{}\t{}\t{}{previous}",
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
            let tenant = app.tenant(&tenant).await?;
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
            let tenant = app.tenant(&tenant).await?;
            if !none && !all && resources.is_empty() {
                return Err(CliError::Usage("name --resource URI (repeatable), --all or --none".into()));
            }
            let introspection = introspection_rights(app, &tenant, resources, all).await?;
            if !client::set_introspection(tenant.scope(&app.db), &client_id, &introspection).await? {
                return Err(CliError::Usage(format!("no client {client_id:?} in tenant {}", tenant.slug)));
            }
            app.audit(&tenant, "client.introspection", format!("client:{client_id}")).await?;
            println!("{client_id} may introspect: {introspection:?}");
            Ok(())
        }
    }
}

/// `--introspect` / `--all`: registered resources only, so a typo does not silently grant nothing.
async fn introspection_rights(app: &Admin, tenant: &Tenant, resources: Vec<String>, all: bool) -> Result<Introspection, CliError> {
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
