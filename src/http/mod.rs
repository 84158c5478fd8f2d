//! HTTP: routes and thin handlers. Handlers parse the request, call a domain function, and render the
//! result; an API endpoint's errors go through `errors::ApiError` (JSON), a page's through
//! `errors::PageError` (HTML).

mod account;
mod approvals;
mod device;
mod admin;
pub mod client_ip;
mod errors;
mod oauth;
mod observe;
mod pages;
mod passkeys;
mod registration;
mod request;
mod respond;
mod scim;
mod sso;
mod wellknown;

use std::{net::SocketAddr, sync::Arc};

use actix_web::{
    App as ActixApp, HttpRequest, HttpResponse, HttpServer,
    dev::Server,
    http::Method,
    middleware::{Condition, DefaultHeaders},
    web,
};

pub use errors::{ApiError, PageError, SSO_REQUIRED};

use crate::{
    app::App,
    context::Ctx,
    cors,
    audit::Origin,
    session::{self, Session},
    store::StoreResult,
};

/// Bodies larger than this are refused with 413 before any parsing.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// The ACS form: the largest `SAMLResponse` accepted (`sso::saml::MAX_RESPONSE_BYTES`) once
/// form-encoded.
const SAML_BODY_BYTES: usize = 256 * 1024;
/// SCIM requests: a group PUT or PATCH naming thousands of members.
const SCIM_BODY_BYTES: usize = 1024 * 1024;
/// The administration forms: pasted IdP metadata (`sso::saml::MAX_METADATA_BYTES`) form-encoded.
const ADMIN_BODY_BYTES: usize = 3 * 1024 * 1024;

