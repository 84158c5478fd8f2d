//! Request plumbing shared by handlers: client origin, strict body parsing, cookies and CSRF.

use actix_web::{
    HttpRequest,
    cookie::{Cookie, SameSite, time::Duration as CookieDuration},
    http::header,
};

use super::{
    client_ip::{self, Proxies},
    HttpCtx,
    errors::PageError,
};
use crate::{
    app::App,
    audit::Origin,
    crypto::{constant_time_eq, random_token},
    oauth::{error::OAuthError, params::Params},
};

/// Who sent the request: the client address (`client_ip`: from the right of `X-Forwarded-For`, past
/// trusted proxy hops only) and the user agent.
pub fn origin(app: &App, req: &HttpRequest) -> Origin {
    let peer = req.peer_addr().map(|a| a.ip());
    let ip = match &app.config.proxies {
        Proxies::None => peer,
        proxies => {
            let forwarded: Vec<&str> = req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok()).collect();
            client_ip::client_address(peer, &forwarded, proxies)
        }
    }
    .map(|ip| ip.to_string());
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Origin { ip, user_agent }
}

pub fn client_ip(app: &App, req: &HttpRequest) -> std::net::IpAddr {
    origin(app, req)
        .ip
        .and_then(|ip| ip.parse().ok())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

pub fn authorization_header(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// A form body for an OAuth endpoint: must be `application/x-www-form-urlencoded` (RFC 6749 §3.2).
pub fn form_params(req: &HttpRequest, body: &[u8]) -> Result<Params, OAuthError> {
    form_params_limited(req, body, crate::oauth::params::MAX_VALUE_LEN)
}

pub fn form_params_limited(req: &HttpRequest, body: &[u8], max_value_len: usize) -> Result<Params, OAuthError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    Params::parse_limited(body, max_value_len)
}

pub fn query_params(req: &HttpRequest) -> Result<Params, OAuthError> {
    Params::parse(req.query_string().as_bytes())
}

/// Cookie names get the `__Host-` prefix on https (locked to this host, path /, Secure).
pub fn cookie_name(app: &App, base: &str) -> String {
    if app.config.is_https() {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

pub fn build_cookie(
    app: &App,
    name: String,
    value: String,
    max_age_seconds: Option<i64>,
) -> Cookie<'static> {
    let mut cookie = Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(app.config.is_https())
        .finish();
    if let Some(seconds) = max_age_seconds {
        cookie.set_max_age(CookieDuration::seconds(seconds));
    }
    cookie
}

pub fn removal_cookie(app: &App, name: String) -> Cookie<'static> {
    let mut cookie = build_cookie(app, name, String::new(), None);
    cookie.make_removal();
    cookie
}

pub fn session_cookie_name(app: &App, tenant_slug: &str) -> String {
    cookie_name(app, &format!("lk_session_{tenant_slug}"))
}

/// The browser-session cookie for a new session of `ctx`'s tenant, living as long as the session may.
pub fn session_cookie(ctx: &HttpCtx<'_>, value: &latchkey_proto::Secret) -> Cookie<'static> {
    build_cookie(
        ctx.app,
        session_cookie_name(ctx.app, &ctx.tenant.slug),
        value.expose().to_owned(),
        Some(ctx.lifetimes().session_absolute),
    )
}

pub fn login_flow_cookie_name(app: &App, tenant_slug: &str) -> String {
    cookie_name(app, &format!("lk_login_{tenant_slug}"))
}

/// CSRF protection by double submit: a random value in an HttpOnly, SameSite=Lax cookie that each form
/// repeats in a hidden field. A cross-site page can neither read the cookie nor make the browser send
/// it with a cross-site POST.
pub struct Csrf {
    pub token: String,
    /// Set when the browser had no token yet.
    pub new_cookie: Option<Cookie<'static>>,
}

pub fn csrf(app: &App, req: &HttpRequest) -> Csrf {
    let name = cookie_name(app, "lk_csrf");
    match req
        .cookie(&name)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() >= 32)
    {
        Some(token) => Csrf {
            token,
            new_cookie: None,
        },
        None => {
            let token = random_token("");
            Csrf {
                new_cookie: Some(build_cookie(app, name, token.clone(), None)),
                token,
            }
        }
    }
}

/// Whether `presented` is this browser's CSRF token (the JSON endpoints send it in a header).
pub fn csrf_matches(app: &App, req: &HttpRequest, presented: Option<&str>) -> bool {
    let expected = req.cookie(&cookie_name(app, "lk_csrf"));
    matches!((expected, presented), (Some(cookie), Some(presented))
        if constant_time_eq(cookie.value().as_bytes(), presented.as_bytes()))
}

pub fn check_csrf(
    app: &App,
    req: &HttpRequest,
    params: &Params,
    tenant_name: &str,
) -> Result<(), PageError> {
    if csrf_matches(app, req, params.get("csrf")) {
        return Ok(());
    }
    Err(PageError::bad_request(
        tenant_name,
        "This form has expired or was not sent from this site. Go back, reload the page and try again.",
    ))
}

/// A label for a browser from its user agent: "Chrome on Linux".
pub fn device_label(user_agent: &str) -> String {
    let browser = ["Edg/", "Firefox/", "Chrome/", "Safari/"]
        .iter()
        .find(|b| user_agent.contains(*b))
        .map_or("Browser", |b| match *b {
            "Edg/" => "Edge",
            "Firefox/" => "Firefox",
            "Chrome/" => "Chrome",
            _ => "Safari",
        });
    let os = ["Windows", "Mac OS X", "Android", "iPhone", "Linux"]
        .iter()
        .find(|o| user_agent.contains(*o))
        .map_or("this device", |o| match *o {
            "Mac OS X" => "macOS",
            "iPhone" => "iPhone",
            other => other,
        });
    format!("{browser} on {os}")
}
