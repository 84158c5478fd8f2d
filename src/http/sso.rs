//! Single sign-on endpoints: start a sign-in at the organization's identity provider, and take the
//! IdP's answer — the OIDC redirect URI of every connection of the tenant, or a SAML connection's
//! assertion consumer service (HTTP-POST binding) — and serve a SAML connection's SP metadata. The
//! sign-in endpoints are rate-limited per caller address like every sign-in endpoint; the domain
//! work is `sso::signin`'s.

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::{Cookie, SameSite},
    http::{StatusCode, header},
    web,
};

use super::{HttpCtx, PageError, current_session, page_context, request, respond};
use crate::{
    app::App,
    ratelimit,
    sso::{
        connection::{self, OidcSettings, Protocol},
        linking::Refusal,
        saml,
        signin::{self, Outcome, SsoError},
    },
    user::Email,
};

fn binding_cookie_name(app: &App, tenant_slug: &str) -> String {
    request::cookie_name(app, &format!("lk_sso_{tenant_slug}"))
}

/// The cookie binding a sign-in to the browser that started it. A SAML IdP answers with a cross-site
/// POST, which carries no SameSite=Lax cookie: over https the cookie is SameSite=None (and Secure);
/// over plain http (development on localhost, where the IdP is usually same-site) it stays Lax.
fn binding_cookie(app: &App, tenant_slug: &str, value: String, seconds: i64) -> Cookie<'static> {
    let mut cookie = request::build_cookie(app, binding_cookie_name(app, tenant_slug), value, Some(seconds));
    if app.config.is_https() {
        cookie.set_same_site(SameSite::None);
    }
    cookie
}

/// The page for a sign-in that did not complete (also the admin pages' connection test): what the person can do about it, never the IdP's
/// raw words beyond a short error code.
pub(super) fn refused_page(tenant_name: &str, error: &SsoError) -> PageError {
    let (status, heading, message) = match error {
        SsoError::UnknownRequest | SsoError::Replayed => (
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in has expired, was already used, or was started in another browser. Start again from the sign-in page.".to_owned(),
        ),
        SsoError::Unsolicited => (
            StatusCode::BAD_REQUEST,
            "Start from the sign-in page",
            "Your organization's sign-in sent you here without a request from this site. Start again from the sign-in page.".to_owned(),
        ),
        SsoError::Saml(error) => (StatusCode::BAD_REQUEST, "Your organization's sign-in was refused", format!("{error}. Ask your administrator.")),
        SsoError::ConnectionDisabled => {
            (StatusCode::FORBIDDEN, "Single sign-on is off", "Your organization has switched this sign-in off.".to_owned())
        }
        SsoError::Refused(refusal) => (
            StatusCode::FORBIDDEN,
            "This account cannot sign in here",
            match refusal {
                Refusal::Disabled => "This account has been disabled.",
                Refusal::NoEmail => "Your organization's sign-in did not say which email address is yours.",
                Refusal::EmailNotProven => "Your organization's sign-in did not confirm that this email address is yours.",
                Refusal::DomainNotVerified => "This email address's domain is not one your organization has verified here.",
                Refusal::LinkedElsewhere => "This email address already signs in another way. Use the way you signed in before.",
                Refusal::OtherOrganization => "This account belongs to another organization.",
                Refusal::OrganizationSignIn => "This address belongs to an organization that signs its people in through its own sign-in. Type it on the sign-in page to continue there.",
                Refusal::NoAccount => "There is no account for this address, and this site does not let people sign up.",
            }
            .to_owned(),
        ),
        SsoError::Store(store) => return PageError::internal(store),
        other => (StatusCode::BAD_GATEWAY, "Your organization's sign-in failed", format!("{other}. Try again, or ask your administrator.")),
    };
    PageError::new(status, tenant_name, heading, message)
}

