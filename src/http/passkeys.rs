//! Passkey pages and their JSON endpoints: the enrollment every new account must finish, passkey
//! sign-in (for the signed-in user, or discoverable from the sign-in page), and recovery-code sign-in.
//!
//! The ceremonies need JavaScript (`navigator.credentials`), served from `passkey.js` under this
//! origin; the pages set a CSP that allows exactly that script.

use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use askama::Template;
use serde::Deserialize;
use serde_json::json;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::{ApiError, HttpCtx, PageError, SSO_REQUIRED, api_context, current_session, page_context, request, respond};
use crate::{
    app::App,
    lockout::Factor,
    pages::{Chrome, PasskeyPage, RecoveryLogin, TotpLogin},
    passkey::{self, PasskeyError},
    recovery,
    session::Session,
    signin::{self, AppCode, AssertionMode, PasskeySignIn},
    store::StoreResult,
    totp, user,
};

pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(include_str!("../../templates/passkey.js"))
}

fn api_error(status: StatusCode, error: &'static str, description: impl Into<String>) -> ApiError {
    ApiError::Json {
        status,
        error,
        description: description.into(),
    }
}

fn passkey_error(error: PasskeyError) -> ApiError {
    match error {
        PasskeyError::Store(e) => {
            tracing::error!(error = %e, "storage failure in a passkey ceremony");
            api_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal storage error")
        }
        PasskeyError::CounterRegression => api_error(
            StatusCode::FORBIDDEN,
            "passkey_cloned",
            "This passkey was refused because it may have been copied to another device. Sign in with an email code instead, and tell your administrator.",
        ),
        other => api_error(StatusCode::BAD_REQUEST, "passkey_rejected", other.to_string()),
    }
}

/// JSON endpoints take `application/json` (a cross-site form cannot send it without a CORS preflight)
/// and the CSRF token in `X-CSRF-Token`, checked against the cookie like the forms' hidden field.
fn json_body<T: serde::de::DeserializeOwned>(ctx: &HttpCtx<'_>, req: &HttpRequest, body: &[u8]) -> Result<T, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(api_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request", "send application/json"));
    }
    let presented = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok());
    if !request::csrf_matches(ctx.app, req, presented) {
        return Err(api_error(StatusCode::FORBIDDEN, "invalid_request", "reload the page and try again"));
    }
    serde_json::from_slice(body)
        .map_err(|_| api_error(StatusCode::BAD_REQUEST, "invalid_request", "the request body is not what this endpoint expects"))
}

fn json_ok(value: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(value)
}

/// Whether the signed-in session may enroll a passkey now: the first passkey of a new account, a
/// recovery-code or authenticator-app sign-in (a lost passkey is replaced, or a new device added), or a full session whose last assertion is
/// fresh. An account that once had passkeys (it was given recovery codes) cannot get one back on an
/// email code alone.
async fn may_enroll(ctx: &HttpCtx<'_>, session: &Session, passkey_count: usize) -> StoreResult<bool> {
    if session.acr == recovery::RECOVERY_ACR || session.acr == totp::TOTP_ACR || session.is_fresh(ctx.lifetimes(), crate::store::now()) {
        return Ok(true);
    }
    if passkey_count > 0 {
        return Ok(false);
    }
    let had_passkeys = recovery::ever_issued(ctx.scope(), &session.user_id).await?;
    Ok(!had_passkeys)
}

