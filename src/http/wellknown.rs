//! Discovery documents and the JWKS.

use actix_web::{HttpRequest, HttpResponse, http::header, web};

use super::{HttpError, api_context};
use crate::{app::App, oauth::metadata_document, oidc::discovery, tenant::RegistrationPolicy};

fn cacheable_json(body: String, max_age: u32) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, format!("public, max-age={max_age}")))
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
    Ok(cacheable_json(
        discovery::metadata(
            &ctx.issuer,
            ctx.tenant.registration != RegistrationPolicy::Closed,
            metadata_document::accepted_by(&ctx.tenant),
        )
        .to_string(),
        300,
    ))
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
    Ok(cacheable_json(keyring.jwks_json.clone(), 60))
}
