//! `{issuer}/scim/v2/{organization}/…` (RFC 7644): thin handlers over `scim::directory`. Every answer
//! is `application/scim+json`; every refusal a SCIM error (§3.12) with its `scimType`.

use std::collections::HashMap;

use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use serde_json::{Value as Json, json};

use super::{http_context, request, HttpCtx};
use crate::{
    app::App,
    scim::{
        ScimError,
        directory::{self, Caller, DirectoryError, ListPage, Resource},
        query::{self, Params},
        schema::{self, GROUP_SCHEMA, USER_SCHEMA},
    },
};

const SCIM_JSON: &str = "application/scim+json";
const DOCUMENTATION: &str = "https://github.com/latchkey/latchkey/blob/main/docs/scim.md";

fn scim_json(status: StatusCode, body: &Json) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, SCIM_JSON))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.to_string())
}

fn error_body(status: u16, scim_type: Option<&str>, detail: &str) -> Json {
    let mut body = json!({ "schemas": [schema::ERROR], "status": status.to_string(), "detail": detail });
    if let Some(scim_type) = scim_type {
        body["scimType"] = Json::String(scim_type.to_owned());
    }
    body
}

/// The one mapping of the directory's errors to HTTP.
fn error_response(error: DirectoryError) -> HttpResponse {
    match error {
        DirectoryError::Scim(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            scim_json(status, &error_body(e.status, e.scim_type, &e.detail))
        }
        DirectoryError::Unauthorized => {
            let mut response = scim_json(StatusCode::UNAUTHORIZED, &error_body(401, None, &error.to_string()));
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer realm=\"latchkey-scim\""));
            response
        }
        DirectoryError::RateLimited(retry) => {
            let mut response = scim_json(StatusCode::TOO_MANY_REQUESTS, &error_body(429, None, "too many requests with this token"));
            if let Ok(value) = header::HeaderValue::from_str(&retry.seconds().to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        DirectoryError::TooManyTokens => scim_json(StatusCode::CONFLICT, &error_body(409, None, &error.to_string())),
        DirectoryError::Store(e) => {
            tracing::error!(error = %e, "SCIM request failed");
            scim_json(StatusCode::INTERNAL_SERVER_ERROR, &error_body(500, None, "something went wrong; try again"))
        }
    }
}

fn respond(result: Result<HttpResponse, DirectoryError>) -> HttpResponse {
    result.unwrap_or_else(error_response)
}

fn with_etag(mut response: HttpResponse, version: i64) -> HttpResponse {
    if let Ok(value) = header::HeaderValue::from_str(&directory::etag(version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn resource(status: StatusCode, resource: Resource) -> HttpResponse {
    let location = resource.body.pointer("/meta/location").and_then(Json::as_str).map(str::to_owned);
    let mut response = with_etag(scim_json(status, &resource.body), resource.version);
    if status == StatusCode::CREATED
        && let Some(location) = location.and_then(|l| header::HeaderValue::from_str(&l).ok())
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn list(page: ListPage) -> HttpResponse {
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [schema::LIST_RESPONSE],
            "totalResults": page.total,
            "startIndex": page.start_index,
            "itemsPerPage": page.resources.len(),
            "Resources": page.resources,
        }),
    )
}

/// The tenant context and the directory the bearer token opens.
async fn caller<'a>(app: &'a App, req: &HttpRequest, tenant: &str, organization: &str) -> Result<(HttpCtx<'a>, Caller), DirectoryError> {
    let ctx = http_context(app, tenant, request::origin(app, req))
        .await?
        .ok_or_else(|| ScimError::not_found("no such directory"))?;
    let bearer = request::authorization_header(req).and_then(|value| crate::auth_header::credentials(value, "Bearer"));
    let caller = directory::authenticate(&ctx, organization, bearer).await?;
    Ok((ctx, caller))
}