/// `GET /readyz`: whether this node can serve — the database answers, its schema is this binary's
/// (neither behind nor ahead), and the default tenant's signing keys load. 200 with the checks, or
/// 503 naming what failed (for a load balancer or an orchestrator's readiness probe; `/healthz` is
/// liveness and checks nothing).
async fn readiness(app: web::Data<App>) -> HttpResponse {
    let mut checks = serde_json::Map::new();
    let database = match crate::store::schema(&app.db).await {
        Ok(crate::store::Schema::Current) => Ok(()),
        Ok(crate::store::Schema::Behind { pending }) => Err(format!("{pending} migrations not applied: run `latchkey migrate`")),
        Ok(crate::store::Schema::Ahead { unknown }) => {
            Err(format!("the database was migrated by a newer version ({}); run that version", unknown.join(", ")))
        }
        Err(error) => Err(format!("database unreachable: {error}")),
    };
    let keys = match &database {
        Ok(()) => match app.tenant(crate::app::DEFAULT_TENANT).await {
            Ok(Some(tenant)) => app.keyring(&tenant).await.map(|_| ()).map_err(|e| format!("signing keys: {e}")),
            Ok(None) => Ok(()),
            Err(error) => Err(format!("tenant: {error}")),
        },
        Err(_) => Err("not checked".to_owned()),
    };
    let ready = database.is_ok() && keys.is_ok();
    for (name, outcome) in [("database", database), ("signing_keys", keys)] {
        checks.insert(name.into(), serde_json::Value::String(outcome.err().unwrap_or_else(|| "ok".into())));
    }
    let mut response = if ready { HttpResponse::Ok() } else { HttpResponse::ServiceUnavailable() };
    response
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "status": if ready { "ready" } else { "not ready" }, "checks": checks }))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .route(
            "/healthz",
            web::get().to(|| async { HttpResponse::Ok().body("ok") }),
        )
        .route("/readyz", web::get().to(readiness))
        .service(
            web::scope("/t/{tenant}")
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(wellknown::openid_configuration),
                )
                .route(
                    "/.well-known/oauth-authorization-server",
                    web::get().to(wellknown::oauth_metadata),
                )
                .route("/jwks", web::get().to(wellknown::jwks))
                .route("/authorize", web::get().to(oauth::authorize))
                .route("/authorize", web::post().to(oauth::authorize))
                .route("/authorize/resume", web::get().to(oauth::resume))
                .route("/token", web::post().to(oauth::token))
                .route("/bc-authorize", web::post().to(approvals::backchannel_authorize))
                .route("/device_authorization", web::post().to(device::device_authorization))
                .route("/device", web::get().to(device::entry))
                .route("/device", web::post().to(device::enter))
                .route("/device/{id}", web::get().to(device::confirm))
                .route("/device/{id}", web::post().to(device::answer))
                .route("/approvals/{id}", web::get().to(approvals::page))
                .route("/approvals/{id}", web::post().to(approvals::submit))
                .route("/register", web::post().to(registration::register))
                .route("/register/{client_id}", web::get().to(registration::read))
                .route("/register/{client_id}", web::put().to(registration::update))
                .route("/register/{client_id}", web::delete().to(registration::delete))
                .route("/revoke", web::post().to(oauth::revoke))
                .route("/introspect", web::post().to(oauth::introspect))
                .route("/userinfo", web::get().to(oauth::userinfo))
                .route("/userinfo", web::post().to(oauth::userinfo))
                .route("/login", web::get().to(pages::login_form))
                .route("/login", web::post().to(pages::login_submit))
                .route("/login/sso", web::get().to(pages::sso_continue))
                .route("/sso/callback", web::get().to(sso::callback))
                .route("/sso/{connection}/start", web::get().to(sso::start))
                .route("/sso/{connection}/jwks", web::get().to(sso::jwks))
                .route("/sso/saml/{connection}/metadata", web::get().to(sso::saml_metadata))
                .service(
                    web::resource("/org/{slug}/admin")
                        // Pasted IdP metadata.
                        .app_data(web::PayloadConfig::new(ADMIN_BODY_BYTES))
                        .route(web::get().to(admin::page))
                        .route(web::post().to(admin::submit)),
                )
                .route("/org/{slug}/admin/test/{connection}", web::get().to(admin::test))
                .service(
                    web::resource("/sso/saml/{connection}/acs")
                        // A SAMLResponse with many groups is larger than any other form.
                        .app_data(web::PayloadConfig::new(SAML_BODY_BYTES))
                        .route(web::post().to(sso::acs)),
                )
                .service(
                    web::scope("/scim/v2/{organization}")
                        .app_data(web::PayloadConfig::new(SCIM_BODY_BYTES))
                        .route("/{segment:ServiceProviderConfig|ResourceTypes|Schemas}", web::get().to(scim::discovery))
                        .route("/{segment:ResourceTypes|Schemas}/{id}", web::get().to(scim::discovery_item))
                        .route("/{segment:ServiceProviderConfig|ResourceTypes|Schemas}", web::route().to(scim::read_only))
                        .route("/{segment:ResourceTypes|Schemas}/{id}", web::route().to(scim::read_only))
                        .route("/.search", web::post().to(scim::search_root))
                        .route("/{kind}/.search", web::post().to(scim::search_post))
                        .route("/{kind}", web::get().to(scim::search))
                        .route("/{kind}", web::post().to(scim::create))
                        .route("/{kind}/{id}", web::get().to(scim::read))
                        .route("/{kind}/{id}", web::put().to(scim::replace))
                        .route("/{kind}/{id}", web::patch().to(scim::patch))
                        .route("/{kind}/{id}", web::delete().to(scim::delete))
                        .default_service(web::to(scim::not_found)),
                )
                .route("/login/code", web::get().to(pages::code_form))
                .route("/login/code", web::post().to(pages::code_submit))
                .route("/consent", web::get().to(pages::consent_form))
                .route("/consent", web::post().to(pages::consent_submit))
                .route("/logout", web::get().to(pages::logout))
                .route("/logout", web::post().to(pages::logout))
                .route("/account", web::get().to(account::page))
                .route("/account/name", web::post().to(account::set_name))
                .route("/account/passkeys/rename", web::post().to(account::rename_passkey))
                .route("/account/passkeys/remove", web::post().to(account::remove_passkey))
                .route("/account/recovery-codes", web::post().to(account::regenerate_recovery_codes))
                .route("/account/sessions/end", web::post().to(account::end_session))
                .route("/account/sessions/end-all", web::post().to(account::sign_out_everywhere))
                .route("/account/apps/revoke", web::post().to(account::revoke_app))
                .route("/account/totp", web::get().to(account::totp_setup))
                .route("/account/totp", web::post().to(account::totp_confirm))
                .route("/account/totp/remove", web::post().to(account::totp_remove))
                .route("/login/totp", web::get().to(passkeys::totp_form))
                .route("/login/totp", web::post().to(passkeys::totp_submit))
                .route("/passkey", web::get().to(passkeys::page))
                .route("/passkey.js", web::get().to(passkeys::script))
                .route("/passkey/register/options", web::post().to(passkeys::register_options))
                .route("/passkey/register", web::post().to(passkeys::register))
                .route("/passkey/authenticate/options", web::post().to(passkeys::authenticate_options))
                .route("/passkey/authenticate", web::post().to(passkeys::authenticate))
                .route("/login/recovery", web::get().to(passkeys::recovery_form))
                .route("/login/recovery", web::post().to(passkeys::recovery_submit))
                // Fetched by resource servers every few seconds, not per request: after the hot routes.
                .route("/statuslists/{id}", web::get().to(wellknown::status_list))
                // CORS preflights last: actix tries each route in order, and these must not cost the
                // hot POST and GET requests a look (callgrind: ~1.2k instructions per token request).
                .route("/jwks", web::method(Method::OPTIONS).to(wellknown::preflight))
                .route("/.well-known/openid-configuration", web::method(Method::OPTIONS).to(wellknown::preflight))
                .route("/.well-known/oauth-authorization-server", web::method(Method::OPTIONS).to(wellknown::preflight))
                .route("/token", web::method(Method::OPTIONS).to(oauth::preflight))
                .route("/revoke", web::method(Method::OPTIONS).to(oauth::preflight))
                .route("/userinfo", web::method(Method::OPTIONS).to(oauth::preflight))
                .route("/register", web::method(Method::OPTIONS).to(registration::preflight))
                .route("/register/{client_id}", web::method(Method::OPTIONS).to(registration::preflight_client)),
        )
        // After the tenant scope: actix tries routes in order and each dynamic one is a regex run, so
        // the tenant paths (nearly all traffic) come first.
        .route(
            "/.well-known/oauth-authorization-server/t/{tenant}",
            web::get().to(wellknown::oauth_metadata),
        )
        .route(
            "/.well-known/openid-configuration/t/{tenant}",
            web::get().to(wellknown::oauth_metadata),
        )
        .route("/.well-known/oauth-authorization-server/t/{tenant}", web::method(Method::OPTIONS).to(wellknown::preflight))
        .route("/.well-known/openid-configuration/t/{tenant}", web::method(Method::OPTIONS).to(wellknown::preflight))
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(PageError::not_found())
        }));
}