/// `GET /t/{tenant}/sso/{connection}/start?req=…&login_hint=…`
pub async fn start(app: web::Data<App>, req: HttpRequest, path: web::Path<(String, String)>) -> Result<HttpResponse, PageError> {
    let (tenant, connection_id) = path.into_inner();
    let ctx = page_context(&app, &req, &tenant).await?;
    let name = ctx.tenant.display_name.clone();
    let params = respond::query(&ctx, &req)?;
    ratelimit::check(&app.services.limiters.sso_per_ip, &request::client_ip(&app, &req)).map_err(|retry| PageError::too_many(&name, retry))?;
    let connection = match connection::find(ctx.scope(), &connection_id).await {
        Ok(Some(connection)) => connection,
        Ok(None) => return Err(PageError::new(StatusCode::NOT_FOUND, &name, "Not found", "There is no such sign-in.")),
        Err(error) => return Err(refused_page(&name, &error.into())),
    };
    let hint = params.get("login_hint").and_then(Email::parse);
    let started = signin::start(&ctx, &connection, respond::request_id(&params), hint.as_ref(), None)
        .await
        .map_err(|error| refused_page(&name, &error))?;
    let cookie = binding_cookie(&app, &ctx.tenant.slug, started.binding.expose().to_owned(), ctx.services.sso.request_seconds);
    Ok(respond::see_other(started.location.as_str(), vec![cookie]))
}

/// `GET /t/{tenant}/sso/callback?code=…&state=…` (or `error=…`, RFC 6749 §4.1.2.1).
pub async fn callback(app: web::Data<App>, req: HttpRequest, tenant: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let name = ctx.tenant.display_name.clone();
    let params = respond::query(&ctx, &req)?;
    ratelimit::check(&app.services.limiters.sso_per_ip, &request::client_ip(&app, &req)).map_err(|retry| PageError::too_many(&name, retry))?;
    if let Some(error) = params.get("error") {
        // Only the error code, and only if it looks like one: the page never echoes free text.
        let code: String = error.chars().filter(|c| c.is_ascii_lowercase() || *c == '_').take(40).collect();
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            &name,
            "Your organization's sign-in did not complete",
            format!("Your identity provider answered \"{code}\". Start again from the sign-in page, or ask your administrator."),
        ));
    }
    let (Some(state), Some(code)) = (params.get("state"), params.get("code")) else {
        return Err(PageError::bad_request(&name, "This address needs the identity provider's code and state."));
    };
    let cookie_name = binding_cookie_name(&app, &ctx.tenant.slug);
    let binding = req.cookie(&cookie_name).map(|c| c.value().to_owned()).unwrap_or_default();
    let outcome = signin::finish(&ctx, state, &binding, code).await.map_err(|error| refused_page(&name, &error))?;
    concluded(&ctx, &req, outcome, cookie_name).await
}

/// A sign-in's session and where it goes on; or a connection test's report, to the administrator
/// who started it only.
async fn concluded(ctx: &HttpCtx<'_>, req: &HttpRequest, outcome: Outcome, binding_cookie: String) -> Result<HttpResponse, PageError> {
    let clear = request::removal_cookie(ctx.app, binding_cookie);
    match outcome {
        Outcome::SignedIn(finished) => {
            let session_cookie = request::session_cookie(ctx, &finished.cookie);
            let pending = finished.pending_request_id.as_deref().filter(|id| respond::opaque_id(id));
            Ok(respond::see_other(&respond::after_sign_in(ctx, pending), vec![session_cookie, clear]))
        }
        Outcome::Tested(report) => {
            let viewer = current_session(ctx, req).await?;
            if viewer.as_ref().map(|s| s.user_id.as_str()) != Some(report.tested_by.as_str()) {
                return Err(PageError::new(
                    StatusCode::FORBIDDEN,
                    &ctx.tenant.display_name,
                    "Not your test",
                    "This was a test of an SSO connection started by an administrator in another browser.",
                ));
            }
            super::admin::test_report_page(ctx, &report, clear)
        }
    }
}

