//! Handlers for the OAuth / OIDC protocol endpoints.

use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use askama::Template;

use super::{HttpError, api_context, current_session, page_context, request};
use crate::{
    app::App,
    oauth::{
        authorize::{self, AuthorizeError, ErrorRedirect, Next},
        error::{ErrorCode, OAuthError},
        introspection, revocation, token,
    },
    oidc::userinfo,
    pages::{Chrome, Leaving},
    store::now,
};

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn no_store_json(body: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

pub(super) fn authorize_error(
    ctx: &crate::app::Ctx<'_>,
    error: AuthorizeError,
) -> Result<HttpResponse, HttpError> {
    match error {
        AuthorizeError::Page(message) => Err(HttpError::bad_request_page(
            &ctx.tenant.display_name,
            message,
        )),
        AuthorizeError::Redirect(redirect_to) => back_to_client(ctx, &redirect_to),
        AuthorizeError::Store(error) => Err(HttpError::internal_page(&error)),
    }
}

/// An error for the client (RFC 6749 §4.1.2.1): a redirect, or, for a client nobody vetted, a page
/// naming where the person would be sent, so this origin cannot serve as an open redirector.
pub(super) fn back_to_client(ctx: &crate::app::Ctx<'_>, error: &ErrorRedirect) -> Result<HttpResponse, HttpError> {
    let url = authorize::error_redirect_url(ctx, error);
    if !error.confirm {
        return Ok(redirect(&url));
    }
    let host = url::Url::parse(&error.redirect_uri).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_else(|| error.redirect_uri.clone());
    let chrome = Chrome::new(&ctx.tenant.display_name);
    let page = Leaving {
        tenant_name: chrome.tenant_name,
        tenant_initial: chrome.tenant_initial,
        host: &host,
        description: &error.error.description,
        url: &url,
    };
    super::pages::html(StatusCode::BAD_REQUEST, page.render(), vec![])
}

/// The response for the next step of a pending authorization request.
pub(super) fn next_step(ctx: &crate::app::Ctx<'_>, next: Next, pending_id: &str) -> Result<HttpResponse, HttpError> {
    let location = match next {
        Next::SignIn => ctx.endpoint(&format!("login?req={pending_id}")),
        Next::Passkey => ctx.endpoint(&format!("passkey?req={pending_id}")),
        Next::StepUp => ctx.endpoint(&format!("passkey?req={pending_id}&step_up=1")),
        Next::SetUpTotp => ctx.endpoint(&format!("account/totp?req={pending_id}")),
        Next::Consent => ctx.endpoint(&format!("consent?req={pending_id}")),
        Next::Redirect(url) => url,
        Next::Error(error) => return back_to_client(ctx, &error),
    };
    Ok(redirect(&location))
}

/// Whether a step ends the pending request (the browser goes back to the client).
fn finishes(next: &Next) -> bool {
    matches!(next, Next::Redirect(_) | Next::Error(_))
}

/// GET or POST `/authorize` (OIDC Core §3.1.2.1 allows both).
pub async fn authorize(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = if req.method() == actix_web::http::Method::POST {
        request::form_params(&req, &body)
    } else {
        request::query_params(&req)
    }
    .map_err(|e| HttpError::bad_request_page(&ctx.tenant.display_name, e.description))?;
    let (client, authz) = match authorize::validate(&ctx, &params).await {
        Ok(valid) => valid,
        Err(error) => return authorize_error(&ctx, error),
    };
    let session = current_session(&ctx, &req).await?;
    match authorize::proceed(&ctx, &client, &authz, session.as_ref(), now(), false).await {
        Ok(next) if finishes(&next) => next_step(&ctx, next, ""),
        Ok(next) => {
            // The one row an unauthenticated caller makes here: limited per address.
            crate::ratelimit::check(&app.limiters.authorization_requests_per_ip, &request::client_ip(&app, &req))
                .map_err(|retry| HttpError::too_many_page(&ctx.tenant.display_name, retry))?;
            let pending_id = authorize::save_pending(&ctx, &authz)
                .await
                .map_err(|e| HttpError::internal_page(&e))?;
            next_step(&ctx, next, &pending_id)
        }
        Err(error) => authorize_error(&ctx, error),
    }
}

/// Continues a stored request after sign-in or consent.
pub async fn resume(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = request::query_params(&req)
        .map_err(|e| HttpError::bad_request_page(&ctx.tenant.display_name, e.description))?;
    let pending = match params.get("req") {
        Some(id) => authorize::load_pending(&ctx, id)
            .await
            .map_err(|e| HttpError::internal_page(&e))?,
        None => None,
    };
    let Some(pending) = pending else {
        return Err(expired_request_page(&ctx));
    };
    let client = ctx
        .client(&pending.request.client_id)
        .await
        .map_err(|e| HttpError::internal_page(&e))?
        .ok_or_else(|| {
            HttpError::bad_request_page(
                &ctx.tenant.display_name,
                "The application is no longer registered.",
            )
        })?;
    let session = current_session(&ctx, &req).await?;
    match authorize::proceed(&ctx, &client, &pending.request, session.as_ref(), pending.created_at, false).await {
        Ok(next) => {
            if finishes(&next) {
                authorize::delete_pending(&ctx, &pending.id)
                    .await
                    .map_err(|e| HttpError::internal_page(&e))?;
            }
            next_step(&ctx, next, &pending.id)
        }
        Err(error) => authorize_error(&ctx, error),
    }
}

pub fn expired_request_page(ctx: &crate::app::Ctx<'_>) -> HttpError {
    HttpError::bad_request_page(
        &ctx.tenant.display_name,
        "This sign-in request has expired or was already completed. Return to the application and start again.",
    )
}

pub async fn token(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let ctx = api_context(&app, &req, &tenant).await?;
    let params = request::form_params(&req, &body)?;
    let response = token::handle(&ctx, request::authorization_header(&req), &params).await?;
    Ok(no_store_json(response))
}

pub async fn revoke(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let ctx = api_context(&app, &req, &tenant).await?;
    let params = request::form_params(&req, &body)?;
    revocation::revoke(&ctx, request::authorization_header(&req), &params).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

pub async fn introspect(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let ctx = api_context(&app, &req, &tenant).await?;
    let params = request::form_params(&req, &body)?;
    let response =
        introspection::introspect(&ctx, request::authorization_header(&req), &params).await?;
    Ok(no_store_json(response))
}

/// RFC 6750 §2.1 (header) or §2.2 (form body); never both, never the query string.
fn bearer_token(req: &HttpRequest, body: &[u8]) -> Result<Option<String>, HttpError> {
    let from_header = request::authorization_header(req)
        .and_then(|value| crate::auth_header::credentials(value, "Bearer"))
        .map(str::to_owned);
    let from_body = if req.method() == actix_web::http::Method::POST && !body.is_empty() {
        request::form_params(req, body)
            .map_err(|e| HttpError::Bearer(Some(e)))?
            .get("access_token")
            .map(str::to_owned)
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(HttpError::Bearer(Some(OAuthError::invalid_request(
            "send the token in one place only",
        )))),
        (token, None) | (None, token) => Ok(token),
    }
}

pub async fn userinfo(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let ctx = api_context(&app, &req, &tenant).await?;
    let token = bearer_token(&req, &body)?.ok_or(HttpError::Bearer(None))?;
    match userinfo::userinfo(&ctx, &token).await {
        Ok(claims) => Ok(no_store_json(claims)),
        Err(error) if matches!(error.code, ErrorCode::ServerError) => Err(HttpError::OAuth(error)),
        Err(error) => Err(HttpError::Bearer(Some(error))),
    }
}
