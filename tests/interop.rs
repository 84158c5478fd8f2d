//! Real clients as they are: the scopes libraries send by default, the standard profile claims (in
//! UserInfo, as a signed UserInfo JWT, in the ID token through `claims`), registrations shaped exactly
//! like Cursor's, VS Code's, MCP Inspector's and Claude Code's (a metadata document with a port-less
//! localhost redirect), the MCP endpoint's `Origin` check and CORS, and a token request that names a
//! resource and no scope, then calls a tool. docs/clients.md describes each client.

mod common;

use common::*;
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
    core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const EMAIL: &str = "ada@example.com";

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http")
}

async fn register(server: &Server, metadata: Value, origin: Option<&str>) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = api().post(server.url("register")).json(&metadata);
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    let response = request.send().await.expect("register");
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.json().await.unwrap_or(Value::Null))
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `openid profile email` plus a scope nobody offers, through the `openidconnect` crate: the unknown
/// scope is dropped and the token response says what was granted; the profile an operator set is in
/// UserInfo, the claims asked for by name are in the ID token, and a client that registered for
/// signed UserInfo gets a JWT that verifies against the JWKS (RS256 through the crate's verifier,
/// ES256 with jsonwebtoken).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_default_scopes_are_narrowed_and_profile_claims_are_served() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    server.cli(&[
        "user", "profile", "--email", EMAIL, "--name", "Ada Lovelace", "--given-name", "Ada", "--family-name", "Lovelace", "--locale", "en-GB",
        "--zoneinfo", "Europe/London", "--picture", "https://images.example/ada.png",
    ]);
    let (client_id, secret) = server.create_client(&["--name", "Notes", "--confidential", "--redirect-uri", REDIRECT, "--userinfo-alg", "RS256"]);

    let http = http();
    let issuer = server.issuer("default");
    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(issuer.clone()).expect("issuer"), &http).await.expect("discovery");
    let raw: Value = api().get(format!("{issuer}/.well-known/openid-configuration")).send().await.expect("discovery").json().await.expect("json");
    assert_eq!(raw["scopes_supported"], json!(["openid", "profile", "email", "offline_access"]));
    assert_eq!(raw["userinfo_signing_alg_values_supported"], json!(["RS256", "ES256"]));
    for claim in ["name", "given_name", "family_name", "preferred_username", "locale", "zoneinfo", "picture", "updated_at"] {
        assert!(raw["claims_supported"].as_array().expect("claims").contains(&json!(claim)), "{claim}");
    }
    let rp = CoreClient::from_provider_metadata(metadata, ClientId::new(client_id.clone()), secret.map(ClientSecret::new))
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).expect("redirect"));

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, _, nonce) = rp
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("urn:example:calendar".into()))
        // OIDC Core §5.5: `name` (essential) and `picture` in the ID token; `nickname` is not served.
        .add_extra_param("claims", r#"{"id_token":{"name":{"essential":true},"picture":null,"nickname":null}}"#)
        .set_pkce_challenge(challenge)
        .url();
    let browser = browser();
    let callback = authorize_through_pages(&server, &smtp, &browser, authorize_url.as_str(), EMAIL).await;
    let code = query_param(&callback, "code").expect("code, not invalid_scope");
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let granted: Vec<String> = tokens.scopes().expect("scope in the token response").iter().map(|s| s.to_string()).collect();
    assert_eq!(granted, ["openid", "profile", "email"], "the unknown scope is dropped, RFC 6749 §3.3");

    let id_token = tokens.id_token().expect("id token").claims(&rp.id_token_verifier(), &nonce).expect("ID token verifies");
    assert_eq!(id_token.name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("Ada Lovelace"), "the essential claim");
    assert_eq!(id_token.picture().and_then(|p| p.get(None)).map(|p| p.as_str()), Some("https://images.example/ada.png"));
    assert!(id_token.given_name().is_none(), "only what the claims parameter asked for");
    let raw_id = jwt_claims(&tokens.id_token().expect("id token").to_string());
    assert!(raw_id.get("nickname").is_none(), "a claim not served is not invented: {raw_id}");

    // Signed UserInfo (OIDC Core §5.3.2), verified by the crate against the JWKS, iss and aud included.
    let info = rp
        .user_info(tokens.access_token().clone(), None)
        .expect("userinfo endpoint")
        .require_signed_response(true)
        .request_async::<openidconnect::EmptyAdditionalClaims, _, openidconnect::core::CoreGenderClaim>(&http)
        .await
        .expect("signed userinfo verifies");
    assert_eq!(info.given_name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("Ada"));
    assert_eq!(info.family_name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("Lovelace"));
    assert_eq!(info.locale().map(|l| l.as_str()), Some("en-GB"));
    assert_eq!(info.zoneinfo().map(|z| z.as_str()), Some("Europe/London"));
    assert_eq!(info.email().map(|e| e.as_str()), Some(EMAIL));
    assert!(info.updated_at().is_some());

    // A self-registered client asking for ES256 UserInfo, and plain JSON for one that asked nothing.
    let (status, _, registered) = register(
        &server,
        json!({ "client_name": "Signed", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "userinfo_signed_response_alg": "ES256" }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    assert_eq!(registered["userinfo_signed_response_alg"], "ES256");
    let signed_client = registered["client_id"].as_str().expect("client id").to_owned();
    let pkce = pkce();
    let url = format!(
        "{issuer}/authorize?response_type=code&client_id={signed_client}&redirect_uri={}&scope=openid%20profile&code_challenge={}&code_challenge_method=S256",
        urlencode(REDIRECT),
        pkce.challenge
    );
    let callback = authorize_through_pages(&server, &smtp, &browser, &url, EMAIL).await;
    let code = query_param(&callback, "code").expect("code");
    let form = [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("client_id", &signed_client), ("code_verifier", &pkce.verifier)];
    let tokens: Value = api().post(server.url("token")).form(&form).send().await.expect("token").json().await.expect("json");
    let access = tokens["access_token"].as_str().expect("access token");
    let response = api().get(server.url("userinfo")).bearer_auth(access).send().await.expect("userinfo");
    assert_eq!(header(response.headers(), "content-type"), Some("application/jwt"));
    let jwt = response.text().await.expect("body");
    let jwks: jsonwebtoken::jwk::JwkSet = api().get(format!("{issuer}/jwks")).send().await.expect("jwks").json().await.expect("json");
    let head = jsonwebtoken::decode_header(&jwt).expect("header");
    assert_eq!(head.alg, jsonwebtoken::Algorithm::ES256);
    let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(head.kid.as_deref().expect("kid")).expect("published key")).expect("key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_required_spec_claims(&["iss", "aud", "sub"]);
    validation.set_issuer(&[&issuer]);
    validation.set_audience(&[&signed_client]);
    let claims = jsonwebtoken::decode::<Value>(&jwt, &key, &validation).expect("signed userinfo verifies").claims;
    assert_eq!((claims["name"].as_str(), claims["email"].as_str()), (Some("Ada Lovelace"), None), "profile without email: {claims}");

    // An ID token that passes for an ID token was never a UserInfo response: without `exp`, the
    // signed UserInfo is refused as a logout hint.
    let logout = browser.get(format!("{}?id_token_hint={jwt}&post_logout_redirect_uri={}", server.url("logout"), urlencode(REDIRECT))).send().await.expect("logout");
    assert!(header(logout.headers(), "location").is_none_or(|l| !l.starts_with(REDIRECT)), "not redirected on a UserInfo JWT");
}

/// The account page lets the person set their name; UserInfo says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_edits_their_name_on_the_account_page() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    let browser = browser();
    let (_, page) = walk_pages(&server, &smtp, &browser, &server.url("account"), "grace@example.com", |page| page.contains("id=\"name-form\"")).await;
    let page = page.expect("account page");
    let csrf = hidden_input(&page, "csrf").expect("csrf");
    let save = |given: &'static str, family: &'static str, name: &'static str| {
        let form = vec![("csrf", csrf.clone()), ("given_name", given.into()), ("family_name", family.into()), ("name", name.into())];
        let (browser, url) = (browser.clone(), server.url("account/name"));
        async move { browser.post(url).form(&form).send().await.expect("save name") }
    };
    let refused = save("Grace\u{202e}", "Hopper", "").await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "bidi controls are refused");
    assert!(refused.text().await.expect("page").contains("The given name must be"), "the page says which field");
    let saved = save("Grace", "Hopper", "").await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let page = browser.get(server.url("account")).send().await.expect("account").text().await.expect("page");
    assert!(page.contains("value=\"Grace Hopper\""), "the full name defaults to given + family");

    // Through a client: the profile scope carries it.
    let (client_id, secret) = server.create_client(&["--name", "Notes", "--confidential", "--redirect-uri", REDIRECT, "--first-party"]);
    let pkce = pkce();
    let url = format!(
        "{}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid%20profile&code_challenge={}&code_challenge_method=S256",
        server.issuer("default"),
        urlencode(REDIRECT),
        pkce.challenge
    );
    let callback = authorize_through_pages(&server, &smtp, &browser, &url, "grace@example.com").await;
    let code = query_param(&callback, "code").expect("code");
    let (_, tokens) = exchange_code(&server, &client_id, secret.as_deref().expect("secret"), &code, REDIRECT, &pkce.verifier).await;
    let info: Value = api().get(server.url("userinfo")).bearer_auth(tokens["access_token"].as_str().expect("at")).send().await.expect("userinfo").json().await.expect("json");
    assert_eq!((info["name"].as_str(), info["given_name"].as_str(), info["family_name"].as_str()), (Some("Grace Hopper"), Some("Grace"), Some("Hopper")), "{info}");
    assert!(info.get("email").is_none(), "no email scope, no email");
}