/// A request body: JSON sent as `application/scim+json` or `application/json` (or untyped).
fn body(req: &HttpRequest, bytes: &[u8]) -> Result<Json, DirectoryError> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !matches!(essence, "" | SCIM_JSON | "application/json") {
        return Err(ScimError::new(415, None, "send the resource as application/scim+json").into());
    }
    Ok(serde_json::from_slice(bytes).map_err(|e| ScimError::invalid_syntax(format!("the body is not JSON: {e}")))?)
}

fn if_match(req: &HttpRequest) -> Option<&str> {
    req.headers().get(header::IF_MATCH).and_then(|v| v.to_str().ok())
}

/// List parameters from the query string (names case-insensitively, §3.4.2).
fn params(req: &HttpRequest) -> Result<Params, DirectoryError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).map_err(|_| ScimError::invalid_syntax("the query string is not form-encoded"))?;
    let map: HashMap<String, String> = pairs.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    let get = |name: &str| map.get(&name.to_ascii_lowercase()).cloned();
    Ok(Params {
        filter: get("filter"),
        sort_by: get("sortBy"),
        sort_order: get("sortOrder"),
        start_index: get("startIndex"),
        count: get("count"),
        attributes: get("attributes"),
        excluded_attributes: get("excludedAttributes"),
    })
}

/// A single resource's `attributes` / `excludedAttributes` (§3.9).
fn project(req: &HttpRequest, mut found: Resource) -> Result<Resource, DirectoryError> {
    let params = params(req)?;
    let attributes = query::attribute_list(params.attributes.as_deref())?;
    let excluded = query::attribute_list(params.excluded_attributes.as_deref())?;
    query::project(&mut found.body, &attributes, &excluded);
    Ok(found)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Users,
    Groups,
}

fn kind(segment: &str) -> Result<Kind, DirectoryError> {
    match segment {
        "Users" => Ok(Kind::Users),
        "Groups" => Ok(Kind::Groups),
        // Advertised as unsupported in /ServiceProviderConfig (bulk), or optional and not served.
        "Bulk" | "Me" => Err(ScimError::new(501, None, format!("/{segment} is not supported (see /ServiceProviderConfig)")).into()),
        other => Err(ScimError::not_found(format!("no endpoint /{other}")).into()),
    }
}

/// Whether a group's members are wanted in the answer (they can be many: Entra asks without them).
fn members_wanted(req: &HttpRequest) -> bool {
    let Ok(params) = params(req) else { return true };
    let named = |list: &Option<String>| list.as_deref().is_some_and(|l| l.split(',').any(|a| a.trim().eq_ignore_ascii_case("members")));
    if params.attributes.is_some() { named(&params.attributes) } else { !named(&params.excluded_attributes) }
}

type Path2 = web::Path<(String, String)>;
type Path3 = web::Path<(String, String, String)>;
type Path4 = web::Path<(String, String, String, String)>;

/// `GET /Users`, `GET /Groups` (§3.4.2).
pub async fn search(app: web::Data<App>, req: HttpRequest, path: Path3) -> HttpResponse {
    let (tenant, organization, segment) = path.into_inner();
    respond(
        async {
            let kind = kind(&segment)?;
            let (ctx, caller) = caller(&app, &req, &tenant, &organization).await?;
            run_search(&ctx, &caller, kind, &params(&req)?).await
        }
        .await,
    )
}

/// `POST /Users/.search`, `POST /Groups/.search` (§3.4.3).
pub async fn search_post(app: web::Data<App>, req: HttpRequest, path: Path3, bytes: web::Bytes) -> HttpResponse {
    let (tenant, organization, segment) = path.into_inner();
    respond(
        async {
            let kind = kind(&segment)?;
            let (ctx, caller) = caller(&app, &req, &tenant, &organization).await?;
            let params = Params::from_search(&body(&req, &bytes)?)?;
            run_search(&ctx, &caller, kind, &params).await
        }
        .await,
    )
}

