//! `POST {issuer}/register` (RFC 7591) and `GET/PUT/DELETE {issuer}/register/{client_id}` (RFC 7592).

use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};

use super::{
    ApiError, api_context, oauth::client_allows, request, with_cors,
};
use crate::{
    app::App,
    cors::{self, Allow},
    oauth::{
        error::{ErrorCode, OAuthError},
        registration::{self, ClientMetadata, RegistrationError},
    },
    ratelimit,
};

fn error(error: RegistrationError) -> ApiError {
    match error {
        RegistrationError::Store(e) => ApiError::from(e),
        RegistrationError::InvalidToken | RegistrationError::InvalidInitialToken(_) => {
            ApiError::Bearer(Some(OAuthError::new(ErrorCode::InvalidToken, error.to_string())))
        }
        RegistrationError::Closed => ApiError::Json {
            status: StatusCode::FORBIDDEN,
            error: error.code(),
            description: error.to_string(),
        },
        other => ApiError::Json {
            status: StatusCode::BAD_REQUEST,
            error: other.code(),
            description: other.to_string(),
        },
    }
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    request::authorization_header(req).and_then(|value| crate::auth_header::credentials(value, "Bearer"))
}

/// Client metadata is a JSON object (RFC 7591 §3.1); anything else is `invalid_client_metadata`.
fn metadata(req: &HttpRequest, body: &[u8]) -> Result<ClientMetadata, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(error(RegistrationError::InvalidClientMetadata("send the metadata as application/json".into())));
    }
    serde_json::from_slice(body).map_err(|e| {
        error(RegistrationError::InvalidClientMetadata(format!("the metadata is not a valid client metadata object: {e}")))
    })
}

fn json(status: StatusCode, body: serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

pub async fn register(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let ctx = api_context(&app, &req, &tenant).await?;
    let result = async {
        ratelimit::check(&app.services.limiters.registration_per_ip, &request::client_ip(&app, &req))
            .map_err(OAuthError::rate_limited)?;
        let metadata = metadata(&req, &body)?;
        let info = registration::register(&ctx, bearer(&req), &metadata).await.map_err(error)?;
        Ok(json(StatusCode::CREATED, info))
    }
    .await;
    // Registration is open to any caller the tenant's policy admits, browser-based ones included (MCP
    // Inspector registers from its page): any origin may read the answer, which is its own.
    Ok(with_cors(result, Allow::Anyone))
}

/// `OPTIONS /register`: any origin (see `register`).
pub async fn preflight(req: HttpRequest) -> HttpResponse {
    cors::preflight(&req, &Allow::Anyone, "POST")
}

/// `OPTIONS /register/{client_id}` (RFC 7592): for the origins that client allows.
pub async fn preflight_client(
    app: web::Data<App>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, client_id) = path.into_inner();
    let ctx = api_context(&app, &req, &tenant).await?;
    let allow = client_allows(&ctx, &client_id, &req).await;
    Ok(cors::preflight(&req, &allow, "GET, PUT, DELETE"))
}

pub async fn read(
    app: web::Data<App>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, client_id) = path.into_inner();
    let ctx = api_context(&app, &req, &tenant).await?;
    // The origins of the client being managed, read before the request changes (or deletes) it.
    let allow = client_allows(&ctx, &client_id, &req).await;
    let result = registration::read(&ctx, &client_id, bearer(&req)).await.map_err(error).map(|info| json(StatusCode::OK, info));
    Ok(with_cors(result, allow))
}

pub async fn update(
    app: web::Data<App>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (tenant, client_id) = path.into_inner();
    let ctx = api_context(&app, &req, &tenant).await?;
    // The origins of the client being managed, read before the request changes (or deletes) it.
    let allow = client_allows(&ctx, &client_id, &req).await;
    let result = match metadata(&req, &body) {
        Ok(metadata) => registration::update(&ctx, &client_id, bearer(&req), &metadata).await.map_err(error),
        Err(e) => Err(e),
    };
    Ok(with_cors(result.map(|info| json(StatusCode::OK, info)), allow))
}

pub async fn delete(
    app: web::Data<App>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, client_id) = path.into_inner();
    let ctx = api_context(&app, &req, &tenant).await?;
    // The origins of the client being managed, read before the request changes (or deletes) it.
    let allow = client_allows(&ctx, &client_id, &req).await;
    let result = registration::delete(&ctx, &client_id, bearer(&req))
        .await
        .map_err(error)
        .map(|()| HttpResponse::NoContent().insert_header((header::CACHE_CONTROL, "no-store")).finish());
    Ok(with_cors(result, allow))
}
