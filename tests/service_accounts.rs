//! Organizations, service accounts and agent tokens over real HTTP: a service account authenticates
//! with client credentials or exchanges an agent token (RFC 8693) for an access token that says it is an
//! agent of its organization; people carry their organization and roles too; the permission API decides
//! by organization, role and caller; agent tokens are shown once, stored hashed, capped at three active,
//! revocable, and disabling the account stops everything at once.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:9/cb";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AGENT_TOKEN_TYPE: &str = "urn:latchkey:params:oauth:token-type:agent-token";

const RULES: &str = r#"
[[rules]]
tool = "deploy"
organization = "acme"
roles = ["release-manager"]
caller = "person"
scopes = ["deploy:run"]
effect = "allow"

[[rules]]
tool = "deploy"
organization = "acme"
caller = "agent"
scopes = ["deploy:run"]
effect = "allow"
"#;

async fn post_token(server: &Server, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = api().post(server.url("token")).form(form).send().await.expect("token");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn exchange(server: &Server, agent_token: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", EXCHANGE), ("subject_token", agent_token), ("subject_token_type", AGENT_TOKEN_TYPE)];
    form.extend_from_slice(extra);
    post_token(server, &form).await
}

fn cli_json(server: &Server, args: &[&str]) -> Value {
    serde_json::from_str(server.cli(args).trim()).expect("CLI JSON")
}

fn new_agent_token(server: &Server, account: &str, name: &str, scopes: &[&str]) -> String {
    let mut args = vec!["agent-token", "create", "--service-account", account, "--name", name, "--json"];
    for scope in scopes {
        args.extend(["--scope", scope]);
    }
    cli_json(server, &args)["token"].as_str().expect("token").to_owned()
}

/// Every text value stored in the agent_tokens table, to prove the token itself is not among them.
async fn stored_agent_token_columns(deployment: &Deployment) -> Vec<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = sea_orm::Database::connect(deployment.database_url.as_deref().expect("db url")).await.expect("db");
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), "SELECT id, name, token_hash, prefix, scopes FROM agent_tokens"))
        .await
        .expect("select");
    rows.iter()
        .flat_map(|row| ["id", "name", "token_hash", "prefix", "scopes"].map(|c| row.try_get::<String>("", c).expect("column")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_accounts_and_people_carry_their_organization_to_the_permission_api() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    let permissions = PermissionApi::start(&[server.issuer("default")], RULES).await;
    let resource = permissions.resource.clone();
    server.cli(&["resource", "create", "--uri", &resource, "--name", "Deployments", "--scope", "deploy:run", "--scope", "reports:read"]);
    server.cli(&["org", "create", "acme", "--name", "Acme Corp"]);
    server.cli(&["org", "create", "globex"]);
    let discovery: Value = api().get(format!("{}/.well-known/openid-configuration", server.issuer("default"))).send().await.expect("discovery").json().await.expect("json");
    assert!(discovery["grant_types_supported"].as_array().expect("grants").iter().any(|g| g == EXCHANGE));

    // A service account of acme; its client credentials are printed once.
    let created = cli_json(&server, &["service-account", "create", "--org", "acme", "--name", "Release bot", "--scope", "deploy:run", "--scope", "reports:read", "--role", "deployer", "--json"]);
    let (account, client_id, secret) = (created["id"].as_str().expect("id"), created["client_id"].as_str().expect("client"), created["client_secret"].as_str().expect("secret"));
    assert!(account.starts_with("sa_"));

    // Client credentials: the token's subject is the account, an agent of acme with its roles.
    let (status, tokens) = token_request(&server, client_id, secret, &[("grant_type", "client_credentials"), ("resource", &resource)]).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = jwt_claims(tokens["access_token"].as_str().expect("at"));
    assert_eq!((claims["sub"].as_str(), claims["caller"].as_str(), claims["org"].as_str()), (Some(account), Some("agent"), Some("acme")));
    assert_eq!((claims["roles"].clone(), claims["aud"].as_str()), (serde_json::json!(["deployer"]), Some(resource.as_str())));
    let (status, _, decision) = permissions.decide(tokens["access_token"].as_str(), "deploy", "call").await;
    assert_eq!((status, decision["decision"].as_str()), (StatusCode::OK, Some("allow")), "{decision}");
    assert_eq!(jwt_claims(decision["receipt"].as_str().expect("receipt"))["org"], "acme");

    // An agent token, narrowed to deploy:run: shown once, stored as a hash and a prefix only.
    let agent_token = new_agent_token(&server, account, "ci", &["deploy:run"]);
    assert!(agent_token.starts_with("lk_agt_") && agent_token.len() > 40, "{agent_token}");
    let stored = stored_agent_token_columns(&deployment).await;
    assert!(stored.iter().all(|value| !value.contains(&agent_token[7..])), "the token is stored in plaintext: {stored:?}");
    let listing = server.cli(&["agent-token", "list", "--service-account", account]);
    assert!(listing.contains(&agent_token[..10]) && !listing.contains(&agent_token), "{listing}");

    // Exchanged for a 15-minute access token (RFC 8693); the agent token itself never leaves here.
    let (status, exchanged) = exchange(&server, &agent_token, &[("resource", &resource)]).await;
    assert_eq!(status, StatusCode::OK, "{exchanged}");
    assert_eq!(exchanged["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token");
    assert_eq!((exchanged["token_type"].as_str(), exchanged["expires_in"].as_i64()), (Some("Bearer"), Some(900)));
    assert!(exchanged.get("refresh_token").is_none());
    let claims = jwt_claims(exchanged["access_token"].as_str().expect("at"));
    assert_eq!((claims["sub"].as_str(), claims["caller"].as_str(), claims["org"].as_str(), claims["scope"].as_str()), (Some(account), Some("agent"), Some("acme"), Some("deploy:run")));
    let (_, _, decision) = permissions.decide(exchanged["access_token"].as_str(), "deploy", "call").await;
    assert_eq!(decision["decision"], "allow", "{decision}");

    // Refusals, each spec-shaped and spending nothing.
    let (status, error) = exchange(&server, &agent_token, &[("scope", "reports:read")]).await;
    assert_eq!((status, error["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_scope")), "narrowed token cannot widen");
    let (status, error) = post_token(&server, &[("grant_type", EXCHANGE), ("subject_token", &agent_token), ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token")]).await;
    assert_eq!((status, error["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
    let (status, error) = exchange(&server, &agent_token, &[("client_id", client_id)]).await;
    assert_eq!((status, error["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
    let (status, error) = exchange(&server, "lk_agt_not-a-real-token", &[]).await;
    assert_eq!((status, error["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    assert!(!error.to_string().contains("lk_agt_"), "the token is not echoed: {error}");
    let (status, _) = exchange(&server, &agent_token, &[]).await;
    assert_eq!(status, StatusCode::OK, "refusals spent nothing");

    // At most three active tokens; revoking one makes room, and the revoked one stops at once.
    let second = new_agent_token(&server, account, "laptop", &[]);
    new_agent_token(&server, account, "staging", &[]);
    let fourth = server.cli_output(&["agent-token", "create", "--service-account", account, "--name", "one-too-many"]);
    assert!(!fourth.status.success() && String::from_utf8_lossy(&fourth.stderr).contains("at most 3"), "{fourth:?}");
    let second_id = server
        .cli(&["agent-token", "list", "--service-account", account])
        .lines()
        .find(|l| l.contains("\tlaptop\t"))
        .and_then(|l| l.split('\t').next().map(str::to_owned))
        .expect("listed");
    server.cli(&["agent-token", "revoke", "--service-account", account, &second_id]);
    let (status, error) = exchange(&server, &second, &[]).await;
    assert_eq!((status, error["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    new_agent_token(&server, account, "replacement", &[]);

    // People: a release manager of acme may deploy; a member of globex, or of acme without the role, not.
    let (app_id, app_secret) = server.create_client(&["--name", "Console", "--confidential", "--first-party", "--redirect-uri", REDIRECT, "--introspect-all"]);
    let app_secret = app_secret.expect("secret");
    server.cli(&["org", "member", "acme", "--email", "rm@acme.example", "--role", "release-manager"]);
    server.cli(&["org", "member", "acme", "--email", "dev@acme.example", "--role", "developer"]);
    server.cli(&["org", "member", "globex", "--email", "rm@globex.example", "--role", "release-manager"]);
    for (email, expected_org, expected) in [
        ("rm@acme.example", Some("acme"), "allow"),
        ("dev@acme.example", Some("acme"), "deny"),
        ("rm@globex.example", Some("globex"), "deny"),
        ("nobody@example.com", None, "deny"),
    ] {
        let pkce = pkce();
        let authorize = format!(
            "{}?response_type=code&client_id={app_id}&redirect_uri={REDIRECT}&scope=deploy%3Arun&resource={}&code_challenge={}&code_challenge_method=S256",
            server.url("authorize"),
            urlencode(&resource),
            pkce.challenge
        );
        let callback = authorize_through_pages(&server, &smtp, &browser(), &authorize, email).await;
        let code = query_param(&callback, "code").expect("code");
        let (status, tokens) = exchange_code(&server, &app_id, &app_secret, &code, REDIRECT, &pkce.verifier).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let claims = jwt_claims(tokens["access_token"].as_str().expect("at"));
        assert_eq!((claims["caller"].as_str(), claims["org"].as_str()), (Some("person"), expected_org), "{email}");
        let (_, _, decision) = permissions.decide(tokens["access_token"].as_str(), "deploy", "call").await;
        assert_eq!(decision["decision"], expected, "{email}: {decision}");

        // A refresh reads the membership as stored now, in the same statement as the token.
        if expected_org.is_none() {
            server.cli(&["org", "member", "globex", "--email", email, "--role", "auditor"]);
        }
        let refresh_token = tokens["refresh_token"].as_str().expect("refresh token");
        let (status, refreshed) = token_request(&server, &app_id, &app_secret, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await;
        assert_eq!(status, StatusCode::OK, "{refreshed}");
        let claims = jwt_claims(refreshed["access_token"].as_str().expect("at"));
        let now_org = expected_org.or(Some("globex"));
        assert_eq!((claims["caller"].as_str(), claims["org"].as_str()), (Some("person"), now_org), "{email} after refresh");
        if expected_org.is_none() {
            assert_eq!(claims["roles"], serde_json::json!(["auditor"]), "{email} after refresh");
        }
    }
    // One organization per person.
    let second_org = server.cli_output(&["org", "member", "globex", "--email", "rm@acme.example"]);
    assert!(String::from_utf8_lossy(&second_org.stderr).contains("already belongs to organization \"acme\""), "{second_org:?}");

    // Disabling the account stops its client and its agent tokens at once, and introspection calls its
    // access tokens inactive (resource servers validating offline accept them until they expire).
    let introspect = |token: String| {
        let (server, app_id, app_secret) = (&server, app_id.clone(), app_secret.clone());
        async move {
            let response = api().post(server.url("introspect")).basic_auth(&app_id, Some(&app_secret)).form(&[("token", token)]).send().await.expect("introspect");
            response.json::<Value>().await.expect("json")
        }
    };
    let issued = exchanged["access_token"].as_str().expect("at").to_owned();
    let before = introspect(issued.clone()).await;
    assert_eq!((before["active"].as_bool(), before["caller"].as_str(), before["org"].as_str()), (Some(true), Some("agent"), Some("acme")), "{before}");
    let disabled = server.cli(&["service-account", "disable", account]);
    assert!(disabled.contains("3 agent token(s) revoked"), "{disabled}");
    let (status, error) = token_request(&server, client_id, secret, &[("grant_type", "client_credentials")]).await;
    assert_eq!((status, error["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unauthorized_client")), "{error}");
    let (status, error) = exchange(&server, &agent_token, &[]).await;
    assert_eq!((status, error["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    assert_eq!(introspect(issued).await["active"], false);

    let actions: Vec<String> = server.audit_actions().iter().filter_map(|e| e["action"].as_str().map(str::to_owned)).collect();
    for expected in ["service_account.create", "agent_token.create", "token.agent_token", "agent_token.revoke", "service_account.disable"] {
        assert!(actions.iter().any(|a| a == expected), "{expected} audited: {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creators_never_exceed_three_active_agent_tokens() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    server.cli(&["org", "create", "acme"]);
    let created = cli_json(&server, &["service-account", "create", "--org", "acme", "--name", "bot", "--scope", "jobs:run", "--json"]);
    let account = created["id"].as_str().expect("id");
    // Eight operators at the same instant: the database lets exactly three through.
    let outcomes: Vec<bool> = std::thread::scope(|threads| {
        let runs: Vec<_> = (0..8)
            .map(|i| {
                let server = &server;
                threads.spawn(move || {
                    let name = format!("racer-{i}");
                    server.cli_output(&["agent-token", "create", "--service-account", account, "--name", &name]).status.success()
                })
            })
            .collect();
        runs.into_iter().map(|run| run.join().expect("thread")).collect()
    });
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 3, "{outcomes:?}");
    let listing = server.cli(&["agent-token", "list", "--service-account", account]);
    assert_eq!(listing.lines().filter(|l| l.contains("\tactive\t")).count(), 3, "{listing}");
}