async fn run_search(ctx: &HttpCtx<'_>, caller: &Caller, kind: Kind, params: &Params) -> Result<HttpResponse, DirectoryError> {
    let page = match kind {
        Kind::Users => directory::list_users(ctx, caller, &query::read(&USER_SCHEMA, params)?).await?,
        Kind::Groups => directory::list_groups(ctx, caller, &query::read(&GROUP_SCHEMA, params)?).await?,
    };
    Ok(list(page))
}

/// `POST /.search` (§3.4.3): every resource type at once.
pub async fn search_root(app: web::Data<App>, req: HttpRequest, path: Path2, bytes: web::Bytes) -> HttpResponse {
    let (tenant, organization) = path.into_inner();
    respond(
        async {
            let (ctx, caller) = caller(&app, &req, &tenant, &organization).await?;
            let params = Params::from_search(&body(&req, &bytes)?)?;
            let (users, groups) = (query::read(&USER_SCHEMA, &params)?, query::read(&GROUP_SCHEMA, &params)?);
            Ok(list(directory::list_all(&ctx, &caller, &users, &groups).await?))
        }
        .await,
    )
}

/// The discovery endpoints are read-only (§4): another method is 405.
pub async fn read_only() -> HttpResponse {
    let mut response = scim_json(StatusCode::METHOD_NOT_ALLOWED, &error_body(405, None, "this endpoint is read-only"));
    response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET"));
    response
}

/// `POST /Users`, `POST /Groups` (§3.3).
pub async fn create(app: web::Data<App>, req: HttpRequest, path: Path3, bytes: web::Bytes) -> HttpResponse {
    let (tenant, organization, segment) = path.into_inner();
    respond(
        async {
            let kind = kind(&segment)?;
            let (ctx, caller) = caller(&app, &req, &tenant, &organization).await?;
            let body = body(&req, &bytes)?;
            let created = match kind {
                Kind::Users => directory::create_user(&ctx, &caller, &body).await?,
                Kind::Groups => directory::create_group(&ctx, &caller, &body).await?,
            };
            Ok(resource(StatusCode::CREATED, project(&req, created)?))
        }
        .await,
    )
}

/// `GET /Users/{id}`, `GET /Groups/{id}` (§3.4.1); `If-None-Match` with the current ETag is 304.
pub async fn read(app: web::Data<App>, req: HttpRequest, path: Path4) -> HttpResponse {
    let (tenant, organization, segment, id) = path.into_inner();
    respond(
        async {
            let kind = kind(&segment)?;
            let (ctx, caller) = caller(&app, &req, &tenant, &organization).await?;
            let found = match kind {
                Kind::Users => directory::get_user(&ctx, &caller, &id).await?,
                Kind::Groups => directory::get_group(&ctx, &caller, &id, members_wanted(&req)).await?,
            };
            let current = directory::etag(found.version);
            let none_match = req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
            if none_match.is_some_and(|h| h.split(',').any(|t| t.trim() == current || t.trim() == "*")) {
                return Ok(with_etag(HttpResponse::NotModified().finish(), found.version));
            }
            Ok(resource(StatusCode::OK, project(&req, found)?))
        }
        .await,
    )
}

/// `PUT` (§3.5.1).
pub async fn replace(app: web::Data<App>, req: HttpRequest, path: Path4, bytes: web::Bytes) -> HttpResponse {
    let (tenant, organization, segment, id) = path.into_inner();
    respond(
        async {
            let kind = kind(&segment)?;
            let (ctx, caller) = caller(&app, &req, &tenant, &organization).await?;
            let body = body(&req, &bytes)?;
            let replaced = match kind {
                Kind::Users => directory::replace_user(&ctx, &caller, &id, &body, if_match(&req)).await?,
                Kind::Groups => directory::replace_group(&ctx, &caller, &id, &body, if_match(&req)).await?,
            };
            Ok(resource(StatusCode::OK, project(&req, replaced)?))
        }
        .await,
    )
}

