//! The permission API's HTTP surface: RFC 9728 protected resource metadata, the receipt key, and the
//! decision endpoint with RFC 6750 / RFC 9470 challenges.

use std::sync::Arc;

use actix_web::{
    App as ActixApp, HttpRequest, HttpResponse, HttpServer,
    http::{Method, StatusCode, header},
    web,
};
use serde::Deserialize;
use serde_json::json;

use latchkey_kit::cors;
use latchkey_proto::AccessClaims;

use crate::{
    PermissionApi, Request, Summary,
    approvals::plain,
    mcp::{Caller, Governed},
    receipt,
    rules::{Outcome, Reauthorize, STEP_UP_ACR},
    verifier::TokenError,
};

/// RFC 9728 §3.2.
async fn resource_metadata(api: web::Data<PermissionApi>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .json(json!({
            "resource": api.config.resource,
            "authorization_servers": api.config.issuers,
            "bearer_methods_supported": ["header"],
            "scopes_supported": api.config.scopes_supported,
            "resource_signing_alg_values_supported": [receipt::RECEIPT_ALG],
            "jwks_uri": api.endpoints.jwks_uri,
        }))
}

async fn jwks(api: web::Data<PermissionApi>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .content_type("application/json")
        .body(api.receipt_key.jwks.clone())
}


/// A `WWW-Authenticate: Bearer` challenge (RFC 6750 §3, RFC 9728 §5.1, RFC 9470 §3).
fn challenge(api: &PermissionApi, status: StatusCode, params: &[(&str, String)], body: serde_json::Value) -> HttpResponse {
    let mut value = format!("Bearer resource_metadata=\"{}\"", api.endpoints.metadata_url);
    for (name, param) in params {
        value.push_str(&format!(", {name}={}", latchkey_kit::auth_header::quoted_string(param)));
    }
    HttpResponse::build(status)
        .insert_header((header::WWW_AUTHENTICATE, value))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// The verified caller, or the 401 to send.
async fn caller(api: &PermissionApi, req: &HttpRequest) -> Result<Arc<AccessClaims>, HttpResponse> {
    let scope = || api.config.scopes_supported.join(" ");
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| latchkey_kit::auth_header::credentials(v, "Bearer"));
    let Some(token) = presented else {
        // No token at all: no error code (RFC 6750 §3.1), just where to get one.
        return Err(challenge(api, StatusCode::UNAUTHORIZED, &[("scope", scope())], json!({ "error": "unauthorized" })));
    };
    api.verifier.verify(token).await.map_err(|error| {
        if let TokenError::Unreachable(detail) = &error {
            tracing::warn!(%detail, "issuer keys unavailable");
        }
        let description = error.to_string();
        challenge(
            api,
            StatusCode::UNAUTHORIZED,
            &[("error", "invalid_token".into()), ("error_description", description.clone()), ("scope", scope())],
            json!({ "error": "invalid_token", "error_description": description }),
        )
    })
}

#[derive(Deserialize)]
struct DecisionRequest {
    tool: String,
    #[serde(default = "call")]
    action: String,
    arguments_digest: Option<String>,
    /// false: the caller's client cannot act on a step-up challenge, so a `step_up` rule with
    /// `fallback = "approve"` asks the person instead.
    #[serde(default = "yes")]
    can_reauthorize: bool,
    /// What the person is asked to approve, in a sentence (at most 300 characters).
    summary: Option<String>,
}

fn yes() -> bool {
    true
}

fn call() -> String {
    "call".to_owned()
}

