//! The account page and its forms: passkeys (rename, remove), recovery codes, sessions and apps.
//! Every form is a CSRF-checked POST that redirects back (303) with a fixed notice; the decisions
//! are in `crate::account`.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;

use super::{HttpCtx, PageError, current_session, page_context, request, respond};
use crate::{
    account::{self, AccountError},
    app::App,
    oauth::params::Params,
    pages::{AppRow, ApprovalRow, Chrome, PasskeyRow, RecoveryCodes, SessionRow, TotpSetup, when},
    passkey, recovery,
    session::{self, Session},
    store::now,
    totp::{self, TotpError},
    user,
};

/// Notices the account page shows after a change, keyed by the `done` query parameter (never echoed).
const NOTICES: &[(&str, &str)] = &[
    ("renamed", "Passkey renamed."),
    ("name-saved", "Your name is saved."),
    ("removed", "Passkey removed."),
    ("session-ended", "That session is signed out."),
    ("access-removed", "The app’s access is removed."),
    ("totp-on", "Your authenticator app is set up."),
    ("totp-off", "Your authenticator app is removed."),
];

/// The signed-in, multi-factor session of an account page request; otherwise where to send the browser.
async fn full_session(ctx: &HttpCtx<'_>, req: &HttpRequest) -> Result<Result<Session, HttpResponse>, PageError> {
    match current_session(ctx, req).await? {
        None => Ok(Err(respond::see_other(&ctx.endpoint("login"), vec![]))),
        // An email-code or recovery session must first enroll or confirm a passkey.
        Some(session) if !session.is_multi_factor() => Ok(Err(respond::see_other(&ctx.endpoint("passkey"), vec![]))),
        Some(session) => Ok(Ok(session)),
    }
}

pub async fn page(app: web::Data<App>, req: HttpRequest, tenant: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = respond::query(&ctx, &req)?;
    let session = match full_session(&ctx, &req).await? {
        Ok(session) => session,
        Err(redirect) => return Ok(redirect),
    };
    // Tenant policy: an authenticator app before anything else.
    let has_totp = totp::enabled_since(ctx.scope(), &session.user_id).await?.is_some();
    if ctx.tenant.require_totp && !has_totp {
        return Ok(respond::see_other(&ctx.endpoint("account/totp"), vec![]));
    }
    let notice = params
        .get("done")
        .and_then(|key| NOTICES.iter().find(|(k, _)| *k == key))
        .map(|(_, text)| *text);
    render(&ctx, &req, &session, notice, None, StatusCode::OK).await
}

async fn render(
    ctx: &HttpCtx<'_>,
    req: &HttpRequest,
    session: &Session,
    notice: Option<&'static str>,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let scope = ctx.scope();
    let Some(user) = user::find(scope, &session.user_id).await? else {
        return Ok(respond::see_other(&ctx.endpoint("login"), vec![]));
    };
    let passkeys = passkey::list(scope, &user.id).await?;
    let recovery_left = recovery::remaining(scope, &user.id).await?;
    let sessions = session::list_for_user(scope, &user.id, ctx.lifetimes()).await?;
    let totp_since = totp::enabled_since(scope, &user.id).await?;
    let apps = account::apps(ctx, &user.id).await?;
    let csrf = request::csrf(ctx.app, req);
    let chrome = Chrome::new(&ctx.tenant.display_name);
    let administers = crate::org_admin::administered_by(ctx, session).await?;
    let approvals = crate::approval::waiting(ctx, &user.id).await?;
    let page = crate::pages::Account {
        tenant_name: chrome.tenant_name,
        tenant_initial: chrome.tenant_initial,
        base: ctx.endpoint(""),
        csrf: &csrf.token,
        email: &user.email,
        name: user.name.as_deref().unwrap_or(""),
        given_name: user.given_name.as_deref().unwrap_or(""),
        family_name: user.family_name.as_deref().unwrap_or(""),
        notice,
        error,
        fresh: session.is_fresh(ctx.lifetimes(), now()),
        step_up_url: ctx.endpoint("passkey?step_up=1"),
        passkeys: passkeys
            .into_iter()
            .map(|p| PasskeyRow {
                created: when(p.created_at),
                last_used: p.last_used_at.map_or_else(|| "Never".to_owned(), when),
                provider: p.provider,
                id: p.id,
                name: p.name,
            })
            .collect(),
        recovery_left,
        totp_since: totp_since.map(when),
        sessions: sessions
            .into_iter()
            .map(|s| SessionRow {
                device: request::device_label(s.user_agent.as_deref().unwrap_or("")),
                place: s.ip.as_deref().and_then(|ip| ctx.app.geo.place(ip)),
                ip: s.ip.unwrap_or_default(),
                created: when(s.created_at),
                last_seen: when(s.last_seen_at),
                current: s.id == session.id,
                id: s.id,
            })
            .collect(),
        apps: apps
            .into_iter()
            .map(|a| AppRow {
                approved: a
                    .approved
                    .iter()
                    .map(|(resource, scopes)| match resource {
                        Some(resource) => format!("{} for {resource}", scopes.join(" ")),
                        None => scopes.join(" "),
                    })
                    .collect(),
                granted: a.granted_at.map_or_else(|| "—".to_owned(), when),
                grants: a.live_grants,
                client_id: a.client_id,
                name: a.name,
                host: a.document_host,
            })
            .collect(),
        approvals: approvals
            .into_iter()
            .map(|a| ApprovalRow {
                url: ctx.endpoint(&format!("approvals/{}", a.id)),
                what: a.details.first().and_then(|d| d.summary.clone()).or(a.binding_message).unwrap_or_else(|| "A request".to_owned()),
                client: a.client_name,
                asked: when(a.created_at),
            })
            .collect(),
        administers: administers.map(|slug| (ctx.endpoint(&format!("org/{slug}/admin")), slug)),
    };
    respond::html(status, page.render(), csrf.new_cookie.into_iter().collect())
}

