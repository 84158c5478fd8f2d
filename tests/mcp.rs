//! An MCP client built on the official TypeScript SDK (tests/mcp/client.mjs, `npm ci --prefix
//! tests/mcp`) against the permission API's MCP endpoint, with Latchkey as the authorization server:
//! from a bare 401 to discovery, dynamic registration, PKCE with `resource`, the hosted sign-in pages,
//! tool calls, a refresh after the access token expires, and a passkey step-up for the sensitive tool.
//! Twice: once registering dynamically, once introducing itself with a client metadata document.

mod common;

use std::{path::Path, process::Stdio, time::Duration};

use common::*;
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::Command,
};

const ACCESS_TOKEN_TTL: &str = "3";

const RULES: &str = r#"
leeway_seconds = 0

[[rules]]
tool = "files.delete"
scopes = ["files:write"]
effect = "step_up"
max_age = 300

[[rules]]
tool = "*"
scopes = ["files:read"]
effect = "allow"
"#;

/// What the SDK client did: its results, every HTTP exchange it made, the authorization URLs it opened.
struct Journey {
    results: Value,
    exchanges: Vec<Value>,
    authorizations: Vec<String>,
}

/// Starts Latchkey (with `server_env`) and the permission API, runs tests/mcp/client.mjs (with
/// `client_env`) against the MCP endpoint, and plays the user whenever the SDK sends one to sign in.
async fn run_sdk_client(server_env: &[(&str, &str)], client_env: &[(&str, &str)]) -> (Journey, String) {
    let client_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp");
    assert!(
        client_dir.join("node_modules/@modelcontextprotocol/sdk").exists(),
        "the MCP TypeScript SDK is not installed: run `npm ci --prefix tests/mcp` (scripts/test does)"
    );
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let mut env = vec![("LATCHKEY_ACCESS_TOKEN_TTL", ACCESS_TOKEN_TTL)];
    env.extend_from_slice(server_env);
    let server = Server::start(&deployment, &smtp, &env).await;
    let permissions = PermissionApi::start(&[server.issuer("default")], RULES).await;
    server.cli(&["resource", "create", "--uri", &permissions.resource, "--name", "Demo files", "--scope", "files:read", "--scope", "files:write"]);

    let mut node = Command::new("node")
        .arg(client_dir.join("client.mjs"))
        .env("MCP_URL", &permissions.resource)
        .env("ACCESS_TOKEN_TTL_SECONDS", ACCESS_TOKEN_TTL)
        .envs(client_env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("run node");
    let mut stdin = node.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(node.stdout.take().expect("stdout")).lines();
    let browser = browser();
    let email = "mcp-user@example.com";
    let mut authorizations = Vec::new();
    let finished = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), stdout.next_line())
            .await
            .expect("the MCP client went quiet")
            .expect("read")
            .expect("the MCP client exited without a result");
        let message: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON from the client: {line}"));
        match message["event"].as_str() {
            // The SDK sends the user to Latchkey: be the user, hand back where the browser lands.
            Some("authorize") => {
                let url = message["url"].as_str().expect("url").to_owned();
                let callback = authorize_through_pages(&server, &smtp, &browser, &url, email).await;
                authorizations.push(url);
                stdin.write_all(format!("{callback}\n").as_bytes()).await.expect("answer");
            }
            Some("done") => break message,
            _ => panic!("the MCP client failed: {message:#}"),
        }
    };
    assert!(node.wait().await.expect("node exit").success());
    let journey = Journey {
        results: finished["results"].clone(),
        exchanges: finished["exchanges"].as_array().expect("exchanges").clone(),
        authorizations,
    };
    assert_tools_refresh_and_step_up(&journey, &permissions).await;
    (journey, permissions.resource.clone())
}