/// `POST /v1/decisions`: may the caller run this tool? 200 with `allow` and a signed receipt, or 403
/// (`insufficient_scope`, or a plain deny), or 401 `insufficient_user_authentication` (RFC 9470) with
/// the `acr_values` and `max_age` the new token needs. Every decision is audited with its receipt.
async fn decide(api: web::Data<PermissionApi>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let claims = match caller(&api, &req).await {
        Ok(claims) => claims,
        Err(response) => return response,
    };
    let Ok(request) = serde_json::from_slice::<DecisionRequest>(&body) else {
        return HttpResponse::BadRequest().json(json!({
            "error": "invalid_request",
            "error_description": "send {\"tool\": …, \"action\": …, \"arguments_digest\": …} as JSON",
        }));
    };
    let digest_len = request.arguments_digest.as_deref().map_or(0, str::len);
    let summary_len = request.summary.as_deref().map_or(0, |s| s.chars().count());
    if request.tool.is_empty() || request.tool.len() > 200 || request.action.len() > 200 || digest_len > 200 || summary_len > 300 {
        return HttpResponse::BadRequest().json(json!({
            "error": "invalid_request",
            "error_description": "tool and action are 1-200 characters, arguments_digest at most 200, summary at most 300",
        }));
    }
    let summary = request.summary.as_deref().map(|s| plain(s, 300));
    let call = Request {
        tool: &request.tool,
        action: &request.action,
        arguments_digest: request.arguments_digest.as_deref(),
        reauthorize: if request.can_reauthorize { Reauthorize::Can } else { Reauthorize::Cannot },
        summary: summary.as_deref().map_or(Summary::Default, Summary::Given),
    };
    let decided = match api.decide(&claims, &call).await {
        Ok(decided) => decided,
        Err(error) => {
            tracing::error!(%error, "decision not recorded");
            return HttpResponse::InternalServerError().json(json!({ "error": "server_error" }));
        }
    };
    let body = |extra: serde_json::Value| {
        let mut body = json!({ "decision": decided.outcome.label(), "receipt": decided.receipt });
        if let (Some(target), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            target.extend(extra.clone());
        }
        body
    };
    if let Some(challenge) = outcome_challenge(&api, &decided.outcome, body) {
        return challenge;
    }
    match &decided.outcome {
        Outcome::Deny { reason, .. } => HttpResponse::Forbidden().json(body(json!({ "reason": reason }))),
        // Not allowed yet: 403, so a caller that only checks for success does not go ahead.
        Outcome::PendingApproval { approval_id, approval_uri, binding_message, expires_in, .. } => HttpResponse::Forbidden()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(body(json!({
                "approval": { "id": approval_id, "url": approval_uri, "binding_message": binding_message, "expires_in": expires_in },
            }))),
        Outcome::Approved { approval_id, .. } => {
            HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(body(json!({ "approval": { "id": approval_id } })))
        }
        _ => HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(body(json!({}))),
    }
}

/// The challenge for an outcome the client can act on by getting another token: 403
/// `insufficient_scope` with the scope (RFC 6750 §3.1), or 401 `insufficient_user_authentication` with
/// the `acr_values` and `max_age` to ask for (RFC 9470 §3). `body` adds the outcome's details to the
/// JSON body.
fn outcome_challenge(api: &PermissionApi, outcome: &Outcome, body: impl Fn(serde_json::Value) -> serde_json::Value) -> Option<HttpResponse> {
    match outcome {
        Outcome::InsufficientScope { scope, .. } => Some(challenge(
            api,
            StatusCode::FORBIDDEN,
            &[("error", "insufficient_scope".into()), ("scope", scope.clone())],
            body(json!({ "error": "insufficient_scope", "scope": scope })),
        )),
        Outcome::StepUp { max_age, .. } => Some(challenge(
            api,
            StatusCode::UNAUTHORIZED,
            &[
                ("error", "insufficient_user_authentication".into()),
                ("error_description", "a passkey sign-in is required".into()),
                ("acr_values", STEP_UP_ACR.as_str().into()),
                ("max_age", max_age.to_string()),
            ],
            body(json!({ "error": "insufficient_user_authentication", "acr_values": STEP_UP_ACR, "max_age": max_age })),
        )),
        Outcome::Allow { .. }
        | Outcome::Deny { .. }
        | Outcome::NeedsApproval { .. }
        | Outcome::PendingApproval { .. }
        | Outcome::Approved { .. } => None,
    }
}

/// A `tools/call` inside an MCP JSON-RPC message.
struct ToolCall {
    /// The JSON-RPC id, for an error answered here.
    id: serde_json::Value,
    tool: String,
    digest: String,
    /// Its arguments (a sentence for the person is made of them only if approval is needed).
    arguments: serde_json::Value,
}

/// What the gate needs of an MCP message, read with one parse of the body.
enum Inbound {
    ToolCall(ToolCall),
    /// `initialize`, with what the client declared (carried in the session id it gets).
    Initialize(crate::session::Declared),
    Other,
}

fn inbound(body: &[u8]) -> Inbound {
    #[derive(Deserialize)]
    struct Message {
        #[serde(default)]
        id: serde_json::Value,
        method: String,
        #[serde(default)]
        params: serde_json::Value,
    }
    let Ok(message) = serde_json::from_slice::<Message>(body) else {
        return Inbound::Other;
    };
    match message.method.as_str() {
        "initialize" => Inbound::Initialize(crate::session::declared(&message.params)),
        "tools/call" => {
            let mut params = message.params;
            let Some(tool) = params.get("name").and_then(serde_json::Value::as_str).map(str::to_owned) else {
                return Inbound::Other;
            };
            let arguments = params.get_mut("arguments").map(serde_json::Value::take).unwrap_or_default();
            let digest = crate::approvals::arguments_digest(&arguments);
            Inbound::ToolCall(ToolCall { id: message.id, tool, digest, arguments })
        }
        _ => Inbound::Other,
    }
}

