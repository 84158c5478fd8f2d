//! The permission API's MCP endpoint (streamable HTTP, served statelessly with JSON responses by rmcp):
//! a few demo tools over an in-memory set of files, each call governed by the same rules as
//! `POST /v1/decisions`. The HTTP layer verifies the bearer token and decides every `tools/call` before
//! rmcp sees it, because only HTTP can carry the challenges an MCP client acts on: 401
//! `insufficient_user_authentication` (RFC 9470) for step-up and 403 `insufficient_scope` (MCP
//! authorization, scope step-up). A denied call reaches the tool layer only to be answered as a tool
//! error, so the model reads why.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    handler::server::{
        router::tool::ToolRouter,
        tool::{Extension, ToolCallContext},
        wrapper::Parameters,
    },
    model::{CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, MetaObject, ServerCapabilities, ServerConfig},
    service::RequestContext,
    tool, tool_handler, tool_router,
};

use latchkey_proto::AccessClaims;

use crate::rules::Outcome;

/// What the HTTP layer decided for one `tools/call`, handed to the tool layer with the request.
#[derive(Clone)]
pub struct Governed {
    pub caller: Arc<AccessClaims>,
    pub outcome: Outcome,
    pub receipt: String,
}

/// The caller of any MCP request (set for every request, not only tool calls).
#[derive(Clone)]
pub struct Caller(pub Arc<AccessClaims>);

/// `_meta` key under which an allowed call's result carries its decision receipt.
pub const RECEIPT_META_KEY: &str = "io.latchkey/decision-receipt";

pub type Files = Arc<Mutex<BTreeMap<String, String>>>;

/// The files the demo starts with.
pub fn demo_files() -> Files {
    Arc::new(Mutex::new(BTreeMap::from([
        ("readme.txt".to_owned(), "Latchkey demo files. Deleting one needs a fresh passkey.".to_owned()),
        ("plan.md".to_owned(), "# Plan\n1. Connect an MCP client.\n2. Read a file.\n3. Delete one after a step-up.".to_owned()),
    ])))
}

#[derive(Clone)]
pub struct DemoTools {
    files: Files,
    tool_router: ToolRouter<Self>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct FileName {
    /// The file's name, as `files.list` shows it.
    name: String,
}

fn text(value: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(value)])
}

fn tool_error(value: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(value)])
}

#[tool_router]
impl DemoTools {
    pub fn new(files: Files) -> Self {
        Self { files, tool_router: Self::tool_router() }
    }

    fn files(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[tool(name = "whoami", description = "Who is calling: the token's subject, client, and whether it is a person or an agent")]
    async fn whoami(&self, Extension(parts): Extension<http::request::Parts>) -> CallToolResult {
        match parts.extensions.get::<Caller>() {
            Some(Caller(claims)) => text(
                serde_json::json!({
                    "sub": claims.sub,
                    "client_id": claims.client_id,
                    "caller": if claims.is_agent() { "agent" } else { "person" },
                    "organization": claims.org,
                    "roles": claims.roles,
                    "acr": claims.acr,
                    "scope": claims.scope,
                })
                .to_string(),
            ),
            None => tool_error("no caller"),
        }
    }

    #[tool(name = "files.list", description = "List the demo files")]
    async fn list(&self) -> CallToolResult {
        text(self.files().keys().cloned().collect::<Vec<_>>().join("\n"))
    }

    #[tool(name = "files.read", description = "Read one demo file")]
    async fn read(&self, Parameters(FileName { name }): Parameters<FileName>) -> CallToolResult {
        match self.files().get(&name) {
            Some(content) => text(content.clone()),
            None => tool_error(format!("no file named {name}")),
        }
    }

    #[tool(name = "files.delete", description = "Delete one demo file (needs a passkey sign-in less than 5 minutes old)")]
    async fn delete(&self, Parameters(FileName { name }): Parameters<FileName>) -> CallToolResult {
        match self.files().remove(&name) {
            Some(_) => text(format!("deleted {name}")),
            None => tool_error(format!("no file named {name}")),
        }
    }
}

#[tool_handler]
impl ServerHandler for DemoTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("Demo tools governed by the Latchkey permission API.")
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let governed = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Governed>())
            .cloned();
        // The HTTP layer decides every tools/call; a call that arrives undecided is refused.
        let Some(governed) = governed else {
            return Ok(tool_error("this call was not authorized").into());
        };
        match governed.outcome {
            Outcome::Allow { .. } | Outcome::Approved { .. } => {
                let response = self.tool_router.call(ToolCallContext::new(self, request, context)).await?;
                Ok(with_receipt(response, governed.receipt))
            }
            Outcome::Deny { reason, .. } => {
                let mut refused = tool_error(format!("Permission denied: {reason}."));
                refused.meta = Some(receipt_meta(governed.receipt));
                Ok(refused.into())
            }
            // The model relays this to the person: where to approve, what they will see there.
            Outcome::PendingApproval { approval_uri, binding_message, expires_in, .. } => {
                let minutes = (expires_in + 59) / 60;
                let mut waiting = tool_error(format!(
                    "This call needs the user's approval before it runs. Ask them to open {approval_uri} , check that the page shows \"{binding_message}\", and approve it with their passkey (within {minutes} minutes); then call the tool again with the same arguments."
                ));
                waiting.meta = Some(receipt_meta(governed.receipt));
                Ok(waiting.into())
            }
            // Answered with an HTTP challenge before rmcp was reached (NeedsApproval never leaves
            // `PermissionApi::decide`).
            Outcome::StepUp { .. } | Outcome::InsufficientScope { .. } | Outcome::NeedsApproval { .. } => {
                Ok(tool_error("authorization required").into())
            }
        }
    }
}

fn receipt_meta(receipt: String) -> MetaObject {
    let mut meta = MetaObject::default();
    meta.0.insert(RECEIPT_META_KEY.to_owned(), receipt.into());
    meta
}

fn with_receipt(response: CallToolResponse, receipt: String) -> CallToolResponse {
    match response {
        CallToolResponse::Complete(mut result) => {
            result.meta = Some(receipt_meta(receipt));
            CallToolResponse::Complete(result)
        }
        other => other,
    }
}

pub type McpService = rmcp::transport::streamable_http_server::StreamableHttpService<
    DemoTools,
    rmcp::transport::streamable_http_server::session::never::NeverSessionManager,
>;

/// rmcp's streamable HTTP service for the demo tools: stateless (any node can answer any request),
/// JSON responses, and only the resource's own host accepted (DNS-rebinding defence).
/// The MCP service for `resource`, accepting browser requests from `origins` only (rmcp's own `Host`
/// and `Origin` validation; the HTTP layer checks `Origin` the same way first, so a foreign page is
/// refused before its token is even read).
pub fn service(resource: &url::Url, origins: Vec<String>) -> McpService {
    use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
    let files = demo_files();
    let mut config = StreamableHttpServerConfig::default();
    config.legacy_session_mode = false;
    config.json_response = true;
    if let Some(host) = resource.host_str() {
        let mut hosts = vec![host.to_owned()];
        if let Some(port) = resource.port() {
            hosts.push(format!("{host}:{port}"));
        }
        config = config.with_allowed_hosts(hosts);
    }
    let config = config.with_allowed_origins(origins).enforce_origin_validation();
    McpService::new(move || Ok(DemoTools::new(files.clone())), Default::default(), config)
}