/// What every connection must show, however the client introduced itself: PKCE with `resource`, tool
/// calls with receipts, a refresh after expiry, a satisfied step-up challenge, and the audit.
async fn assert_tools_refresh_and_step_up(journey: &Journey, permissions: &PermissionApi) {
    let Journey { results, exchanges, authorizations } = journey;
    let resource = permissions.resource.as_str();
    let client_id = results["client_id"].as_str().expect("client_id");

    // Discovery from a bare 401: the challenge, RFC 9728 metadata, then RFC 8414 metadata.
    assert_eq!((exchanges[0]["url"].as_str(), exchanges[0]["status"].as_u64()), (Some(resource), Some(401)));
    assert!(exchanges[0]["challenge"].as_str().expect("challenge").contains("resource_metadata="));
    let metadata = first_success(exchanges, "/.well-known/oauth-protected-resource").expect("resource metadata fetched");
    let as_metadata = first_success(exchanges, "/.well-known/oauth-authorization-server").expect("authorization server metadata fetched");
    assert!(metadata < as_metadata, "{exchanges:#?}");

    // Two authorizations: the first sign-in, and the step-up, which asked for what the challenge named.
    assert_eq!(authorizations.len(), 2, "{authorizations:#?}");
    for url in authorizations {
        assert_eq!(query_param(url, "resource").as_deref(), Some(resource));
        assert_eq!(query_param(url, "code_challenge_method").as_deref(), Some("S256"));
        assert_eq!(query_param(url, "client_id").as_deref(), Some(client_id));
    }
    assert_eq!((query_param(&authorizations[1], "acr_values").as_deref(), query_param(&authorizations[1], "max_age").as_deref()), (Some("phr"), Some("300")));

    // Tools listed and called as the signed-in person; the allowed call carries a decision receipt.
    assert_eq!(results["tools"], serde_json::json!(["files.delete", "files.list", "files.read", "whoami"]));
    assert_eq!((results["whoami"]["caller"].as_str(), results["whoami"]["client_id"].as_str()), (Some("person"), Some(client_id)));
    assert_eq!(results["read"]["isError"], false);
    assert!(results["read"]["text"].as_str().expect("text").starts_with("Latchkey demo files"));
    let receipt = results["read"]["receipt"].as_str().expect("receipt");
    assert_eq!((jwt_claims(receipt)["tool"].as_str(), jwt_claims(receipt)["decision"].as_str()), (Some("files.read"), Some("allow")));

    // The access token expired: the next call was refused, the SDK refreshed with the same resource.
    let refreshes: Vec<&Value> = exchanges.iter().filter(|e| e["grant_type"] == "refresh_token").collect();
    assert!(!refreshes.is_empty(), "no refresh: {exchanges:#?}");
    assert!(refreshes.iter().all(|e| e["status"] == 200 && e["resource"] == resource), "{refreshes:#?}");
    assert!(
        exchanges.iter().any(|e| e["status"] == 401 && e["challenge"].as_str().is_some_and(|c| c.contains("error=\"invalid_token\""))),
        "the expired token was refused"
    );
    assert_ne!(results["token_before_expiry"], results["token_after_refresh"]);
    assert_eq!(results["list_after_expiry"], "plan.md\nreadme.txt");
    let refreshed = jwt_claims(results["token_after_refresh"].as_str().expect("token"));
    assert_eq!((refreshed["aud"].as_str(), refreshed["client_id"].as_str()), (Some(resource), Some(client_id)));

    // Step-up: a 401 insufficient_user_authentication, a passkey sign-in (acr phr), then the delete.
    assert!(exchanges.iter().any(|e| e["challenge"].as_str().is_some_and(|c| c.contains("insufficient_user_authentication"))));
    assert_eq!(jwt_claims(results["stepped_up_token"].as_str().expect("token"))["acr"], "phr");
    assert_eq!((results["delete"]["text"].as_str(), results["delete"]["isError"].as_bool()), (Some("deleted plan.md"), Some(false)));
    assert_eq!(results["list_after_delete"], "readme.txt");

    // The permission API audited every tool call, including the challenged one.
    let decisions: Vec<String> = permissions.audit_rows().await.into_iter().map(|(_, tool, _, decision)| format!("{tool}:{decision}")).collect();
    assert!(decisions.contains(&"files.delete:step_up".to_owned()) && decisions.contains(&"files.delete:allow".to_owned()), "{decisions:?}");
    assert!(decisions.iter().filter(|d| d.as_str() == "files.list:allow").count() >= 2, "{decisions:?}");
}

fn first_success(exchanges: &[Value], path: &str) -> Option<usize> {
    exchanges.iter().position(|e| e["url"].as_str().is_some_and(|u| u.contains(path)) && e["status"] == 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_typescript_sdk_connects_with_nothing_but_the_url() {
    let (journey, _) = run_sdk_client(&[], &[]).await;
    let exchanges = &journey.exchanges;
    // No client id of its own: it registered dynamically, after discovering where to.
    let as_metadata = first_success(exchanges, "/.well-known/oauth-authorization-server").expect("metadata");
    let registration = exchanges.iter().position(|e| e["url"].as_str().is_some_and(|u| u.ends_with("/register")) && e["status"] == 201);
    assert!(as_metadata < registration.expect("registered dynamically"), "{exchanges:#?}");
    let client_id = journey.results["client_id"].as_str().expect("client_id");
    assert!(client_id.starts_with("lk_"), "{client_id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_typescript_sdk_introduces_itself_with_a_client_metadata_document() {
    // The client's metadata document, served over https by the test (its CA trusted by the server).
    let host = DocumentHost::start().await;
    let document_url = host.serve_client("/mcp-client.json", "SDK client (metadata document)", &["http://127.0.0.1:9/callback"]);
    let env = host.server_env();
    let (journey, _) = run_sdk_client(&[(env[0].0, &env[0].1), (env[1].0, &env[1].1)], &[("CLIENT_METADATA_URL", &document_url)]).await;
    // The URL is the client id; nothing was registered; Latchkey fetched the document (once: cached).
    assert_eq!(journey.results["client_id"], document_url.as_str());
    assert!(!journey.exchanges.iter().any(|e| e["url"].as_str().is_some_and(|u| u.ends_with("/register"))), "{:#?}", journey.exchanges);
    assert_eq!(host.fetches("/mcp-client.json"), 1);
}
