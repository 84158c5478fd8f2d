//! Dynamic client registration (RFC 7591) and management (RFC 7592) over HTTP: an MCP-style public
//! client registers itself and signs a user in; bad metadata is refused and changes nothing; unused
//! registrations expire; the tenant's registration policy (open, initial access token, closed) holds.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const LOOPBACK: &str = "http://127.0.0.1:33418/callback";

async fn register(server: &Server, bearer: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut request = api().post(server.url("register")).json(&body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("register");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// RFC 7592 read / update / delete with a registration access token.
async fn manage(method: reqwest::Method, uri: &str, token: &str, body: Option<Value>) -> (StatusCode, Option<String>, Value) {
    let mut request = api().request(method, uri).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("manage");
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, challenge, response.json().await.unwrap_or(Value::Null))
}

async fn public_token_request(server: &Server, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = api().post(server.url("token")).form(form).send().await.expect("token");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn client_count(server: &Server) -> usize {
    server.cli(&["client", "list"]).lines().filter(|l| !l.trim().is_empty()).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_registers_itself_signs_a_user_in_and_manages_its_registration() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    server.cli(&["resource", "create", "--uri", "https://mcp.example.com/mcp", "--scope", "tools:read"]);
    let discovery: Value = api()
        .get(format!("{}/.well-known/oauth-authorization-server", server.issuer("default")))
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("json");
    assert_eq!(discovery["registration_endpoint"], json!(server.url("register")));

    let (status, registered) = register(&server, None, json!({
        "client_name": "Claude Desktop",
        "redirect_uris": [LOOPBACK],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "openid offline_access",
        "software_id": "claude-desktop",
        "unknown_field": "is ignored",
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let client_id = registered["client_id"].as_str().expect("client_id").to_owned();
    let token = registered["registration_access_token"].as_str().expect("registration token").to_owned();
    let manage_uri = registered["registration_client_uri"].as_str().expect("registration_client_uri").to_owned();
    assert!(token.starts_with("lk_rat_"));
    assert_eq!(registered["redirect_uris"], json!([LOOPBACK]));
    assert_eq!(registered["token_endpoint_auth_method"], "none");
    assert_eq!(registered["software_id"], "claude-desktop");
    assert!(registered["client_id_issued_at"].as_i64().is_some());
    assert!(registered.get("client_secret").is_none(), "a public client gets no secret");

    // A user signs in through the hosted pages (consent included: never first-party), PKCE, any
    // loopback port (RFC 8252 §7.3).
    let pkce = pkce();
    let redirect = "http://127.0.0.1:50123/callback";
    let url = format!(
        "{}?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid%20offline_access%20tools:read&resource=https%3A%2F%2Fmcp.example.com%2Fmcp&code_challenge={}&code_challenge_method=S256",
        server.url("authorize"),
        urlencode(redirect),
        pkce.challenge
    );
    let browser = browser();
    let (at, consent) = walk_pages(&server, &smtp, &browser, &url, "mcp-user@example.com", |page| page.contains("name=\"decision\"")).await;
    let consent = consent.expect("the consent page");
    assert!(consent.contains("Claude Desktop") && consent.contains("127.0.0.1"), "name and redirect host shown");
    assert!(consent.contains("This application registered itself"), "nobody vetted it, and the page says so");
    assert!(consent.contains("Access is for <strong>https://mcp.example.com/mcp</strong> only") && consent.contains("tools:read"));
    let callback = authorize_through_pages(&server, &smtp, &browser, &at, "mcp-user@example.com").await;
    let code = query_param(&callback, "code").expect("code");
    let (status, tokens) = public_token_request(&server, &[
        ("grant_type", "authorization_code"),
        ("client_id", &client_id),
        ("code", &code),
        ("redirect_uri", redirect),
        ("code_verifier", &pkce.verifier),
    ])
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().expect("refresh token").to_owned();

    // Read: the registration as stored, never the token again.
    let (status, _, read) = manage(reqwest::Method::GET, &manage_uri, &token, None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["client_id"], json!(client_id));
    assert!(read.get("registration_access_token").is_none());
    // A wrong token, or another client's id with this token: the same 401, no probing.
    let (status, challenge, body) = manage(reqwest::Method::GET, &manage_uri, "lk_rat_wrong", None).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")));
    assert!(challenge.expect("challenge").contains("invalid_token"));
    let other = manage_uri.replace(&client_id, "lk_not_a_client");
    assert_eq!(manage(reqwest::Method::GET, &other, &token, None).await.0, StatusCode::UNAUTHORIZED);

    // Update replaces the metadata; the body must name the client; bad redirect URIs are refused.
    let (status, _, updated) = manage(reqwest::Method::PUT, &manage_uri, &token, Some(json!({
        "client_id": client_id,
        "client_name": "Claude",
        "redirect_uris": [LOOPBACK, "https://claude.ai/api/mcp/auth_callback"],
        "token_endpoint_auth_method": "none",
    })))
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["client_name"], "Claude");
    assert_eq!(updated["redirect_uris"].as_array().map(Vec::len), Some(2));
    let (status, _, body) = manage(reqwest::Method::PUT, &manage_uri, &token, Some(json!({ "redirect_uris": [LOOPBACK] }))).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_client_metadata")));
    let (status, _, body) = manage(reqwest::Method::PUT, &manage_uri, &token, Some(json!({
        "client_id": client_id, "redirect_uris": ["http://evil.example/cb"], "token_endpoint_auth_method": "none",
    })))
    .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_redirect_uri")));

    // Delete: the client and its grants are gone.
    let (status, _, _) = manage(reqwest::Method::DELETE, &manage_uri, &token, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(manage(reqwest::Method::GET, &manage_uri, &token, None).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = public_token_request(&server, &[
        ("grant_type", "refresh_token"),
        ("client_id", &client_id),
        ("refresh_token", &refresh_token),
    ])
    .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    let actions: Vec<String> = server.audit_actions().iter().filter_map(|e| e["action"].as_str().map(str::to_owned)).collect();
    for expected in ["client.register", "client.update", "client.delete"] {
        assert!(actions.iter().any(|a| a == expected), "{expected} audited");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_metadata_is_refused_and_registers_nothing() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    // More attempts from one address than the default per-IP limit (30 an hour, bursts of 10) allows.
    let server = Server::start(&deployment, &smtp, &[("LATCHKEY_RATE_REGISTRATION_PER_IP_PER_HOUR", "300"), ("LATCHKEY_CACHE_TTL", "0")]).await;
    let before = client_count(&server);
    let cases = [
        (json!({ "redirect_uris": ["http://app.example/cb"] }), "invalid_redirect_uri"),
        (json!({ "redirect_uris": ["https://*.example/cb"] }), "invalid_redirect_uri"),
        (json!({ "redirect_uris": ["https://app.example/cb#x"] }), "invalid_redirect_uri"),
        (json!({ "redirect_uris": ["javascript:alert(1)"] }), "invalid_redirect_uri"),
        (json!({ "redirect_uris": ["vbscript:msgbox(1)"] }), "invalid_redirect_uri"),
        (json!({ "redirect_uris": [] }), "invalid_redirect_uri"),
        (json!({ "redirect_uris": [LOOPBACK], "token_endpoint_auth_method": "private_key_jwt" }), "invalid_client_metadata"),
        (json!({ "redirect_uris": [LOOPBACK], "response_types": ["token"] }), "invalid_client_metadata"),
        (json!({ "redirect_uris": [LOOPBACK], "grant_types": ["password"] }), "invalid_client_metadata"),
        (json!({ "redirect_uris": [LOOPBACK], "token_endpoint_auth_method": "none", "grant_types": ["client_credentials"] }), "invalid_client_metadata"),
        // Open registration is not a way to machine tokens (unless the tenant says so, below).
        (json!({ "token_endpoint_auth_method": "client_secret_basic", "grant_types": ["client_credentials"] }), "invalid_client_metadata"),
        (json!({ "redirect_uris": [LOOPBACK], "scope": "ok \u{1}bad" }), "invalid_client_metadata"),
        (json!({ "redirect_uris": "not a list" }), "invalid_client_metadata"),
        (json!(["not an object"]), "invalid_client_metadata"),
    ];
    for (body, expected) in cases {
        let (status, answer) = register(&server, None, body.clone()).await;
        assert_eq!((status, answer["error"].as_str()), (StatusCode::BAD_REQUEST, Some(expected)), "{body} → {answer}");
        assert!(answer["error_description"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let not_json = api().post(server.url("register")).form(&[("redirect_uris", LOOPBACK)]).send().await.expect("POST");
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    assert_eq!(client_count(&server), before, "nothing was registered");

    // Where the tenant lets self-registered clients use client credentials, a confidential
    // registration gets a secret once, usable at the token endpoint.
    server.cli(&["tenant", "set", "default", "--registration-client-credentials", "true"]);
    let (status, registered) = register(&server, None, json!({
        "client_name": "Nightly job",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "reports:read",
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let secret = registered["client_secret"].as_str().expect("secret shown once");
    assert_eq!(registered["client_secret_expires_at"], 0);
    let client_id = registered["client_id"].as_str().expect("client_id");
    let (status, tokens) = token_request(&server, client_id, secret, &[("grant_type", "client_credentials"), ("scope", "reports:read")]).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unused_registrations_expire_and_the_tenant_policy_holds() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(
        &deployment,
        &smtp,
        &[("LATCHKEY_UNUSED_REGISTRATION_TTL", "1"), ("LATCHKEY_CACHE_TTL", "0"), ("LATCHKEY_SWEEP_INTERVAL", "1")],
    )
    .await;
    let machine = json!({ "grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_post" });
    server.cli(&["tenant", "set", "default", "--registration-client-credentials", "true"]);

    let (_, abandoned) = register(&server, None, json!({ "redirect_uris": [LOOPBACK], "token_endpoint_auth_method": "none" })).await;
    // Its redirect URI's origin may call the token endpoint from a browser while it exists.
    let preflight = || async {
        let response = api()
            .request(reqwest::Method::OPTIONS, server.url("token"))
            .header("Origin", url::Url::parse(LOOPBACK).expect("url").origin().ascii_serialization())
            .header("Access-Control-Request-Method", "POST")
            .send()
            .await
            .expect("preflight");
        response.headers().contains_key("access-control-allow-origin")
    };
    assert!(preflight().await, "a registered origin is answered");
    let (_, used) = register(&server, None, machine.clone()).await;
    let (status, tokens) = public_token_request(&server, &[
        ("grant_type", "client_credentials"),
        ("client_id", used["client_id"].as_str().expect("id")),
        ("client_secret", used["client_secret"].as_str().expect("secret")),
    ])
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    // The sweeper (every second here) deletes the abandoned one once it is older than the TTL; the
    // used one stays.
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let read = |info: &Value| {
        let uri = info["registration_client_uri"].as_str().expect("uri").to_owned();
        let token = info["registration_access_token"].as_str().expect("token").to_owned();
        async move { manage(reqwest::Method::GET, &uri, &token, None).await.0 }
    };
    assert_eq!(read(&abandoned).await, StatusCode::UNAUTHORIZED, "never used: deleted");
    assert!(!preflight().await, "and its origin with it");
    assert_eq!(read(&used).await, StatusCode::OK, "used: kept");

    // Policy `token`: only with an initial access token issued by the operator.
    server.cli(&["tenant", "set", "default", "--registration", "token"]);
    let (status, body) = register(&server, None, machine.clone()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")));
    assert_eq!(register(&server, Some("lk_iat_made_up"), machine.clone()).await.0, StatusCode::UNAUTHORIZED);
    let initial = server.cli(&["registration-token", "create", "--days", "1"]).trim().to_owned();
    assert!(initial.starts_with("lk_iat_"));
    assert_eq!(register(&server, Some(&initial), machine.clone()).await.0, StatusCode::CREATED);

    // Policy `closed`: refused, and discovery no longer offers the endpoint.
    server.cli(&["tenant", "set", "default", "--registration", "closed"]);
    let (status, body) = register(&server, Some(&initial), machine).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("access_denied")));
    let discovery: Value = api()
        .get(format!("{}/.well-known/openid-configuration", server.issuer("default")))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert!(discovery.get("registration_endpoint").is_none());
}
