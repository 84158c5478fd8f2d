//! The HTTP layer's one error type and its one mapping to responses: OAuth JSON errors (RFC 6749 §5.2),
//! bearer challenges (RFC 6750 §3), and HTML error pages for people.

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

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
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
    /// A page for a person.
    #[error("{message}")]
    Page {
        status: StatusCode,
        tenant_name: String,
        heading: &'static str,
        message: String,
        retry_after: Option<RetryAfter>,
    },
}

impl HttpError {
    pub fn page(
        status: StatusCode,
        tenant_name: &str,
        heading: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::Page {
            status,
            tenant_name: tenant_name.to_owned(),
            heading,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request_page(tenant_name: &str, message: impl Into<String>) -> Self {
        Self::page(
            StatusCode::BAD_REQUEST,
            tenant_name,
            "Something is wrong with this request",
            message,
        )
    }

    pub fn not_found_page() -> Self {
        Self::page(
            StatusCode::NOT_FOUND,
            "Latchkey",
            "Not found",
            "There is nothing at this address.",
        )
    }

    pub fn too_many_page(tenant_name: &str, retry_after: RetryAfter) -> Self {
        Self::Page {
            status: StatusCode::TOO_MANY_REQUESTS,
            tenant_name: tenant_name.to_owned(),
            heading: "Slow down",
            message: format!(
                "Too many attempts. Please try again in {} seconds.",
                retry_after.seconds()
            ),
            retry_after: Some(retry_after),
        }
    }

    pub fn internal_page(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error while rendering a page");
        Self::page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Latchkey",
            "Something went wrong",
            "Please try again in a moment.",
        )
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


impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::OAuth(error) => oauth_status(error),
            Self::Bearer(None) => StatusCode::UNAUTHORIZED,
            Self::Bearer(Some(error)) => oauth_status(error),
            Self::UnknownTenant => StatusCode::NOT_FOUND,
            Self::Json { status, .. } | Self::Page { status, .. } => *status,
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
            Self::Page {
                tenant_name,
                heading,
                message,
                retry_after,
                ..
            } => {
                if let Some(retry) = retry_after {
                    response.insert_header((header::RETRY_AFTER, retry.seconds().to_string()));
                }
                let chrome = Chrome::new(tenant_name);
                let page = Message {
                    tenant_name: chrome.tenant_name,
                    tenant_initial: chrome.tenant_initial,
                    heading,
                    message,
                    kind: "error",
                    link: None,
                };
                let body = page.render().unwrap_or_else(|_| message.clone());
                response.content_type("text/html; charset=utf-8").body(body)
            }
        }
    }
}

impl From<StoreError> for HttpError {
    fn from(error: StoreError) -> Self {
        Self::OAuth(error.into())
    }
}