/// Registrations exactly as the clients send them (captured shapes; docs/clients.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_clients_register_as_they_really_do() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let host = DocumentHost::start().await;
    let server = host.start_server(&deployment, &smtp, &[]).await;

    // Cursor: a private-use scheme without a dot, public client; with its policy and terms.
    let (status, _, cursor) = register(
        &server,
        json!({
            "redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback"],
            "client_name": "Cursor",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "policy_uri": "https://cursor.example/privacy",
            "tos_uri": "http://cursor.example/terms",
            "client_uri": "https://cursor.example",
            "contacts": ["security@cursor.example"],
        }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{cursor}");
    for (field, value) in [("policy_uri", "https://cursor.example/privacy"), ("tos_uri", "http://cursor.example/terms"), ("client_uri", "https://cursor.example")] {
        assert_eq!(cursor[field], value, "echoed {field}");
    }
    assert_eq!(cursor["contacts"], json!(["security@cursor.example"]));
    // Its consent page links the https policy, not the http terms; the code goes to cursor://.
    let cursor_id = cursor["client_id"].as_str().expect("client id");
    let redirect = "cursor://anysphere.cursor-mcp/oauth/callback";
    let pkce = pkce();
    let url = format!(
        "{}/authorize?response_type=code&client_id={cursor_id}&redirect_uri={}&scope=openid%20profile%20email&state=c1&code_challenge={}&code_challenge_method=S256",
        server.issuer("default"),
        urlencode(redirect),
        pkce.challenge
    );
    let browser = browser();
    let (_, consent) = walk_pages(&server, &smtp, &browser, &url, EMAIL, |page| page.contains("name=\"decision\"")).await;
    let consent = consent.expect("consent page");
    assert!(consent.contains("id=\"consent-policy\" href=\"https://cursor.example/privacy\""), "{consent}");
    assert!(!consent.contains("consent-terms"), "an http terms link is not shown");
    let callback = authorize_through_pages(&server, &smtp, &browser, &url, EMAIL).await;
    assert!(callback.starts_with("cursor://anysphere.cursor-mcp/oauth/callback?code="), "{callback}");
    let code = query_param(&callback, "code").expect("code");
    let form = [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", redirect), ("client_id", cursor_id), ("code_verifier", &pkce.verifier)];
    let tokens: Value = api().post(server.url("token")).form(&form).send().await.expect("token").json().await.expect("json");
    assert_eq!(tokens["scope"], "openid profile email", "{tokens}");

    // VS Code: a loopback redirect without a path and vscode.dev.
    let (status, _, vscode) = register(
        &server,
        json!({
            "client_name": "Visual Studio Code",
            "redirect_uris": ["http://127.0.0.1:33418", "https://vscode.dev/redirect"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{vscode}");

    // MCP Inspector registers from its page at http://localhost:6274: the preflight and the answer
    // are readable there.
    let preflight = api()
        .request(reqwest::Method::OPTIONS, server.url("register"))
        .header("Origin", "http://localhost:6274")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(preflight.headers(), "access-control-allow-origin"), Some("*"));
    assert_eq!(header(preflight.headers(), "access-control-allow-headers"), Some("content-type"));
    let (status, headers, inspector) = register(
        &server,
        json!({
            "redirect_uris": ["http://localhost:6274/oauth/callback", "http://localhost:6274/oauth/callback/debug"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "MCP Inspector",
            "client_uri": "https://github.com/modelcontextprotocol/inspector",
        }),
        Some("http://localhost:6274"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{inspector}");
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
    // Its token endpoint preflight is answered for its origin (a client allows it), not for others.
    let token_preflight = |origin: &'static str| {
        api()
            .request(reqwest::Method::OPTIONS, server.url("token"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "mcp-protocol-version")
            .send()
    };
    let allowed = token_preflight("http://localhost:6274").await.expect("preflight");
    assert_eq!(header(allowed.headers(), "access-control-allow-origin"), Some("http://localhost:6274"));
    assert!(header(allowed.headers(), "access-control-allow-credentials").is_none(), "never credentials");
    let other = token_preflight("https://evil.example").await.expect("preflight");
    assert!(header(other.headers(), "access-control-allow-origin").is_none(), "an origin no client allows");
    // A bad registration from the page is readable too, and changes nothing.
    let (status, headers, refused) = register(&server, json!({ "redirect_uris": ["javascript:alert(1)"] }), Some("http://localhost:6274")).await;
    assert_eq!((status, refused["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_redirect_uri")), "{refused}");
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));

    // Claude Code: a client metadata document listing http://localhost/callback without a port, then
    // redirecting to whichever port it listens on (RFC 8252 §7.3 for localhost too).
    let claude = host.serve_client("/claude-code.json", "Claude Code", &["http://localhost/callback", "http://127.0.0.1/callback"]);
    let pkce = common::pkce();
    let url = format!(
        "{}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&code_challenge={}&code_challenge_method=S256",
        server.issuer("default"),
        urlencode(&claude),
        urlencode("http://localhost:54012/callback"),
        pkce.challenge
    );
    let callback = authorize_through_pages(&server, &smtp, &browser, &url, EMAIL).await;
    assert!(callback.starts_with("http://localhost:54012/callback?code="), "{callback}");
    // Another host is not localhost.
    let elsewhere = url.replace(&urlencode("http://localhost:54012/callback"), &urlencode("http://localhost.evil.example:54012/callback"));
    let response = browser.get(&elsewhere).send().await.expect("authorize");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

const FILE_RULES: &str = r#"
allowed_origins = ["http://localhost:6274"]

[[rules]]
tool = "files.list"
scopes = ["files:read"]
effect = "allow"
"#;

/// The MCP endpoint refuses a foreign `Origin` (403, before anything else), answers a preflight from
/// an allowed browser client with what it may send and read, and serves `/mcp/` as `/mcp`. A token
/// request that names the resource (spelled with a trailing slash) and no scope gets the resource's
/// default scopes, and calls a tool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_endpoint_checks_origins_and_a_resource_alone_is_enough_to_call_a_tool() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    let permissions = PermissionApi::start(&[server.issuer("default")], FILE_RULES).await;
    let resource = permissions.resource.clone();
    server.cli(&["resource", "create", "--uri", &resource, "--scope", "files:read", "--scope", "files:write", "--default-scope", "files:read"]);

    let initialize = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "test", "version": "1" } } });
    let post = |path: String, origin: Option<&'static str>, token: Option<String>, body: Value| {
        let mut request = api()
            .post(permissions.url(&path))
            .header("Accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    // A DNS-rebinding page: refused whatever else it sends.
    let foreign = post("/mcp".into(), Some("https://evil.example"), None, initialize.clone()).await.expect("mcp");
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let preflight = api()
        .request(reqwest::Method::OPTIONS, permissions.url("/mcp"))
        .header("Origin", "http://localhost:6274")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization, content-type, mcp-protocol-version, mcp-session-id")
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    let headers = preflight.headers();
    assert_eq!(header(headers, "access-control-allow-origin"), Some("http://localhost:6274"));
    assert_eq!(header(headers, "access-control-allow-headers"), Some("authorization, content-type, mcp-protocol-version, mcp-session-id"));
    let refused_preflight = api()
        .request(reqwest::Method::OPTIONS, permissions.url("/mcp"))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .expect("preflight");
    assert_eq!(refused_preflight.status(), StatusCode::FORBIDDEN);
    // The allowed page can read the 401 and its challenge.
    let unauthorized = post("/mcp".into(), Some("http://localhost:6274"), None, initialize.clone()).await.expect("mcp");
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(unauthorized.headers(), "access-control-allow-origin"), Some("http://localhost:6274"));
    let exposed = header(unauthorized.headers(), "access-control-expose-headers").unwrap_or_default().to_ascii_lowercase();
    assert!(exposed.contains("www-authenticate") && exposed.contains("mcp-session-id"), "{exposed}");
    // The trailing-slash spelling is the same endpoint (401 for no token, not 404).
    let slashed = post("/mcp/".into(), None, None, initialize.clone()).await.expect("mcp");
    assert_eq!(slashed.status(), StatusCode::UNAUTHORIZED);

    // Authorize naming the resource as `…/mcp/` and no scope.
    let (client_id, secret) = server.create_client(&["--name", "Agent IDE", "--confidential", "--redirect-uri", REDIRECT]);
    let pkce = pkce();
    let url = format!(
        "{}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&resource={}&code_challenge={}&code_challenge_method=S256",
        server.issuer("default"),
        urlencode(REDIRECT),
        urlencode(&format!("{resource}/")),
        pkce.challenge
    );
    let callback = authorize_through_pages(&server, &smtp, &browser(), &url, EMAIL).await;
    let code = query_param(&callback, "code").expect("code");
    let (status, tokens) = exchange_code(&server, &client_id, secret.as_deref().expect("secret"), &code, REDIRECT, &pkce.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["scope"], "files:read", "the resource's default scopes");
    let access = tokens["access_token"].as_str().expect("access token").to_owned();
    assert_eq!(jwt_claims(&access)["aud"], resource.as_str(), "the audience is the registered spelling");

    // The tool call, as a browser-based MCP client (MCP Inspector's origin) makes it: rmcp validates
    // the same Origin list behind our check.
    let init = post("/mcp".into(), Some("http://localhost:6274"), Some(access.clone()), initialize).await.expect("initialize");
    assert_eq!(init.status(), StatusCode::OK);
    let session = header(init.headers(), "mcp-session-id").map(str::to_owned);
    let call = |body: Value| {
        let mut request = api()
            .post(permissions.url("/mcp"))
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-06-18")
            .header("Origin", "http://localhost:6274")
            .bearer_auth(&access)
            .json(&body);
        if let Some(session) = &session {
            request = request.header("Mcp-Session-Id", session);
        }
        request.send()
    };
    let _ = call(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await.expect("initialized");
    let listed = call(json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "files.list", "arguments": {} } })).await.expect("call");
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(header(listed.headers(), "access-control-allow-origin"), Some("http://localhost:6274"));
    let body: Value = listed.json().await.expect("json");
    assert_eq!(body["result"]["isError"], json!(false), "{body}");
    assert!(body["result"]["content"][0]["text"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
}

/// A request naming only scopes that nothing offers is still refused, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_unknown_scopes_is_invalid_scope() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    let (client_id, _) = server.create_client(&["--name", "Notes", "--confidential", "--redirect-uri", REDIRECT]);
    let url = format!(
        "{}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=admin%20root&state=s&code_challenge={}&code_challenge_method=S256",
        server.issuer("default"),
        urlencode(REDIRECT),
        pkce().challenge
    );
    let response = browser().get(&url).send().await.expect("authorize");
    let callback = location(&response);
    assert_eq!(query_param(&callback, "error").as_deref(), Some("invalid_scope"), "{callback}");
}
