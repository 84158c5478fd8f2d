//! Discovery documents and the JWKS.

use actix_web::{HttpRequest, HttpResponse, http::header, web};

use super::{HttpError, api_context};
use crate::app::App;

fn cacheable_json(body: String, cache_control: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .content_type("application/json")
        .body(body)
}

/// `{issuer}/.well-known/openid-configuration` (OIDC Discovery §4).
pub async fn openid_configuration(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let ctx = api_context(&app, &req, &tenant).await?;
    Ok(cacheable_json(ctx.discovery_document().as_str().to_owned(), "public, max-age=300"))
}

/// RFC 8414 §3, both at the path-inserted location and under the issuer.
pub async fn oauth_metadata(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    openid_configuration(app, req, tenant).await
}

pub async fn jwks(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let ctx = api_context(&app, &req, &tenant).await?;
    let keyring = ctx.keyring().await?;
    // Short max-age: verifiers also refetch on an unknown kid after a rotation.
    Ok(cacheable_json(keyring.jwks_json.clone(), "public, max-age=60"))
}