/// `POST /t/{tenant}/sso/saml/{connection}/acs` (SAML bindings §3.5, HTTP-POST): `SAMLResponse`, and
/// `RelayState`, which Latchkey never sends and so ignores (the stored request says where to go on).
pub async fn acs(app: web::Data<App>, req: HttpRequest, path: web::Path<(String, String)>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let (tenant, connection_id) = path.into_inner();
    let ctx = page_context(&app, &req, &tenant).await?;
    let name = ctx.tenant.display_name.clone();
    ratelimit::check(&app.services.limiters.sso_per_ip, &request::client_ip(&app, &req)).map_err(|retry| PageError::too_many(&name, retry))?;
    // No CSRF token: the IdP's page posts this form. The response's signature, the stored request
    // it answers and the browser binding take that role.
    // Twice the largest response: one just over the limit is refused by `saml::verify`, saying so.
    let params = request::form_params_limited(&req, &body, 2 * saml::MAX_RESPONSE_BYTES)
        .map_err(|e| PageError::bad_request(&name, e.description))?;
    let Some(saml_response) = params.get("SAMLResponse") else {
        return Err(PageError::bad_request(&name, "This address takes your identity provider's SAMLResponse."));
    };
    if !respond::opaque_id(&connection_id) {
        return Err(PageError::new(StatusCode::NOT_FOUND, &name, "Not found", "There is no such sign-in."));
    }
    let cookie_name = binding_cookie_name(&app, &ctx.tenant.slug);
    let binding = req.cookie(&cookie_name).map(|c| c.value().to_owned()).unwrap_or_default();
    let outcome = signin::finish_saml(&ctx, &connection_id, &binding, saml_response).await.map_err(|error| refused_page(&name, &error))?;
    concluded(&ctx, &req, outcome, cookie_name).await
}

/// The binding cookie of a sign-in (or a connection test) just started.
pub(super) fn started_cookie(ctx: &HttpCtx<'_>, started: &signin::Started) -> Cookie<'static> {
    binding_cookie(ctx.app, &ctx.tenant.slug, started.binding.expose().to_owned(), ctx.services.sso.request_seconds)
}

fn no_such(tenant_name: &str) -> PageError {
    PageError::new(StatusCode::NOT_FOUND, tenant_name, "Not found", "There is no such connection.")
}

/// The connection whose public values (SP metadata, client keys) are asked for.
async fn published(ctx: &HttpCtx<'_>, connection_id: &str) -> Result<connection::Connection, PageError> {
    match connection::find(ctx.scope(), connection_id).await {
        Ok(Some(connection)) => Ok(connection),
        Ok(None) => Err(no_such(&ctx.tenant.display_name)),
        Err(error) => Err(refused_page(&ctx.tenant.display_name, &error.into())),
    }
}

/// `GET /t/{tenant}/sso/saml/{connection}/metadata`: the SP metadata an administrator gives the IdP
/// (its URL is also the entity id).
pub async fn saml_metadata(app: web::Data<App>, req: HttpRequest, path: web::Path<(String, String)>) -> Result<HttpResponse, PageError> {
    let (tenant, connection_id) = path.into_inner();
    let ctx = page_context(&app, &req, &tenant).await?;
    let name = ctx.tenant.display_name.clone();
    let connection = published(&ctx, &connection_id).await?;
    let Protocol::Saml(settings) = &connection.protocol else { return Err(no_such(&name)) };
    let xml = saml::sp_metadata(settings, &signin::saml_urls(&ctx, &connection.id)).map_err(|error| refused_page(&name, &error.into()))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/samlmetadata+xml"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(xml))
}

/// `GET /t/{tenant}/sso/{connection}/jwks`: the public key a `private_key_jwt` connection signs its
/// client assertions with, for IdPs that fetch it (Okta, Keycloak; Entra takes the certificate).
pub async fn jwks(app: web::Data<App>, req: HttpRequest, path: web::Path<(String, String)>) -> Result<HttpResponse, PageError> {
    let (tenant, connection_id) = path.into_inner();
    let ctx = page_context(&app, &req, &tenant).await?;
    let name = ctx.tenant.display_name.clone();
    let connection = published(&ctx, &connection_id).await?;
    let Protocol::Oidc(OidcSettings { client_certificate: Some(certificate), .. }) = &connection.protocol else {
        return Err(no_such(&name));
    };
    let jwks = crate::sso::oidc::client_jwks(certificate).map_err(|error| refused_page(&name, &error.into()))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/jwk-set+json"))
        .insert_header((header::CACHE_CONTROL, "max-age=300"))
        .body(jwks.to_string()))
}
