//! The HTTP layer's two error types, each mapped to a response once: [`ApiError`] for API endpoints
//! (OAuth JSON errors, RFC 6749 §5.2; bearer challenges, RFC 6750 §3) and [`PageError`] for people
//! (an HTML page).

use actix_web::{
    HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use askama::Template;

use crate::{
    auth_header::quoted_string as quoted,
    oauth::error::{ErrorCode, OAuthError},
    pages::{Chrome, Message},
    ratelimit::RetryAfter,
    store::StoreError,
};

/// An error from an API endpoint: always JSON (or a bare bearer challenge), never a page.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// JSON error from an OAuth endpoint.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// Error from a bearer-protected endpoint; `None` when no token was presented at all.
    #[error("bearer token error")]
    Bearer(Option<OAuthError>),
    /// An API path under a tenant that does not exist.
    #[error("unknown tenant")]
    UnknownTenant,
    /// JSON error from a hosted page's script endpoint (passkey ceremonies).
    #[error("{description}")]
    Json {
        status: StatusCode,
        error: &'static str,
        description: String,
    },
}

/// An error shown to a person: always an HTML page in the tenant's chrome. A storage or template
/// failure converts into the generic "Something went wrong" page (logged here, once), so page
/// handlers use `?` on domain results.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PageError {
    status: StatusCode,
    tenant_name: String,
    heading: &'static str,
    message: String,
    retry_after: Option<RetryAfter>,
}

/// What a person whose organization enforces SSO is told when trying another way in.
pub const SSO_REQUIRED: &str = "Your organization requires signing in through its own sign-in (single sign-on). Type your work address on the sign-in page to continue there. If that sign-in is not working, ask your organization's administrator.";

impl PageError {
    pub fn new(status: StatusCode, tenant_name: &str, heading: &'static str, message: impl Into<String>) -> Self {
        Self { status, tenant_name: tenant_name.to_owned(), heading, message: message.into(), retry_after: None }
    }

    pub fn bad_request(tenant_name: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, tenant_name, "Something is wrong with this request", message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Latchkey", "Not found", "There is nothing at this address.")
    }

    /// A sign-in other than through the organization's identity provider, for an address whose
    /// organization enforces SSO (docs/sso.md, "Enforcing SSO").
    pub fn sso_required(tenant_name: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, tenant_name, "Sign in through your organization", SSO_REQUIRED)
    }

    pub fn too_many(tenant_name: &str, retry_after: RetryAfter) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                tenant_name,
                "Slow down",
                format!("Too many attempts. Please try again in {} seconds.", retry_after.seconds()),
            )
        }
    }

    /// The page for a failure that is ours, not the person's. The cause is logged, never shown.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error while rendering a page");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Latchkey", "Something went wrong", "Please try again in a moment.")
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        Self::internal(&error)
    }
}

impl From<askama::Error> for PageError {
    fn from(error: askama::Error) -> Self {
        Self::internal(&error)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(retry) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, retry.seconds().to_string()));
        }
        let chrome = Chrome::new(&self.tenant_name);
        let page = Message {
            tenant_name: chrome.tenant_name,
            tenant_initial: chrome.tenant_initial,
            heading: self.heading,
            message: &self.message,
            kind: "error",
            link: None,
            other_way: None,
        };
        let body = page.render().unwrap_or_else(|_| self.message.clone());
        response.content_type("text/html; charset=utf-8").body(body)
    }
}

fn oauth_status(error: &OAuthError) -> StatusCode {
    match error.code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable if error.retry_after.is_some() => {
            StatusCode::TOO_MANY_REQUESTS
        }
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}


impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::OAuth(error) => oauth_status(error),
            Self::Bearer(None) => StatusCode::UNAUTHORIZED,
            Self::Bearer(Some(error)) => oauth_status(error),
            Self::UnknownTenant => StatusCode::NOT_FOUND,
            Self::Json { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        match self {
            Self::Json { error, description, .. } => response.json(serde_json::json!({
                "error": error,
                "error_description": description,
            })),
            Self::OAuth(error) => {
                if error.basic_challenge {
                    response.insert_header((
                        header::WWW_AUTHENTICATE,
                        "Basic realm=\"latchkey\", charset=\"UTF-8\"",
                    ));
                }
                if let Some(retry) = error.retry_after {
                    response.insert_header((header::RETRY_AFTER, retry.seconds().to_string()));
                }
                response.json(serde_json::json!({
                    "error": error.code.as_str(),
                    "error_description": error.description,
                }))
            }
            Self::Bearer(error) => {
                let challenge = match error {
                    None => "Bearer realm=\"latchkey\"".to_owned(),
                    Some(error) => format!(
                        "Bearer realm=\"latchkey\", error={}, error_description={}",
                        quoted(error.code.as_str()),
                        quoted(&error.description)
                    ),
                };
                response.insert_header((header::WWW_AUTHENTICATE, challenge));
                match error {
                    None => response.finish(),
                    Some(error) => response.json(serde_json::json!({
                        "error": error.code.as_str(),
                        "error_description": error.description,
                    })),
                }
            }
            Self::UnknownTenant => response.json(serde_json::json!({
                "error": "invalid_request",
                "error_description": "unknown tenant",
            })),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::OAuth(error.into())
    }
}