/// `GET /passkey`: the step between an email-code (or recovery-code) sign-in and anything else.
pub async fn page(app: web::Data<App>, req: HttpRequest, tenant: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = respond::query(&ctx, &req)?;
    let pending = respond::request_id(&params);
    let Some(session) = current_session(&ctx, &req).await? else {
        return Ok(respond::see_other(&respond::with_req(&ctx.endpoint("login"), pending), vec![]));
    };
    let user = user::find(ctx.scope(), &session.user_id).await?;
    let Some(user) = user else {
        return Ok(respond::see_other(&ctx.endpoint("login"), vec![]));
    };
    let passkeys = passkey::list(ctx.scope(), &user.id).await?;
    let step_up = params.get("step_up").is_some();
    // `add`: the account page's "Add a passkey"; it needs a fresh assertion first, like any change.
    let add = params.get("add").is_some() && session.is_multi_factor();
    if session.is_multi_factor() && !step_up && !add {
        return Ok(respond::see_other(&respond::after_sign_in(&ctx, pending), vec![]));
    }
    let enroll = may_enroll(&ctx, &session, passkeys.len()).await?;
    let has_totp = totp::enabled_since(ctx.scope(), &user.id).await?.is_some();
    // An email code for an account whose passkeys were all removed: only the authenticator app or a
    // recovery code gets back in.
    if passkeys.is_empty() && !enroll {
        let path = if has_totp { "login/totp" } else { "login/recovery" };
        return Ok(respond::see_other(&respond::with_req(&ctx.endpoint(path), pending), vec![]));
    }
    let enroll = enroll && (!session.is_multi_factor() || add);
    let csrf = request::csrf(&app, &req);
    let chrome = Chrome::new(&ctx.tenant.display_name);
    let page = PasskeyPage {
        tenant_name: chrome.tenant_name,
        tenant_initial: chrome.tenant_initial,
        csrf: &csrf.token,
        base: ctx.endpoint(""),
        req: pending,
        mode: if enroll { "enroll" } else { "verify" },
        email: &user.email,
        recovery_url: respond::with_req(&ctx.endpoint("login/recovery"), pending),
        totp_url: (has_totp && !session.is_multi_factor()).then(|| respond::with_req(&ctx.endpoint("login/totp"), pending)),
        first: passkeys.is_empty(),
        after_sso: session.acr == latchkey_proto::Acr::Sso,
    };
    let mut response = respond::html(StatusCode::OK, page.render(), csrf.new_cookie.into_iter().collect())?;
    respond::allow_passkey_script(&mut response);
    Ok(response)
}

#[derive(Deserialize)]
pub struct RegisterFinish {
    ceremony: String,
    #[serde(default)]
    name: String,
    credential: RegisterPublicKeyCredential,
    req: Option<String>,
}

pub async fn register_options(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let ctx = api_context(&app, &req, &tenant).await?;
    let _: serde_json::Value = json_body(&ctx, &req, &body)?;
    let session = signed_in(&ctx, &req).await?;
    let user = session_user(&ctx, &session).await?;
    let count = passkey::list(ctx.scope(), &user.id).await?.len();
    if !may_enroll(&ctx, &session, count).await? {
        return Err(api_error(
            StatusCode::FORBIDDEN,
            "step_up_required",
            "confirm it is you with one of your passkeys first",
        ));
    }
    let (ceremony, options) = passkey::start_registration(ctx.scope(), &app.services.webauthn, &user, &session.id)
        .await
        .map_err(passkey_error)?;
    Ok(json_ok(json!({ "ceremony": ceremony, "options": options })))
}

pub async fn register(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let ctx = api_context(&app, &req, &tenant).await?;
    let finish: RegisterFinish = json_body(&ctx, &req, &body)?;
    let session = signed_in(&ctx, &req).await?;
    let name = if finish.name.trim().is_empty() { default_name(&req) } else { finish.name.clone() };
    let (user_id, stored) = passkey::finish_registration(
        ctx.scope(),
        &app.services.webauthn,
        &session.id,
        &finish.ceremony,
        &finish.credential,
        &name,
    )
    .await
    .map_err(passkey_error)?;
    let enrolled = signin::passkey_enrolled(&ctx, &session, &user_id, &stored).await?;
    let pending = finish.req.as_deref().filter(|r| respond::opaque_id(r));
    Ok(json_ok(json!({
        "next": respond::after_sign_in(&ctx, pending),
        "recovery_codes": enrolled.recovery_codes,
    })))
}

#[derive(Deserialize)]
pub struct AuthenticateStart {
    /// "session" confirms the signed-in user; "discoverable" signs in whoever the passkey belongs to.
    mode: String,
}

#[derive(Deserialize)]
pub struct AuthenticateFinish {
    ceremony: String,
    mode: String,
    credential: PublicKeyCredential,
    req: Option<String>,
}