/// A submitted account form: its context, the full session, and the CSRF-checked fields.
struct Submitted<'a> {
    ctx: HttpCtx<'a>,
    session: Session,
    params: Params,
}

async fn submitted<'a>(
    app: &'a App,
    req: &HttpRequest,
    tenant: &str,
    body: &[u8],
) -> Result<Result<Submitted<'a>, HttpResponse>, PageError> {
    let ctx = page_context(app, req, tenant).await?;
    let params = respond::form(&ctx, req, body)?;
    Ok(match full_session(&ctx, req).await? {
        Ok(session) => Ok(Submitted { ctx, session, params }),
        Err(redirect) => Err(redirect),
    })
}

/// Where an account action goes next: back to the page with a notice, or the page again with what
/// went wrong, or a passkey step-up.
async fn outcome(
    form: &Submitted<'_>,
    req: &HttpRequest,
    result: Result<(), AccountError>,
    done: &str,
) -> Result<HttpResponse, PageError> {
    let ctx = &form.ctx;
    match result {
        Ok(()) => Ok(respond::see_other(&ctx.endpoint(&format!("account?done={done}")), vec![])),
        Err(AccountError::StepUpRequired) => Ok(respond::see_other(&ctx.endpoint("passkey?step_up=1"), vec![])),
        Err(AccountError::Store(e)) => Err(e.into()),
        Err(error @ (AccountError::NotFound | AccountError::LastPasskey | AccountError::Totp(_) | AccountError::Profile(_))) => {
            let status = match error {
                AccountError::NotFound => StatusCode::NOT_FOUND,
                AccountError::Totp(TotpError::WrongCode) | AccountError::Profile(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::CONFLICT,
            };
            render(ctx, req, &form.session, None, Some(error.to_string()), status).await
        }
    }
}

macro_rules! account_form {
    ($app:ident, $req:ident, $tenant:ident, $body:ident) => {
        match submitted(&$app, &$req, &$tenant, &$body).await? {
            Ok(form) => form,
            Err(redirect) => return Ok(redirect),
        }
    };
}

pub async fn rename_passkey(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = account_form!(app, req, tenant, body);
    let id = form.params.get("id").unwrap_or("");
    let name = form.params.get("name").unwrap_or("");
    let result = account::rename_passkey(&form.ctx, &form.session, id, name).await;
    outcome(&form, &req, result, "renamed").await
}

pub async fn set_name(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = account_form!(app, req, tenant, body);
    let field = |name| form.params.get(name).unwrap_or("");
    let result = account::set_name(&form.ctx, &form.session, field("name"), field("given_name"), field("family_name")).await;
    outcome(&form, &req, result, "name-saved").await
}

pub async fn remove_passkey(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = account_form!(app, req, tenant, body);
    let id = form.params.get("id").unwrap_or("");
    let result = account::remove_passkey(&form.ctx, &form.session, id).await;
    outcome(&form, &req, result, "removed").await
}

pub async fn end_session(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = account_form!(app, req, tenant, body);
    let id = form.params.get("id").unwrap_or("");
    let result = account::end_session(&form.ctx, &form.session, id).await;
    if result.is_ok() && id == form.session.id {
        return Ok(signed_out(&form.ctx));
    }
    outcome(&form, &req, result, "session-ended").await
}

pub async fn revoke_app(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = account_form!(app, req, tenant, body);
    let client_id = form.params.get("client_id").unwrap_or("");
    let result = account::revoke_app(&form.ctx, &form.session, client_id).await;
    outcome(&form, &req, result, "access-removed").await
}

/// "Sign out everywhere": every session (this one too) and every grant of the user.
pub async fn sign_out_everywhere(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = account_form!(app, req, tenant, body);
    account::sign_out_everywhere(&form.ctx, &form.session.user_id).await?;
    Ok(signed_out(&form.ctx))
}

/// Back to the sign-in page without the (now ended) session cookie.
fn signed_out(ctx: &HttpCtx<'_>) -> HttpResponse {
    let clear = request::removal_cookie(ctx.app, request::session_cookie_name(ctx.app, &ctx.tenant.slug));
    respond::see_other(&ctx.endpoint("login"), vec![clear])
}

pub async fn regenerate_recovery_codes(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = account_form!(app, req, tenant, body);
    let codes = match account::regenerate_recovery_codes(&form.ctx, &form.session).await {
        Ok(codes) => codes,
        Err(error) => return outcome(&form, &req, Err(error), "").await,
    };
    let ctx = &form.ctx;
    let text: String = codes.iter().map(|c| format!("{}\n", c.expose())).collect();
    let chrome = Chrome::new(&ctx.tenant.display_name);
    let page = RecoveryCodes {
        tenant_name: chrome.tenant_name,
        tenant_initial: chrome.tenant_initial,
        download_href: format!("data:text/plain;charset=utf-8,{}", urlencode(&text)),
        codes,
        continue_url: ctx.endpoint("account"),
    };
    respond::html(StatusCode::OK, page.render(), vec![])
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// `GET /account/totp`: the QR code and secret of a new authenticator app, and the confirmation form.
pub async fn totp_setup(app: web::Data<App>, req: HttpRequest, tenant: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let session = match full_session(&ctx, &req).await? {
        Ok(session) => session,
        Err(redirect) => return Ok(redirect),
    };
    let params = respond::query(&ctx, &req)?;
    render_totp_setup(&ctx, &req, &session, respond::request_id(&params), None, StatusCode::OK).await
}

async fn render_totp_setup(
    ctx: &HttpCtx<'_>,
    req: &HttpRequest,
    session: &Session,
    pending: Option<&str>,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let Some(user) = user::find(ctx.scope(), &session.user_id).await? else {
        return Ok(respond::see_other(&ctx.endpoint("login"), vec![]));
    };
    let enrollment = match account::begin_totp(ctx, session, &user.email).await {
        Ok(enrollment) => enrollment,
        Err(AccountError::StepUpRequired) => {
            let step_up = respond::with_req(&ctx.endpoint("passkey"), pending);
            let separator = if pending.is_some() { '&' } else { '?' };
            return Ok(respond::see_other(&format!("{step_up}{separator}step_up=1"), vec![]));
        }
        Err(AccountError::Totp(TotpError::AlreadyEnabled)) => return Ok(respond::see_other(&respond::after_sign_in(ctx, pending), vec![])),
        Err(e) => return Err(PageError::internal(&e)),
    };
    let csrf = request::csrf(ctx.app, req);
    let chrome = Chrome::new(&ctx.tenant.display_name);
    let page = TotpSetup {
        tenant_name: chrome.tenant_name,
        tenant_initial: chrome.tenant_initial,
        action: ctx.endpoint("account/totp"),
        back_url: ctx.endpoint("account"),
        csrf: &csrf.token,
        req: pending,
        required: ctx.tenant.require_totp,
        qr_svg: &enrollment.qr_svg,
        secret: &enrollment.secret_base32,
        uri: &enrollment.uri,
        error,
    };
    respond::html(status, page.render(), csrf.new_cookie.into_iter().collect())
}

/// `POST /account/totp`: the first code turns the app on.
pub async fn totp_confirm(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = account_form!(app, req, tenant, body);
    crate::ratelimit::check(&app.services.limiters.code_check_per_ip, &request::client_ip(&app, &req))
        .map_err(|retry| PageError::too_many(&form.ctx.tenant.display_name, retry))?;
    let code = form.params.get("code").unwrap_or("");
    let pending = respond::request_id(&form.params);
    match account::confirm_totp(&form.ctx, &form.session, code).await {
        Err(AccountError::Totp(TotpError::WrongCode)) => {
            let error = Some(TotpError::WrongCode.to_string());
            render_totp_setup(&form.ctx, &req, &form.session, pending, error, StatusCode::BAD_REQUEST).await
        }
        // Set up on the way through an authorization (tenant policy): carry on with it.
        Ok(()) if pending.is_some() => Ok(respond::see_other(&respond::after_sign_in(&form.ctx, pending), vec![])),
        result => outcome(&form, &req, result, "totp-on").await,
    }
}

pub async fn totp_remove(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = account_form!(app, req, tenant, body);
    let result = account::remove_totp(&form.ctx, &form.session).await;
    outcome(&form, &req, result, "totp-off").await
}
