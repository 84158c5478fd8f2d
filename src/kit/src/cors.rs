//! Cross-origin requests from browser applications (the Fetch Standard's CORS protocol, §3.2), for
//! the identity server and the permission API alike: what an origin is, and the headers that let
//! (or do not let) a page read a response or send a request.
//!
//! The identity server's three policies (`latchkey::http::oauth`, `::registration`, `::wellknown`):
//! - **public** (discovery, JWKS, dynamic registration): any origin may read the response, `*`.
//!   Nothing there depends on who asks, and no request carries cookies.
//! - **client** (token, revocation, UserInfo, registration management): the response is readable
//!   only by a page at an origin the client allows (`Client::allows_origin`: its redirect URIs'
//!   origins and `allowed_origins`). A preflight names no client, so it is answered for an origin
//!   that some client of the tenant allows (`client::any_allows_origin`); the real response then
//!   decides for the client it names.
//! - everything else (pages, introspection): no CORS headers, so browsers keep cross-origin pages out.
//!
//! The permission API's MCP endpoint allows its configured origins (`latchkey_permissions::http`).
//!
//! `Access-Control-Allow-Credentials` is never sent: these endpoints take credentials in the request
//! (a client secret, a bearer token), never from cookies, so a page cannot ride a person's session.

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::{self, HeaderValue},
};
use url::Url;

/// How long a browser may reuse a preflight answer (seconds; Chromium caps it at 7200).
const PREFLIGHT_MAX_AGE: &str = "600";
/// Response headers a page may read beyond the CORS-safelisted ones: the bearer challenge (RFC 6750
/// §3), a rate limit's wait, and the MCP session (streamable HTTP transport).
const EXPOSED: &str = "WWW-Authenticate, Retry-After, Mcp-Session-Id";

/// The web origin of a URL (RFC 6454 §4) as a browser sends it in `Origin`, for http(s) URLs only: a
/// private-use scheme has no web origin a page could call from.
pub fn web_origin(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.origin().ascii_serialization())
}

/// Whether a value is exactly an origin (`scheme://host[:port]`, http or https, nothing after it).
pub fn valid_origin(value: &str) -> bool {
    web_origin(value).is_some_and(|origin| origin == value)
}

/// The `Origin` of a cross-origin request, when it is a serialised http(s) origin (RFC 6454 §6.2).
/// `null` and malformed values are no origin any client can allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOrigin(String);

impl RequestOrigin {
    pub fn of(req: &HttpRequest) -> Option<Self> {
        let value = req.headers().get(header::ORIGIN)?.to_str().ok()?;
        valid_origin(value).then(|| Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a response lets the requesting page read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allow {
    /// Any page (`*`).
    Anyone,
    /// The page at this origin only.
    Origin(RequestOrigin),
    /// No page: no CORS headers.
    Nobody,
}

/// Adds the CORS headers `allow` calls for to a response.
pub fn add_headers(response: &mut HttpResponse, allow: &Allow) {
    let headers = response.headers_mut();
    let value = match allow {
        Allow::Nobody => return,
        Allow::Anyone => HeaderValue::from_static("*"),
        Allow::Origin(origin) => {
            // The answer differs by origin: caches must key on it (Fetch §3.2.5).
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
            match HeaderValue::from_str(origin.as_str()) {
                Ok(value) => value,
                Err(_) => return,
            }
        }
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED));
}

/// The header names a preflight asks to send (`Access-Control-Request-Headers`), when they are a
/// plain comma-separated token list (RFC 9110 §5.6.2); they are echoed back, since no header
/// changes what these endpoints allow (the credential is checked either way).
fn requested_headers(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS)?.to_str().ok()?;
    let tokens: Vec<&str> = value.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
    let plain = tokens.len() <= 32
        && tokens.iter().all(|t| t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
    (plain && !tokens.is_empty()).then(|| tokens.join(", "))
}

/// A preflight's answer (Fetch §3.2.3): 204 with the methods and headers allowed, or, for an origin
/// not allowed, 204 without CORS headers, which the browser reads as a refusal.
pub fn preflight(req: &HttpRequest, allow: &Allow, methods: &'static str) -> HttpResponse {
    let mut response = HttpResponse::NoContent().finish();
    if *allow == Allow::Nobody {
        response.headers_mut().insert(header::VARY, HeaderValue::from_static("Origin"));
        return response;
    }
    add_headers(&mut response, allow);
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
    if let Some(requested) = requested_headers(req).and_then(|h| HeaderValue::from_str(&h).ok()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested);
        headers.append(header::VARY, HeaderValue::from_static("Access-Control-Request-Headers"));
    }
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(PREFLIGHT_MAX_AGE));
    response
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn origins_and_preflights() {
        let req = |origin: &str| TestRequest::default().insert_header((header::ORIGIN, origin)).to_http_request();
        assert_eq!(RequestOrigin::of(&req("https://app.example")).map(|o| o.0), Some("https://app.example".into()));
        for bad in ["null", "https://app.example/", "file://", "https://app.example/path", "chrome-extension://abc"] {
            assert_eq!(RequestOrigin::of(&req(bad)), None, "{bad}");
        }

        let asking = TestRequest::default()
            .insert_header((header::ORIGIN, "https://app.example"))
            .insert_header((header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization, mcp-protocol-version"))
            .to_http_request();
        let origin = RequestOrigin::of(&asking).expect("origin");
        let allowed = preflight(&asking, &Allow::Origin(origin), "POST, OPTIONS");
        let get = |r: &HttpResponse, h| r.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(get(&allowed, header::ACCESS_CONTROL_ALLOW_ORIGIN).as_deref(), Some("https://app.example"));
        assert_eq!(get(&allowed, header::ACCESS_CONTROL_ALLOW_HEADERS).as_deref(), Some("authorization, mcp-protocol-version"));
        assert_eq!(get(&allowed, header::ACCESS_CONTROL_ALLOW_CREDENTIALS), None, "never credentials");
        let refused = preflight(&asking, &Allow::Nobody, "POST, OPTIONS");
        assert_eq!(get(&refused, header::ACCESS_CONTROL_ALLOW_ORIGIN), None);
        assert_eq!(get(&refused, header::ACCESS_CONTROL_ALLOW_METHODS), None);

        let odd = TestRequest::default().insert_header((header::ACCESS_CONTROL_REQUEST_HEADERS, "x\"y")).to_http_request();
        assert_eq!(requested_headers(&odd), None);
    }
}
