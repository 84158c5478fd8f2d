//! Handlers for the OAuth / OIDC protocol endpoints.

use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use askama::Template;

use super::{ApiError, HttpCtx, PageError, api_context, current_session, page_context, request, with_cors};
use crate::{
    app::App,
    cors::{self, Allow, RequestOrigin},
    oauth::{
        authorize::{self, AuthorizeError, ErrorRedirect, Next},
        client_auth,
        error::{ErrorCode, OAuthError},
        introspection,
        params::Params,
        revocation, token,
    },
    oidc::userinfo::{self, Body},
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
    ctx: &HttpCtx<'_>,
    error: AuthorizeError,
) -> Result<HttpResponse, PageError> {
    match error {
        AuthorizeError::Page(message) => Err(PageError::bad_request(
            &ctx.tenant.display_name,
            message,
        )),
        AuthorizeError::Redirect(redirect_to) => back_to_client(ctx, &redirect_to),
        AuthorizeError::Store(error) => Err(error.into()),
    }
}

/// An error for the client (RFC 6749 §4.1.2.1): a redirect, or, for a client nobody vetted, a page
/// naming where the person would be sent, so this origin cannot serve as an open redirector.
pub(super) fn back_to_client(ctx: &HttpCtx<'_>, error: &ErrorRedirect) -> Result<HttpResponse, PageError> {
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
    super::respond::html(StatusCode::BAD_REQUEST, page.render(), vec![])
}

/// The response for the next step of a pending authorization request.
pub(super) fn next_step(ctx: &HttpCtx<'_>, next: Next, pending_id: &str) -> Result<HttpResponse, PageError> {
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
) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = if req.method() == actix_web::http::Method::POST {
        request::form_params(&req, &body)
    } else {
        request::query_params(&req)
    }
    .map_err(|e| PageError::bad_request(&ctx.tenant.display_name, e.description))?;
    let (client, authz) = match authorize::validate(&ctx, &params).await {
        Ok(valid) => valid,
        Err(error) => return authorize_error(&ctx, error),
    };
    let session = current_session(&ctx, &req).await?;
    match authorize::proceed(&ctx, &client, &authz, session.as_ref(), now(), false).await {
        Ok(next) if finishes(&next) => next_step(&ctx, next, ""),
        Ok(next) => {
            // The one row an unauthenticated caller makes here: limited per address.
            crate::ratelimit::check(&app.services.limiters.authorization_requests_per_ip, &request::client_ip(&app, &req))
                .map_err(|retry| PageError::too_many(&ctx.tenant.display_name, retry))?;
            let pending_id = authorize::save_pending(&ctx, &authz).await?;
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
) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = request::query_params(&req)
        .map_err(|e| PageError::bad_request(&ctx.tenant.display_name, e.description))?;
    let pending = match params.get("req") {
        Some(id) => authorize::load_pending(&ctx, id).await?,
        None => None,
    };
    let Some(pending) = pending else {
        return Err(expired_request_page(&ctx));
    };
    let client = ctx
        .client(&pending.request.client_id)
        .await?
        .ok_or_else(|| {
            PageError::bad_request(
                &ctx.tenant.display_name,
                "The application is no longer registered.",
            )
        })?;
    let session = current_session(&ctx, &req).await?;
    match authorize::proceed(&ctx, &client, &pending.request, session.as_ref(), pending.created_at, false).await {
        Ok(next) => {
            if finishes(&next) {
                authorize::delete_pending(&ctx, &pending.id).await?;
            }
            next_step(&ctx, next, &pending.id)
        }
        Err(error) => authorize_error(&ctx, error),
    }
}

pub fn expired_request_page(ctx: &HttpCtx<'_>) -> PageError {
    PageError::bad_request(
        &ctx.tenant.display_name,
        "This sign-in request has expired or was already completed. Return to the application and start again.",
    )
}

/// CORS for an endpoint where the request names its client (token, revocation): a page may read
/// the answer when its origin is one that client allows. Requests without `Origin` (servers, native
/// apps) skip the lookup.
async fn named_client_allows(ctx: &HttpCtx<'_>, req: &HttpRequest, params: Option<&Params>) -> Allow {
    if !req.headers().contains_key(header::ORIGIN) {
        return Allow::Nobody;
    }
    match params.and_then(|p| client_auth::presented(request::authorization_header(req), p).ok()) {
        Some(named) => client_allows(ctx, &named.client_id, req).await,
        None => Allow::Nobody,
    }
}