/// Headers on every response: no framing, no sniffing, no referrer (page URLs carry request ids);
/// on an https deployment, HSTS (RFC 6797): browsers then never try this host over plain http, where
/// a network attacker could strip TLS before the first redirect. One year, this host only
/// (`includeSubDomains` would bind every other service under the domain, not ours to decide).
fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new();
    let headers = if https { headers.add(("Strict-Transport-Security", "max-age=31536000")) } else { headers };
    headers
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
        ))
}

/// The node's listeners, bound and not yet serving: the public one and, with `metrics_listen`, the
/// metrics one. Binding first lets `main` say where it listens only once that is true.
pub struct Listening {
    /// The public listener's addresses (the configured port, or the one the OS chose for port 0).
    pub public: Vec<SocketAddr>,
    pub metrics: Vec<SocketAddr>,
    server: Server,
    metrics_server: Option<Server>,
}

impl Listening {
    /// Serves until a shutdown signal stops both listeners.
    pub async fn run(self) -> std::io::Result<()> {
        match self.metrics_server {
            Some(metrics) => tokio::try_join!(self.server, metrics).map(|_| ()),
            None => self.server.await,
        }
    }
}

pub fn bind(app: Arc<App>) -> std::io::Result<Listening> {
    let listen = app.config.listen;
    let workers = app.config.workers;
    let https = app.config.is_https();
    let observed = app.services.metrics.enabled() || app.config.access_log;
    let metrics_listen = app.config.metrics_listen;
    let data = web::Data::from(app);
    let public_data = data.clone();
    let mut server = HttpServer::new(move || {
        ActixApp::new()
            .app_data(public_data.clone())
            .wrap(security_headers(https))
            // Outermost, so it times and counts every answer, the security headers' included.
            .wrap(Condition::new(observed, observe::Observe { app: public_data.clone() }))
            .configure(routes)
    })
    .bind(listen)?;
    if let Some(workers) = workers {
        server = server.workers(workers);
    }
    let public = server.addrs();
    let (metrics, metrics_server) = match metrics_listen {
        Some(address) => {
            let server = HttpServer::new(move || {
                ActixApp::new()
                    .app_data(data.clone())
                    .route("/metrics", web::get().to(observe::metrics))
                    .default_service(web::to(HttpResponse::NotFound))
            })
            .workers(1)
            .bind(address)?;
            let addrs = server.addrs();
            (addrs, Some(server.run()))
        }
        None => (Vec::new(), None),
    };
    Ok(Listening { public, metrics, server: server.run(), metrics_server })
}

