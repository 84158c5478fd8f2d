//! CIBA and approvals over HTTP: the backchannel authentication endpoint (an API), and the page a
//! person approves or denies on (`/approvals/{id}`). Decisions are in `oauth::backchannel` and
//! `approval`.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;

use super::{ApiError, PageError, api_context, current_session, page_context, request, respond};
use crate::{
    app::App,
    approval::{self, ApprovalError, Status},
    oauth::backchannel,
    pages::{ApprovalPage, Chrome},
};

/// `POST {issuer}/bc-authorize` (CIBA Core §7): client-authenticated, answered as JSON (§7.3) or an
/// OAuth error (§13).
pub async fn backchannel_authorize(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let ctx = api_context(&app, &req, &tenant).await?;
    let params = request::form_params(&req, &body)?;
    let started = backchannel::start(&ctx, request::authorization_header(&req), &params).await?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(started))
}

fn approval_id(id: &str) -> Option<&str> {
    (id.starts_with(backchannel::ID_PREFIX) && respond::opaque_id(id)).then_some(id)
}

/// The approval's page, or where to go first: sign in, then confirm a passkey (`req` brings the
/// person back here, `respond::after_sign_in`).
pub async fn page(app: web::Data<App>, req: HttpRequest, path: web::Path<(String, String)>) -> Result<HttpResponse, PageError> {
    let (tenant, id) = path.into_inner();
    let ctx = page_context(&app, &req, &tenant).await?;
    let Some(id) = approval_id(&id) else {
        return Err(PageError::not_found());
    };
    let session = match current_session(&ctx, &req).await? {
        None => return Ok(respond::see_other(&respond::with_req(&ctx.endpoint("login"), Some(id)), vec![])),
        Some(session) if !session.is_multi_factor() => {
            return Ok(respond::see_other(&respond::with_req(&ctx.endpoint("passkey"), Some(id)), vec![]));
        }
        Some(session) => session,
    };
    let params = respond::query(&ctx, &req)?;
    render(&ctx, &req, &session, id, params.get("done")).await
}

async fn render(
    ctx: &super::HttpCtx<'_>,
    req: &HttpRequest,
    session: &crate::session::Session,
    id: &str,
    done: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let shown = match approval::show(ctx, session, id).await {
        Ok(shown) => shown,
        Err(error) => return Err(refused(ctx, error)),
    };
    let csrf = request::csrf(ctx.app, req);
    let chrome = Chrome::new(&ctx.tenant.display_name);
    let now = crate::store::now();
    let state = match shown.status {
        Status::Pending => "pending",
        Status::Approved => "approved",
        Status::Denied => "denied",
        Status::Expired => "expired",
    };
    let page = ApprovalPage {
        tenant_name: chrome.tenant_name,
        tenant_initial: chrome.tenant_initial,
        action: ctx.endpoint(&format!("approvals/{id}")),
        csrf: &csrf.token,
        id,
        state,
        just_answered: done.is_some(),
        client_name: &shown.client_name,
        binding_message: shown.binding_message.as_deref(),
        resource: shown.resource.as_deref(),
        details: &shown.details,
        minutes_left: ((shown.expires_at - now).max(0) + 59) / 60,
        fresh: approval::fresh_for(session, &shown, ctx.lifetimes(), now),
    };
    respond::html(StatusCode::OK, page.render(), csrf.new_cookie.into_iter().collect())
}

fn refused(ctx: &super::HttpCtx<'_>, error: ApprovalError) -> PageError {
    let name = &ctx.tenant.display_name;
    match error {
        ApprovalError::NotFound => PageError::new(StatusCode::NOT_FOUND, name, "No such approval", "This approval request does not exist, or it expired and was removed."),
        ApprovalError::OtherAccount => PageError::new(
            StatusCode::FORBIDDEN,
            name,
            "This approval is for someone else",
            "The request was sent to another account. Sign out and sign in as the person it names, or ignore it.",
        ),
        ApprovalError::StepUpRequired => PageError::bad_request(name, "Confirm with your passkey first."),
        ApprovalError::Store(e) => e.into(),
    }
}

/// `POST /approvals/{id}` with `decision` = `approve` or `deny`. Approving without a fresh passkey
/// assertion goes by the passkey page and back here.
pub async fn submit(
    app: web::Data<App>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (tenant, id) = path.into_inner();
    let ctx = page_context(&app, &req, &tenant).await?;
    let Some(id) = approval_id(&id) else {
        return Err(PageError::not_found());
    };
    let params = respond::form(&ctx, &req, &body)?;
    let session = match current_session(&ctx, &req).await? {
        Some(session) if session.is_multi_factor() => session,
        _ => return Ok(respond::see_other(&respond::with_req(&ctx.endpoint("login"), Some(id)), vec![])),
    };
    let approve = match params.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => return Err(PageError::bad_request(&ctx.tenant.display_name, "Choose Approve or Deny.")),
    };
    match approval::answer(&ctx, &session, id, approve).await {
        Ok(_) => Ok(respond::see_other(&ctx.endpoint(&format!("approvals/{id}?done=1")), vec![])),
        Err(ApprovalError::StepUpRequired) => {
            Ok(respond::see_other(&format!("{}&step_up=1", respond::with_req(&ctx.endpoint("passkey"), Some(id))), vec![]))
        }
        Err(error) => Err(refused(&ctx, error)),
    }
}