/// Whether the client `client_id` allows the requesting page's origin to read its responses.
pub(super) async fn client_allows(ctx: &HttpCtx<'_>, client_id: &str, req: &HttpRequest) -> Allow {
    let Some(origin) = RequestOrigin::of(req) else { return Allow::Nobody };
    match ctx.client(client_id).await {
        Ok(Some(client)) if client.allows_origin(origin.as_str()) => Allow::Origin(origin),
        _ => Allow::Nobody,
    }
}

/// CORS for a request that names no client (a preflight; an invalid bearer token): the origin is
/// allowed when some client of the tenant allows it.
async fn any_client_allows(ctx: &HttpCtx<'_>, req: &HttpRequest) -> Allow {
    let Some(origin) = RequestOrigin::of(req) else { return Allow::Nobody };
    match crate::client::any_allows_origin(ctx.scope(), origin.as_str()).await {
        Ok(true) => Allow::Origin(origin),
        _ => Allow::Nobody,
    }
}

pub async fn token(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let ctx = api_context(&app, &req, &tenant).await?;
    let (params, result) = match request::form_params(&req, &body) {
        Ok(params) => {
            let result = token::handle(&ctx, request::authorization_header(&req), &params).await;
            (Some(params), result.map(no_store_json).map_err(ApiError::from))
        }
        Err(error) => (None, Err(ApiError::OAuth(error))),
    };
    let allow = named_client_allows(&ctx, &req, params.as_ref()).await;
    Ok(with_cors(result, allow))
}

pub async fn revoke(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let ctx = api_context(&app, &req, &tenant).await?;
    let (params, result) = match request::form_params(&req, &body) {
        Ok(params) => {
            let result = revocation::revoke(&ctx, request::authorization_header(&req), &params).await;
            let ok = |()| HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).finish();
            (Some(params), result.map(ok).map_err(ApiError::from))
        }
        Err(error) => (None, Err(ApiError::OAuth(error))),
    };
    let allow = named_client_allows(&ctx, &req, params.as_ref()).await;
    Ok(with_cors(result, allow))
}

/// `OPTIONS` on the token, revocation and UserInfo endpoints (a CORS preflight).
pub async fn preflight(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = api_context(&app, &req, &tenant).await?;
    let allow = any_client_allows(&ctx, &req).await;
    let methods = if req.path().ends_with("/userinfo") { "GET, POST" } else { "POST" };
    Ok(cors::preflight(&req, &allow, methods))
}

pub async fn introspect(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let ctx = api_context(&app, &req, &tenant).await?;
    let params = request::form_params(&req, &body)?;
    let response =
        introspection::introspect(&ctx, request::authorization_header(&req), &params).await?;
    Ok(no_store_json(response))
}

/// RFC 6750 §2.1 (header) or §2.2 (form body); never both, never the query string.
fn bearer_token(req: &HttpRequest, body: &[u8]) -> Result<Option<String>, ApiError> {
    let from_header = request::authorization_header(req)
        .and_then(|value| crate::auth_header::credentials(value, "Bearer"))
        .map(str::to_owned);
    let from_body = if req.method() == actix_web::http::Method::POST && !body.is_empty() {
        request::form_params(req, body)
            .map_err(|e| ApiError::Bearer(Some(e)))?
            .get("access_token")
            .map(str::to_owned)
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(ApiError::Bearer(Some(OAuthError::invalid_request(
            "send the token in one place only",
        )))),
        (token, None) | (None, token) => Ok(token),
    }
}

/// UserInfo (OIDC Core §5.3). CORS: a page may read the claims when its origin is one the token's
/// client allows; an error (no client is known from an invalid token) when any client allows it, so
/// a single-page app can read the challenge and refresh.
pub async fn userinfo(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let ctx = api_context(&app, &req, &tenant).await?;
    let answer = match bearer_token(&req, &body) {
        Ok(Some(token)) => userinfo::userinfo(&ctx, &token).await.map_err(|error| match error.code {
            ErrorCode::ServerError => ApiError::OAuth(error),
            _ => ApiError::Bearer(Some(error)),
        }),
        Ok(None) => Err(ApiError::Bearer(None)),
        Err(error) => Err(error),
    };
    Ok(match answer {
        Ok(info) => {
            let allow = match (RequestOrigin::of(&req), &info.client) {
                (Some(origin), Some(client)) if client.allows_origin(origin.as_str()) => Allow::Origin(origin),
                _ => Allow::Nobody,
            };
            let response = match info.body {
                Body::Json(claims) => no_store_json(claims),
                // OIDC Core §5.3.2.
                Body::Jwt(jwt) => HttpResponse::Ok()
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .content_type("application/jwt")
                    .body(jwt),
            };
            with_cors(Ok(response), allow)
        }
        Err(error) => with_cors(Err(error), any_client_allows(&ctx, &req).await),
    })
}
