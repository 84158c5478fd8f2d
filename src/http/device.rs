//! The device authorization grant over HTTP (RFC 8628): the device authorization endpoint (an API),
//! the page where a person enters the user code (`/device`), and the confirmation page where they
//! allow or deny (`/device/{id}`). Decisions are in `oauth::device`.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;

use super::{ApiError, HttpCtx, PageError, api_context, current_session, page_context, request, respond};
use crate::{
    app::App,
    client::document,
    oauth::{
        device::{self, Answered, Entered},
        error::OAuthError,
    },
    pages::{self, Chrome},
    ratelimit, user,
};

/// `POST {issuer}/device_authorization` (RFC 8628 §3.1): rate-limited per source address and per
/// client; answered as JSON (§3.2) or an OAuth error.
pub async fn device_authorization(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let ctx = api_context(&app, &req, &tenant).await?;
    ratelimit::check(&app.services.limiters.authorization_requests_per_ip, &request::client_ip(&app, &req))
        .map_err(OAuthError::rate_limited)?;
    let params = request::form_params(&req, &body)?;
    let started = device::start(&ctx, request::authorization_header(&req), &params).await?;
    Ok(HttpResponse::Ok().insert_header((actix_web::http::header::CACHE_CONTROL, "no-store")).json(started))
}

fn render_entry(ctx: &HttpCtx<'_>, req: &HttpRequest, typed: &str, error: Option<String>, status: StatusCode) -> Result<HttpResponse, PageError> {
    let csrf = request::csrf(ctx.app, req);
    let chrome = Chrome::new(&ctx.tenant.display_name);
    let page = pages::DeviceEntry {
        tenant_name: chrome.tenant_name,
        tenant_initial: chrome.tenant_initial,
        action: ctx.endpoint("device"),
        csrf: &csrf.token,
        user_code: typed,
        error,
    };
    respond::html(status, page.render(), csrf.new_cookie.into_iter().collect())
}

/// `GET /device[?user_code=…]`: the code form, filled in from `verification_uri_complete`. Nothing is
/// looked up until the person submits it.
pub async fn entry(app: web::Data<App>, req: HttpRequest, tenant: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = respond::query(&ctx, &req)?;
    let typed: String = params.get("user_code").unwrap_or("").chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(12).collect();
    render_entry(&ctx, &req, &typed, None, StatusCode::OK)
}

/// `POST /device`: the typed code, under the guess limits; a waiting request's confirmation page.
pub async fn enter(app: web::Data<App>, req: HttpRequest, tenant: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = respond::form(&ctx, &req, &body)?;
    let ip = request::client_ip(&app, &req);
    ratelimit::check(&app.services.limiters.code_check_per_ip, &ip).map_err(|retry| PageError::too_many(&ctx.tenant.display_name, retry))?;
    let typed = params.get("user_code").unwrap_or("");
    let session = current_session(&ctx, &req).await?;
    let shown: String = typed.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(12).collect();
    match device::enter(&ctx, typed, &ip.to_string(), session.as_ref()).await? {
        Entered::Found { public_id } => Ok(respond::see_other(&ctx.endpoint(&format!("device/{public_id}")), vec![])),
        Entered::Wrong { remaining } => {
            let message = format!(
                "That code is not one waiting to be used: check it on your device (it may have expired). {remaining} tr{} left.",
                if remaining == 1 { "y" } else { "ies" }
            );
            render_entry(&ctx, &req, &shown, Some(message), StatusCode::BAD_REQUEST)
        }
        Entered::Locked { until } => {
            let minutes = ((until - crate::store::now()).max(60) + 59) / 60;
            let message = format!("Too many wrong codes. Try again in {minutes} minutes.");
            render_entry(&ctx, &req, &shown, Some(message), StatusCode::TOO_MANY_REQUESTS)
        }
    }
}

fn device_id(id: &str) -> Option<&str> {
    (id.starts_with(device::ID_PREFIX) && respond::opaque_id(id)).then_some(id)
}

/// `GET /device/{id}`: what the device asks for, for a signed-in person (sign-in, with its passkey,
/// comes back here through `req`).
pub async fn confirm(app: web::Data<App>, req: HttpRequest, path: web::Path<(String, String)>) -> Result<HttpResponse, PageError> {
    let (tenant, id) = path.into_inner();
    let ctx = page_context(&app, &req, &tenant).await?;
    let id = device_id(&id).ok_or_else(PageError::not_found)?;
    let session = match current_session(&ctx, &req).await? {
        None => return Ok(respond::see_other(&respond::with_req(&ctx.endpoint("login"), Some(id)), vec![])),
        Some(session) if !session.is_multi_factor() => {
            return Ok(respond::see_other(&respond::with_req(&ctx.endpoint("passkey"), Some(id)), vec![]));
        }
        Some(session) => session,
    };
    let shown = device::show(&ctx, id).await?.ok_or_else(PageError::not_found)?;
    let Some(user) = user::find(ctx.scope(), &session.user_id).await? else {
        return Ok(respond::see_other(&ctx.endpoint("login"), vec![]));
    };
    let csrf = request::csrf(&app, &req);
    let chrome = Chrome::new(&ctx.tenant.display_name);
    let client = shown.client.as_deref();
    let page = pages::DeviceConfirm {
        tenant_name: chrome.tenant_name,
        tenant_initial: chrome.tenant_initial,
        action: ctx.endpoint(&format!("device/{id}")),
        csrf: &csrf.token,
        state: shown.status,
        client_name: client.map_or("An application", |c| c.name.as_str()),
        published_by: client.and_then(|c| document::document_host(&c.client_id)),
        self_registered: client.is_some_and(|c| c.registered_dynamically),
        client_host: client
            .and_then(|c| c.https_link("client_uri"))
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_owned)),
        resource: shown.resource.as_deref(),
        email: &user.email,
        scopes: shown.scopes.iter().map(|s| (s.clone(), pages::describe_scope(s))).collect(),
    };
    respond::html(StatusCode::OK, page.render(), csrf.new_cookie.into_iter().collect())
}

/// `POST /device/{id}` with `decision` = `allow` or `deny`: the person's explicit answer.
pub async fn answer(app: web::Data<App>, req: HttpRequest, path: web::Path<(String, String)>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let (tenant, id) = path.into_inner();
    let ctx = page_context(&app, &req, &tenant).await?;
    let id = device_id(&id).ok_or_else(PageError::not_found)?;
    let params = respond::form(&ctx, &req, &body)?;
    let session = match current_session(&ctx, &req).await? {
        Some(session) if session.is_multi_factor() => session,
        _ => return Ok(respond::see_other(&respond::with_req(&ctx.endpoint("login"), Some(id)), vec![])),
    };
    let allow = match params.get("decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => return Err(PageError::bad_request(&ctx.tenant.display_name, "Choose Allow or Deny.")),
    };
    match device::answer(&ctx, &session, id, allow).await? {
        // A step-up resource: a fresh passkey, then this page again to allow.
        Answered::StepUpRequired => {
            Ok(respond::see_other(&format!("{}&step_up=1", respond::with_req(&ctx.endpoint("passkey"), Some(id))), vec![]))
        }
        Answered::Recorded | Answered::TooLate => Ok(respond::see_other(&ctx.endpoint(&format!("device/{id}")), vec![])),
    }
}
