//! Discovery documents and the JWKS.

use actix_web::{HttpResponse, http::header, web};
use bytes::Bytes;

use super::{ApiError, public_context};
use crate::{app::App, cors, oauth::status_list, oidc::discovery};
use latchkey_proto::status_list::MEDIA_TYPE;

fn cacheable_json(body: Bytes, cache_control: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .content_type("application/json")
        .body(body)
}

/// `{issuer}/.well-known/openid-configuration` (OIDC Discovery §4).
pub async fn openid_configuration(
    app: web::Data<App>,
    tenant: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = public_context(&app, &tenant).await?;
    Ok(cacheable_json(discovery::document(&ctx), "public, max-age=300"))
}

/// RFC 8414 §3, both at the path-inserted location and under the issuer.
pub async fn oauth_metadata(
    app: web::Data<App>,
    tenant: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    openid_configuration(app, tenant).await
}

pub async fn jwks(
    app: web::Data<App>,
    tenant: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // The tenant and its keyring only: no issuer to format, no context to build.
    let tenant = app.tenant(&tenant).await?.ok_or(ApiError::UnknownTenant)?;
    let keyring = app.keyring(&tenant).await?;
    // Short max-age: verifiers also refetch on an unknown kid after a rotation.
    Ok(cacheable_json(keyring.jwks_json.clone(), "public, max-age=60"))
}

/// `{issuer}/statuslists/{id}`: the tenant's token status list, a signed JWT
/// (draft-ietf-oauth-status-list §8.1), fresh for a few seconds.
pub async fn status_list(
    app: web::Data<App>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let ctx = public_context(&app, &tenant).await?;
    if !status_list::exists(&id) {
        return Err(ApiError::Json {
            status: actix_web::http::StatusCode::NOT_FOUND,
            error: "not_found",
            description: "no such status list".into(),
        });
    }
    let token = status_list::published(&ctx).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=5"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .content_type(MEDIA_TYPE)
        .body(token))
}

/// `OPTIONS` on a public document: any origin may fetch it (MCP clients send `MCP-Protocol-Version`,
/// which makes even a GET preflighted).
pub async fn preflight(req: actix_web::HttpRequest) -> HttpResponse {
    cors::preflight(&req, &cors::Allow::Anyone, "GET")
}
