//! What every page handler answers with and parses the same way: HTML and redirect responses, the
//! CSRF-checked form and the query string (errors as HTML pages), ids we generate, where a sign-in
//! continues, and the CSP of pages that run `passkey.js`.

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::Cookie,
    http::{StatusCode, header},
};

use super::{HttpCtx, PageError, request};
use crate::oauth::params::Params;

pub fn html(
    status: StatusCode,
    body: Result<String, askama::Error>,
    cookies: Vec<Cookie<'static>>,
) -> Result<HttpResponse, PageError> {
    let body = body?;
    let mut response = HttpResponse::build(status);
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8");
    for cookie in cookies {
        response.cookie(cookie);
    }
    Ok(response.body(body))
}

pub fn see_other(location: &str, cookies: Vec<Cookie<'static>>) -> HttpResponse {
    let mut response = HttpResponse::SeeOther();
    response
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    for cookie in cookies {
        response.cookie(cookie);
    }
    response.finish()
}

pub fn form(ctx: &HttpCtx<'_>, req: &HttpRequest, body: &[u8]) -> Result<Params, PageError> {
    let params = request::form_params(req, body)
        .map_err(|e| PageError::bad_request(&ctx.tenant.display_name, e.description))?;
    request::check_csrf(ctx.app, req, &params, &ctx.tenant.display_name)?;
    Ok(params)
}

pub fn query(ctx: &HttpCtx<'_>, req: &HttpRequest) -> Result<Params, PageError> {
    request::query_params(req)
        .map_err(|e| PageError::bad_request(&ctx.tenant.display_name, e.description))
}


/// Ids we generate are short base64url strings; anything else is dropped rather than echoed or queried.
pub fn opaque_id(value: &str) -> bool {
    value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn request_id(params: &Params) -> Option<&str> {
    params.get("req").filter(|r| opaque_id(r))
}

pub fn with_req(path: &str, req: Option<&str>) -> String {
    match req {
        Some(id) => format!("{path}?req={id}"),
        None => path.to_owned(),
    }
}

/// The page of a request that is not an authorization but that a person signs in to answer: an
/// approval (`apr_…`) or a device's request (`dev_…`).
pub fn own_page(id: &str) -> Option<String> {
    if id.starts_with(crate::oauth::backchannel::ID_PREFIX) {
        Some(format!("approvals/{id}"))
    } else if id.starts_with(crate::oauth::device::ID_PREFIX) {
        Some(format!("device/{id}"))
    } else {
        None
    }
}

/// Where to go once signed in: back into the authorization request, to the approval or device
/// request the person came to answer (`own_page`), or to the account page.
pub fn after_sign_in(ctx: &HttpCtx<'_>, req: Option<&str>) -> String {
    match req {
        Some(id) => match own_page(id) {
            Some(page) => ctx.endpoint(&page),
            None => ctx.endpoint(&format!("authorize/resume?req={id}")),
        },
        None => ctx.endpoint("account"),
    }
}

/// Pages that run `passkey.js`: the site-wide CSP plus this origin's scripts and fetches.
const PASSKEY_PAGE_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Replaces the site-wide CSP (DefaultHeaders leaves a header the handler set) on a page that runs
/// `passkey.js`.
pub fn allow_passkey_script(response: &mut HttpResponse) {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(PASSKEY_PAGE_CSP),
    );
}
