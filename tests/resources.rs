//! Resource indicators (RFC 8707) over HTTP: access tokens carry the registered resource as `aud`; an
//! unknown or malformed resource is `invalid_target`; a refresh keeps the audience and a bad refresh
//! request does not spend the token; a resource that needs step-up gets a passkey-fresh sign-in.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:9/cb";
const MCP: &str = "https://mcp.example.com/mcp";
const ADMIN: &str = "https://admin.example.com/mcp";

struct Fixture {
    smtp: SmtpCatcher,
    server: Server,
    _deployment: Deployment,
    client_id: String,
    secret: String,
}

async fn fixture() -> Fixture {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    server.cli(&["resource", "create", "--uri", MCP, "--name", "Files MCP", "--scope", "tools:read", "--scope", "tools:write"]);
    server.cli(&["resource", "create", "--uri", ADMIN, "--scope", "admin", "--step-up"]);
    let (client_id, secret) = server.create_client(&["--name", "Agent", "--confidential", "--first-party", "--redirect-uri", REDIRECT]);
    Fixture { smtp, server, _deployment: deployment, client_id, secret: secret.expect("secret") }
}

impl Fixture {
    fn authorize_url(&self, pkce: &Pkce, scope: &str, resource: &str) -> String {
        format!(
            "{}?response_type=code&client_id={}&redirect_uri={REDIRECT}&scope={}&resource={}&code_challenge={}&code_challenge_method=S256",
            self.server.url("authorize"),
            self.client_id,
            urlencode(scope),
            urlencode(resource),
            pkce.challenge
        )
    }

    async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        token_request(&self.server, &self.client_id, &self.secret, form).await
    }

    async fn code(&self, browser: &reqwest::Client, email: &str, pkce: &Pkce, scope: &str, resource: &str) -> String {
        let callback = authorize_through_pages(&self.server, &self.smtp, browser, &self.authorize_url(pkce, scope, resource), email).await;
        query_param(&callback, "code").unwrap_or_else(|| panic!("no code: {callback}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_are_bound_to_the_registered_resource() {
    let f = fixture().await;
    let browser = browser();
    let email = "agent-owner@example.com";

    // The resource's own scope is allowed even though the client did not register it.
    let pkce = pkce();
    let code = f.code(&browser, email, &pkce, "openid offline_access tools:read", MCP).await;
    let (status, tokens) = f
        .token(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &pkce.verifier), ("resource", MCP)])
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = jwt_claims(tokens["access_token"].as_str().expect("access token"));
    assert_eq!(access["aud"], MCP);
    assert_eq!(access["scope"], "openid offline_access tools:read");
    assert_eq!(jwt_claims(tokens["id_token"].as_str().expect("id token"))["aud"], f.client_id.as_str(), "the ID token is for the client");
    // A token for the MCP server is not a token for our userinfo endpoint.
    let userinfo = api().get(f.server.url("userinfo")).bearer_auth(tokens["access_token"].as_str().expect("at")).send().await.expect("userinfo");
    assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED);

    // Refresh: another resource, or a wider scope, is refused and the token stays usable.
    let refresh = tokens["refresh_token"].as_str().expect("refresh token").to_owned();
    let (status, body) = f.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("resource", ADMIN)]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_target")));
    let (status, body) = f.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("scope", "tools:write")]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_scope")));
    let (status, refreshed) = f.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("resource", MCP), ("scope", "tools:read")]).await;
    assert_eq!(status, StatusCode::OK, "the refused requests did not spend the token: {refreshed}");
    let access = jwt_claims(refreshed["access_token"].as_str().expect("access token"));
    assert_eq!((access["aud"].as_str(), access["scope"].as_str()), (Some(MCP), Some("tools:read")), "narrowed, same audience");

    // The token request may repeat the resource, not change it; the code survives the mistake.
    let pkce = common::pkce();
    let code = f.code(&browser, email, &pkce, "openid", MCP).await;
    let exchange = |resource: Option<&'static str>| {
        let mut form = vec![("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT), ("code_verifier", pkce.verifier.as_str())];
        if let Some(resource) = resource {
            form.push(("resource", resource));
        }
        let (id, secret, server) = (f.client_id.clone(), f.secret.clone(), &f.server);
        async move { token_request(server, &id, &secret, &form).await }
    };
    let (status, body) = exchange(Some(ADMIN)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_target")));
    let (status, body) = exchange(None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(jwt_claims(body["access_token"].as_str().expect("at"))["aud"], MCP);

    // Authorization requests naming an unknown or malformed resource, or a scope nobody offers.
    for (resource, scope, error) in [
        ("https://unknown.example.com/mcp", "openid", "invalid_target"),
        ("https://mcp.example.com/mcp#fragment", "openid", "invalid_target"),
        ("http://mcp.example.com/mcp", "openid", "invalid_target"),
        (MCP, "tools:delete", "invalid_scope"),
    ] {
        let response = browser.get(f.authorize_url(&common::pkce(), scope, resource)).send().await.expect("authorize");
        let callback = location(&response);
        assert_eq!(query_param(&callback, "error").as_deref(), Some(error), "{resource} {scope}: {callback}");
    }

    // Client credentials for a resource: with a scope the client was granted, and the resource offers.
    let (bot, bot_secret) = f.server.create_client(&["--name", "Bot", "--confidential", "--grant-type", "client_credentials", "--scope", "tools:read"]);
    let bot_secret = bot_secret.expect("secret");
    let (status, body) = token_request(&f.server, &bot, &bot_secret, &[("grant_type", "client_credentials"), ("resource", MCP), ("scope", "tools:read")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(jwt_claims(body["access_token"].as_str().expect("at"))["aud"], MCP);
    let (status, body) = token_request(&f.server, &bot, &bot_secret, &[("grant_type", "client_credentials"), ("resource", "https://unknown.example.com/")]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_target")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_that_needs_step_up_gets_a_fresh_passkey_sign_in() {
    let f = fixture().await;
    let browser = browser();
    let email = "admin@example.com";
    // First sign-in: email code and enrollment, which is multi-factor but not phishing-resistant.
    let pkce = pkce();
    let code = f.code(&browser, email, &pkce, "openid", MCP).await;
    let (_, tokens) = f.token(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &pkce.verifier)]).await;
    assert_eq!(jwt_claims(tokens["access_token"].as_str().expect("at"))["acr"], "urn:latchkey:acr:mfa");

    // The admin resource asks for `phr`: the same browser is sent to confirm with its passkey.
    let pkce = common::pkce();
    let start = browser.get(f.authorize_url(&pkce, "openid admin", ADMIN)).send().await.expect("authorize");
    let at = location(&start);
    assert!(at.contains("/passkey?req=") && at.contains("step_up=1"), "{at}");
    let code = f.code(&browser, email, &pkce, "openid admin", ADMIN).await;
    let (status, tokens) = f.token(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &pkce.verifier)]).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = jwt_claims(tokens["access_token"].as_str().expect("at"));
    assert_eq!((access["aud"].as_str(), access["acr"].as_str()), (Some(ADMIN), Some("phr")));
}