/// A request's tenant context as handlers see it: the domain's `Ctx`, which is what they pass on
/// (`&HttpCtx` coerces to `&Ctx`), beside the node's `App` for what only HTTP needs (cookie names and
/// flags from the public URL, trusted proxy hops, GeoIP for the account page). Domain code never sees
/// the `App`.
pub struct HttpCtx<'a> {
    pub app: &'a App,
    ctx: Ctx<'a>,
}

impl<'a> std::ops::Deref for HttpCtx<'a> {
    type Target = Ctx<'a>;

    fn deref(&self) -> &Ctx<'a> {
        &self.ctx
    }
}

/// `App::context` for a handler: `None` for an unknown tenant.
async fn http_context<'a>(app: &'a App, slug: &str, origin: Origin) -> StoreResult<Option<HttpCtx<'a>>> {
    Ok(app.context(slug, origin).await?.map(|ctx| HttpCtx { app, ctx }))
}

/// The tenant context for an API endpoint (JSON 404 for an unknown tenant).
async fn api_context<'a>(
    app: &'a App,
    req: &HttpRequest,
    slug: &str,
) -> Result<HttpCtx<'a>, ApiError> {
    http_context(app, slug, request::origin(app, req))
        .await?
        .ok_or(ApiError::UnknownTenant)
}

/// The tenant context for a public document (discovery): it records nothing about the caller, so the
/// request's origin is not read. JSON 404 for an unknown tenant.
async fn public_context<'a>(app: &'a App, slug: &str) -> Result<HttpCtx<'a>, ApiError> {
    http_context(app, slug, Origin::default())
        .await?
        .ok_or(ApiError::UnknownTenant)
}

/// The tenant context for a page (HTML 404 for an unknown tenant).
async fn page_context<'a>(
    app: &'a App,
    req: &HttpRequest,
    slug: &str,
) -> Result<HttpCtx<'a>, PageError> {
    http_context(app, slug, request::origin(app, req))
        .await?
        .ok_or_else(PageError::not_found)
}

/// The response (or the error's response) with the CORS headers `allow` calls for.
fn with_cors(result: Result<HttpResponse, ApiError>, allow: cors::Allow) -> HttpResponse {
    let mut response = result.unwrap_or_else(|error| actix_web::ResponseError::error_response(&error));
    cors::add_headers(&mut response, &allow);
    response
}

/// The browser's active session, if its cookie names one.
async fn current_session(ctx: &HttpCtx<'_>, req: &HttpRequest) -> StoreResult<Option<Session>> {
    let Some(cookie) = req.cookie(&request::session_cookie_name(ctx.app, &ctx.tenant.slug)) else {
        return Ok(None);
    };
    session::find_active(ctx.scope(), cookie.value(), ctx.lifetimes()).await
}
