//! OAuth errors (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1; OIDC Core §3.1.2.6). The HTTP mapping lives in
//! `http::errors`, once.

use crate::{jwt::JwtError, ratelimit::RetryAfter, store::StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    /// RFC 8707 §2: the resource is unknown, malformed, or not allowed here.
    InvalidTarget,
    AccessDenied,
    InvalidToken,
    InsufficientScope,
    LoginRequired,
    InteractionRequired,
    UnmetAuthenticationRequirements,
    ConsentRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    ServerError,
    TemporarilyUnavailable,
    /// CIBA Core §11: the person has not answered yet.
    AuthorizationPending,
    /// CIBA Core §11: polled faster than the interval (now five seconds longer).
    SlowDown,
    /// CIBA Core §11: the `auth_req_id` expired.
    ExpiredToken,
    /// CIBA Core §13: the hint names nobody.
    UnknownUserId,
    /// CIBA Core §13.
    InvalidBindingMessage,
    /// RFC 9396 §5.
    InvalidAuthorizationDetails,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::LoginRequired => "login_required",
            Self::InteractionRequired => "interaction_required",
            Self::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
            Self::ConsentRequired => "consent_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::UnknownUserId => "unknown_user_id",
            Self::InvalidBindingMessage => "invalid_binding_message",
            Self::InvalidAuthorizationDetails => "invalid_authorization_details",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: ErrorCode,
    /// Safe to show the client: never contains a token, code or secret.
    pub description: String,
    /// The client authenticated with HTTP Basic (the 401 carries a Basic challenge, RFC 6749 §5.2).
    pub basic_challenge: bool,
    pub retry_after: Option<RetryAfter>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            basic_challenge: false,
            retry_after: None,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub fn invalid_client(basic: bool) -> Self {
        Self {
            basic_challenge: basic,
            ..Self::new(ErrorCode::InvalidClient, "client authentication failed")
        }
    }

    pub fn rate_limited(retry_after: RetryAfter) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                ErrorCode::TemporarilyUnavailable,
                "too many requests; retry later",
            )
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "storage failure");
        Self::new(ErrorCode::ServerError, "internal storage error")
    }
}

impl From<JwtError> for OAuthError {
    fn from(error: JwtError) -> Self {
        match error {
            JwtError::Invalid => {
                Self::new(ErrorCode::InvalidToken, "the access token is not valid")
            }
            other => {
                tracing::error!(error = %other, "token signing failure");
                Self::new(ErrorCode::ServerError, "cannot sign token")
            }
        }
    }
}