pub async fn authenticate_options(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let ctx = api_context(&app, &req, &tenant).await?;
    let start: AuthenticateStart = json_body(&ctx, &req, &body)?;
    let user = match start.mode.as_str() {
        "session" => {
            let session = signed_in(&ctx, &req).await?;
            Some(session_user(&ctx, &session).await?)
        }
        "discoverable" => {
            // Anyone may start one (the sign-in page's "Sign in with a passkey"), and each is a row.
            crate::ratelimit::check(&app.services.limiters.passkey_ceremonies_per_ip, &request::client_ip(&app, &req)).map_err(|retry| {
                api_error(StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable", format!("too many attempts; retry in {} seconds", retry.seconds()))
            })?;
            None
        }
        _ => return Err(api_error(StatusCode::BAD_REQUEST, "invalid_request", "mode is session or discoverable")),
    };
    let (ceremony, options) = passkey::start_authentication(ctx.scope(), &app.services.webauthn, user.as_ref())
        .await
        .map_err(passkey_error)?;
    Ok(json_ok(json!({ "ceremony": ceremony, "options": options })))
}

pub async fn authenticate(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let ctx = api_context(&app, &req, &tenant).await?;
    let finish: AuthenticateFinish = json_body(&ctx, &req, &body)?;
    let mode = match finish.mode.as_str() {
        "session" => AssertionMode::Session,
        "discoverable" => AssertionMode::Discoverable,
        _ => return Err(api_error(StatusCode::BAD_REQUEST, "invalid_request", "mode is session or discoverable")),
    };
    let session = current_session(&ctx, &req).await?;
    let mut cookies = Vec::new();
    match signin::passkey_asserted(&ctx, session, &finish.ceremony, mode, &finish.credential).await.map_err(passkey_error)? {
        PasskeySignIn::SignedIn { new_cookie } => {
            cookies.extend(new_cookie.map(|cookie| request::session_cookie(&ctx, &cookie)));
        }
        PasskeySignIn::Disabled => {
            return Err(api_error(StatusCode::FORBIDDEN, "access_denied", "this account has been disabled"));
        }
        PasskeySignIn::OtherAccount => {
            return Err(api_error(StatusCode::FORBIDDEN, "passkey_rejected", "this passkey belongs to another account"));
        }
        PasskeySignIn::SsoRequired => {
            return Err(api_error(StatusCode::FORBIDDEN, "sso_required", SSO_REQUIRED));
        }
    }
    let pending = finish.req.as_deref().filter(|r| respond::opaque_id(r));
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    for cookie in cookies {
        response.cookie(cookie);
    }
    Ok(response.json(json!({ "next": respond::after_sign_in(&ctx, pending) })))
}

async fn signed_in(ctx: &HttpCtx<'_>, req: &HttpRequest) -> Result<Session, ApiError> {
    current_session(ctx, req)
        .await?
        .ok_or_else(|| api_error(StatusCode::UNAUTHORIZED, "login_required", "sign in first"))
}

async fn session_user(ctx: &HttpCtx<'_>, session: &Session) -> Result<user::User, ApiError> {
    user::find_active(ctx.scope(), &session.user_id)
        .await?
        .ok_or_else(|| api_error(StatusCode::UNAUTHORIZED, "login_required", "sign in first"))
}

/// A default passkey name from the browser's user agent ("Chrome on Linux"), editable later.
fn default_name(req: &HttpRequest) -> String {
    let ua = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    request::device_label(ua)
}

/// `GET/POST /login/recovery`: email + one recovery code → a session that can only enroll a passkey.
pub async fn recovery_form(app: web::Data<App>, req: HttpRequest, tenant: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = respond::query(&ctx, &req)?;
    render_recovery(&ctx, &req, respond::request_id(&params), "", None, StatusCode::OK)
}

fn render_recovery(
    ctx: &HttpCtx<'_>,
    req: &HttpRequest,
    pending: Option<&str>,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let csrf = request::csrf(ctx.app, req);
    let chrome = Chrome::new(&ctx.tenant.display_name);
    let page = RecoveryLogin {
        tenant_name: chrome.tenant_name,
        tenant_initial: chrome.tenant_initial,
        action: ctx.endpoint("login/recovery"),
        csrf: &csrf.token,
        req: pending,
        email,
        error,
        back_url: respond::with_req(&ctx.endpoint("login"), pending),
    };
    respond::html(status, page.render(), csrf.new_cookie.into_iter().collect())
}

pub async fn recovery_submit(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = respond::form(&ctx, &req, &body)?;
    let pending = respond::request_id(&params);
    crate::ratelimit::check(&app.services.limiters.code_check_per_ip, &request::client_ip(&app, &req))
        .map_err(|retry| PageError::too_many(&ctx.tenant.display_name, retry))?;
    let typed_email = params.get("email").unwrap_or("");
    let cookie_value = match signin::recovery_code(&ctx, typed_email, params.get("code").unwrap_or("")).await? {
        signin::Recovery::SignedIn(cookie) => cookie,
        signin::Recovery::Refused => {
            return render_recovery(
                &ctx,
                &req,
                pending,
                typed_email,
                Some("That email and recovery code do not match an unused code."),
                StatusCode::BAD_REQUEST,
            );
        }
        signin::Recovery::SsoRequired => return Err(PageError::sso_required(&ctx.tenant.display_name)),
    };
    let cookie = request::session_cookie(&ctx, &cookie_value);
    Ok(respond::see_other(&respond::with_req(&ctx.endpoint("passkey"), pending), vec![cookie]))
}

/// `GET/POST /login/totp`: an email-code session adds a code from the user's authenticator app and
/// may then enroll a passkey on this device. Nothing else opens with it.
pub async fn totp_form(app: web::Data<App>, req: HttpRequest, tenant: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = respond::query(&ctx, &req)?;
    totp_step(&ctx, &req, respond::request_id(&params), None, StatusCode::OK).await
}

fn locked_message(factor: Factor, until: i64) -> String {
    let minutes = ((until - crate::store::now()).max(0) + 59) / 60;
    format!("Too many wrong codes: your {} is locked for {minutes} more minutes. Use another way in, or wait.", factor.label())
}

pub async fn totp_submit(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = respond::form(&ctx, &req, &body)?;
    let pending = respond::request_id(&params);
    crate::ratelimit::check(&app.services.limiters.code_check_per_ip, &request::client_ip(&app, &req))
        .map_err(|retry| PageError::too_many(&ctx.tenant.display_name, retry))?;
    let Some(session) = current_session(&ctx, &req).await? else {
        return Ok(respond::see_other(&respond::with_req(&ctx.endpoint("login"), pending), vec![]));
    };
    let refused = match signin::app_code(&ctx, &session, params.get("code").unwrap_or("")).await? {
        AppCode::Accepted => return Ok(respond::see_other(&respond::with_req(&ctx.endpoint("passkey"), pending), vec![])),
        AppCode::Rejected { remaining } => (
            StatusCode::BAD_REQUEST,
            format!("That code is not right, or was already used. Wait for the next one and try again ({remaining} tries left)."),
        ),
        AppCode::Locked { until } => (StatusCode::TOO_MANY_REQUESTS, locked_message(Factor::Totp, until)),
    };
    totp_step(&ctx, &req, pending, Some(&refused.1), refused.0).await
}

async fn totp_step(
    ctx: &HttpCtx<'_>,
    req: &HttpRequest,
    pending: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let Some(session) = current_session(ctx, req).await? else {
        return Ok(respond::see_other(&respond::with_req(&ctx.endpoint("login"), pending), vec![]));
    };
    if session.is_multi_factor() {
        return Ok(respond::see_other(&respond::after_sign_in(ctx, pending), vec![]));
    }
    let Some(user) = user::find_active(ctx.scope(), &session.user_id).await? else {
        return Ok(respond::see_other(&respond::with_req(&ctx.endpoint("login"), pending), vec![]));
    };
    let csrf = request::csrf(ctx.app, req);
    let chrome = Chrome::new(&ctx.tenant.display_name);
    let page = TotpLogin {
        tenant_name: chrome.tenant_name,
        tenant_initial: chrome.tenant_initial,
        action: ctx.endpoint("login/totp"),
        csrf: &csrf.token,
        req: pending,
        email: &user.email,
        error,
        back_url: respond::with_req(&ctx.endpoint("passkey"), pending),
    };
    respond::html(status, page.render(), csrf.new_cookie.into_iter().collect())
}