/// `PATCH` (§3.5.2): a user comes back whole; a group (whose members can number thousands) as 204
/// with its new ETag, unless `attributes` asks for it.
pub async fn patch(app: web::Data<App>, req: HttpRequest, path: Path4, bytes: web::Bytes) -> HttpResponse {
    let (tenant, organization, segment, id) = path.into_inner();
    respond(
        async {
            let kind = kind(&segment)?;
            let (ctx, caller) = caller(&app, &req, &tenant, &organization).await?;
            let body = body(&req, &bytes)?;
            match kind {
                Kind::Users => {
                    let patched = directory::patch_user(&ctx, &caller, &id, &body, if_match(&req)).await?;
                    Ok(resource(StatusCode::OK, project(&req, patched)?))
                }
                Kind::Groups => {
                    let patched = directory::patch_group(&ctx, &caller, &id, &body, if_match(&req)).await?;
                    if params(&req)?.attributes.is_some() {
                        let whole = directory::get_group(&ctx, &caller, &id, members_wanted(&req)).await?;
                        return Ok(resource(StatusCode::OK, project(&req, whole)?));
                    }
                    Ok(with_etag(HttpResponse::NoContent().finish(), patched.version))
                }
            }
        }
        .await,
    )
}

/// `DELETE` (§3.6).
pub async fn delete(app: web::Data<App>, req: HttpRequest, path: Path4) -> HttpResponse {
    let (tenant, organization, segment, id) = path.into_inner();
    respond(
        async {
            let kind = kind(&segment)?;
            let (ctx, caller) = caller(&app, &req, &tenant, &organization).await?;
            match kind {
                Kind::Users => directory::delete_user(&ctx, &caller, &id, if_match(&req)).await?,
                Kind::Groups => directory::delete_group(&ctx, &caller, &id, if_match(&req)).await?,
            }
            Ok(HttpResponse::NoContent().finish())
        }
        .await,
    )
}

/// `GET /ServiceProviderConfig`, `/ResourceTypes[/{id}]`, `/Schemas[/{id}]` (§4): for a caller of
/// the directory (the documents are the same for all, but the URL names an organization).
pub async fn discovery(app: web::Data<App>, req: HttpRequest, path: Path3) -> HttpResponse {
    let (tenant, organization, segment) = path.into_inner();
    respond(
        async {
            let (_, caller) = caller(&app, &req, &tenant, &organization).await?;
            discovery_document(&caller, &segment, None)
        }
        .await,
    )
}

pub async fn discovery_item(app: web::Data<App>, req: HttpRequest, path: Path4) -> HttpResponse {
    let (tenant, organization, segment, id) = path.into_inner();
    respond(
        async {
            let (_, caller) = caller(&app, &req, &tenant, &organization).await?;
            discovery_document(&caller, &segment, Some(&id))
        }
        .await,
    )
}

fn discovery_document(caller: &Caller, segment: &str, id: Option<&str>) -> Result<HttpResponse, DirectoryError> {
    let base = &caller.base;
    let listed = |items: Vec<Json>| -> Result<HttpResponse, DirectoryError> {
        match id {
            None => Ok(list(ListPage { total: items.len() as u64, start_index: 1, resources: items })),
            Some(id) => items
                .into_iter()
                .find(|item| item.get("id").and_then(Json::as_str) == Some(id))
                .map(|item| scim_json(StatusCode::OK, &item))
                .ok_or_else(|| ScimError::not_found(format!("no {segment} {id}")).into()),
        }
    };
    match (segment, id) {
        ("ServiceProviderConfig", None) => {
            Ok(scim_json(StatusCode::OK, &schema::service_provider_config(base, DOCUMENTATION, query::MAX_COUNT)))
        }
        ("ResourceTypes", _) => listed(schema::resource_types(base)),
        ("Schemas", _) => listed(schema::schemas(base)),
        _ => Err(ScimError::not_found(format!("no endpoint /{segment}")).into()),
    }
}

/// Any other path under a directory: a SCIM 404.
pub async fn not_found() -> HttpResponse {
    scim_json(StatusCode::NOT_FOUND, &error_body(404, None, "no such endpoint"))
}