/// How a request's `Origin` stands with the MCP endpoint (MCP streamable HTTP transport, security
/// warning: servers MUST validate `Origin`, or a DNS-rebinding page could drive a local or internal
/// server with whatever token it can get the browser to send).
enum OriginCheck {
    /// No `Origin`: not a browser page (an IDE, an agent, a server-side connector).
    Absent,
    Allowed(cors::RequestOrigin),
    Refused,
}

fn origin_check(api: &PermissionApi, req: &HttpRequest) -> OriginCheck {
    if !req.headers().contains_key(header::ORIGIN) {
        return OriginCheck::Absent;
    }
    match cors::RequestOrigin::of(req) {
        Some(origin) if api.allows_origin(origin.as_str()) => OriginCheck::Allowed(origin),
        _ => OriginCheck::Refused,
    }
}

fn foreign_origin() -> HttpResponse {
    HttpResponse::Forbidden().insert_header((header::CACHE_CONTROL, "no-store")).json(json!({
        "error": "forbidden_origin",
        "error_description": "requests from this page's origin are not accepted here",
    }))
}

/// `OPTIONS` on the metadata: any page may read it (MCP clients send `MCP-Protocol-Version`).
async fn public_preflight(req: HttpRequest) -> HttpResponse {
    cors::preflight(&req, &cors::Allow::Anyone, "GET")
}

/// `OPTIONS` on the MCP endpoint: a preflight from an allowed browser client.
async fn mcp_preflight(api: web::Data<PermissionApi>, req: HttpRequest) -> HttpResponse {
    match origin_check(&api, &req) {
        OriginCheck::Allowed(origin) => cors::preflight(&req, &cors::Allow::Origin(origin), "GET, POST, DELETE"),
        OriginCheck::Absent => HttpResponse::NoContent().finish(),
        OriginCheck::Refused => foreign_origin(),
    }
}

/// The MCP endpoint at the resource's path: the `Origin` is checked first, the bearer token is
/// verified for every request, every `tools/call` is decided (and audited) here, then rmcp answers
/// with the decision in hand. An allowed page may read every answer, challenges included.
async fn mcp(api: web::Data<PermissionApi>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let allow = match origin_check(&api, &req) {
        OriginCheck::Refused => return foreign_origin(),
        OriginCheck::Allowed(origin) => cors::Allow::Origin(origin),
        OriginCheck::Absent => cors::Allow::Nobody,
    };
    let mut response = mcp_call(&api, &req, body).await;
    cors::add_headers(&mut response, &allow);
    response
}

async fn mcp_call(api: &PermissionApi, req: &HttpRequest, body: web::Bytes) -> HttpResponse {
    let claims = match caller(api, req).await {
        Ok(claims) => claims,
        Err(response) => return response,
    };
    let message = inbound(&body);
    let mut governed = None;
    if let Inbound::ToolCall(ToolCall { id, tool, digest, arguments }) = &message {
        // MCP clients do not act on RFC 9470 (the TypeScript SDK refreshes and gives up): a step-up
        // rule's approval fallback is for them.
        let call = Request { tool, action: "call", arguments_digest: Some(digest), reauthorize: Reauthorize::Cannot, summary: Summary::Arguments(arguments) };
        let decided = match api.decide(&claims, &call).await {
            Ok(decided) => decided,
            Err(error) => {
                tracing::error!(%error, "decision not recorded");
                return HttpResponse::InternalServerError().json(json!({ "error": "server_error" }));
            }
        };
        if let Some(challenge) = outcome_challenge(api, &decided.outcome, |extra| extra) {
            return challenge;
        }
        // The session id is verified only when it matters: a call waiting for approval.
        if let Outcome::PendingApproval { approval_id, approval_uri, binding_message, .. } = &decided.outcome
            && declared(api, req).url_elicitation
        {
            return url_elicitation_required(id, approval_id, approval_uri, binding_message, &decided.receipt);
        }
        governed = Some(Governed { caller: claims.clone(), outcome: decided.outcome, receipt: decided.receipt });
    }
    let mut request = http::Request::builder().method(req.method().as_str()).uri(req.uri().to_string());
    for (name, value) in req.headers() {
        // Our session ids are ours to read; rmcp serves statelessly and knows none.
        if name.as_str() != MCP_SESSION_ID {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    let Ok(mut request) = request.body(http_body_util::Full::new(body)) else {
        return HttpResponse::BadRequest().json(json!({ "error": "invalid_request" }));
    };
    request.extensions_mut().insert(Caller(claims));
    if let Some(governed) = governed {
        request.extensions_mut().insert(governed);
    }
    let response = api.mcp.handle(request).await;
    let (parts, body) = response.into_parts();
    let mut out = HttpResponse::build(StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (name, value) in &parts.headers {
        out.append_header((name.as_str(), value.as_bytes()));
    }
    if let Inbound::Initialize(declared) = message
        && parts.status.is_success()
    {
        out.insert_header((MCP_SESSION_ID, api.sessions.issue(declared)));
    }
    use http_body_util::BodyExt;
    out.streaming(body.into_data_stream())
}

const MCP_SESSION_ID: &str = "mcp-session-id";

/// What the client declared at initialize, from its signed session id (nothing when absent or forged).
fn declared(api: &PermissionApi, req: &HttpRequest) -> crate::session::Declared {
    req.headers()
        .get(MCP_SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(|id| api.sessions.read(id))
        .unwrap_or_default()
}

/// MCP 2025-11-25 `URLElicitationRequiredError` (-32042) for a client that declared URL-mode
/// elicitation: the client shows the person the approval page; the elicitation id is the approval's.
fn url_elicitation_required(id: &serde_json::Value, approval_id: &str, url: &str, binding_message: &str, receipt: &str) -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": -32042,
            "message": "This call needs your approval.",
            "data": {
                "elicitations": [{
                    "mode": "url",
                    "elicitationId": approval_id,
                    "url": url,
                    "message": format!("Approve this call with your passkey; the page shows \"{binding_message}\". Then try again."),
                }],
                "io.latchkey/decision-receipt": receipt,
            },
        },
    }))
}

pub fn routes(cfg: &mut web::ServiceConfig, endpoints: &super::Endpoints) {
    cfg.app_data(web::PayloadConfig::new(16 * 1024))
        .route("/.well-known/oauth-protected-resource", web::get().to(resource_metadata))
        .route(&endpoints.metadata_path, web::get().to(resource_metadata))
        .route("/.well-known/jwks.json", web::get().to(jwks))
        .route("/v1/decisions", web::post().to(decide))
        .route("/.well-known/oauth-protected-resource", web::method(Method::OPTIONS).to(public_preflight))
        .route(&endpoints.metadata_path, web::method(Method::OPTIONS).to(public_preflight))
        .route(&endpoints.mcp_path, web::method(Method::OPTIONS).to(mcp_preflight))
        .route(&endpoints.mcp_path, web::route().to(mcp));
    // The resource with a trailing slash is the same endpoint (clients normalise URLs differently).
    if endpoints.mcp_path != "/" {
        let slashed = format!("{}/", endpoints.mcp_path);
        cfg.route(&slashed, web::method(Method::OPTIONS).to(mcp_preflight)).route(&slashed, web::route().to(mcp));
    }
    cfg
        .route("/healthz", web::get().to(|| async { HttpResponse::Ok().body("ok") }));
}

pub async fn serve(api: PermissionApi) -> std::io::Result<()> {
    let listen = api.config.listen;
    let data = web::Data::new(api);
    HttpServer::new(move || {
        let data = data.clone();
        ActixApp::new().app_data(data.clone()).configure(move |cfg| routes(cfg, &data.endpoints))
    })
    .bind(listen)?
    .run()
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_parse_tells_a_tool_call_an_initialize_and_anything_else_apart() {
        let call = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"files.delete","arguments":{"name":"plan.md"}}}"#;
        match inbound(call) {
            Inbound::ToolCall(c) => {
                assert_eq!((c.id, c.tool.as_str()), (json!(7), "files.delete"));
                assert_eq!(c.digest, crate::approvals::arguments_digest(&json!({ "name": "plan.md" })));
                assert_eq!(Summary::Arguments(&c.arguments).text(&c.tool, "call"), r#"Call files.delete with {"name":"plan.md"}"#);
            }
            _ => panic!("a tool call"),
        }
        let init = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{"elicitation":{"url":{}}}}}"#;
        assert!(matches!(inbound(init), Inbound::Initialize(d) if d.url_elicitation));
        for other in [&br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#[..], b"not json", br#"{"method":"tools/call","params":{}}"#] {
            assert!(matches!(inbound(other), Inbound::Other));
        }
    }
}
