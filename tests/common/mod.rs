//! Test harness: real `latchkey serve` processes on free ports, a real SMTP listener, and a fresh database
//! per test — a SQLite file, or a new PostgreSQL database when `LATCHKEY_TEST_POSTGRES_URL` points at a
//! server (`.ci/run` and `scripts/test` start one).
#![allow(dead_code)]

use std::{
    collections::HashMap,
    net::TcpListener as StdListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::Engine;
use reqwest::{StatusCode, redirect::Policy};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    sync::Notify,
};

/// A port nothing listens on, never handed out twice in this test process: the probe's listener is
/// closed before the node binds, so two tests starting at once could otherwise both get it, and one's
/// readiness check would then be answered by the other's node.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut given = GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// SMTP

#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    pub data: String,
}

/// A minimal SMTP server (RFC 5321 happy path) that keeps every message it receives.
pub struct SmtpCatcher {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    arrived: Arc<Notify>,
}

impl SmtpCatcher {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Listens on `port` (0: any free one); a test that simulates an outage names the port first.
    pub async fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind smtp");
        let port = listener.local_addr().expect("addr").port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let (m, a) = (mails.clone(), arrived.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (m, a) = (m.clone(), a.clone());
                tokio::spawn(async move {
                    let _ = serve_smtp(stream, m, a).await;
                });
            }
        });
        Self {
            port,
            mails,
            arrived,
        }
    }

    pub fn mails_to(&self, address: &str) -> Vec<Mail> {
        self.mails
            .lock()
            .expect("lock")
            .iter()
            .filter(|m| m.to.iter().any(|t| t == address))
            .cloned()
            .collect()
    }

    /// How many sign-in codes were mailed to `address` so far (security notices not counted).
    pub fn code_count(&self, address: &str) -> usize {
        self.mails_to(address).iter().filter(|m| extract_code(&m.data).is_some()).count()
    }

    /// Waits for the `n`-th sign-in code mailed to `address` (1-based) and returns it. Mail is
    /// delivered by the server's mail worker, so it may arrive a moment after the request.
    pub async fn code_for(&self, address: &str, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let codes: Vec<String> = self.mails_to(address).iter().filter_map(|m| extract_code(&m.data)).collect();
            if codes.len() >= n {
                return codes[n - 1].clone();
            }
            assert!(
                Instant::now() < deadline,
                "no mail #{n} to {address} within 15 s"
            );
            let _ = tokio::time::timeout(Duration::from_millis(200), self.arrived.notified()).await;
        }
    }
}

impl SmtpCatcher {
    /// Waits (up to 15 s) for a mail to `address` containing `text`.
    pub async fn mail_containing(&self, address: &str, text: &str) -> Mail {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(mail) = self.mails_to(address).into_iter().find(|m| m.data.contains(text)) {
                return mail;
            }
            assert!(Instant::now() < deadline, "no mail to {address} containing {text:?} within 15 s");
            let _ = tokio::time::timeout(Duration::from_millis(200), self.arrived.notified()).await;
        }
    }
}

fn extract_code(data: &str) -> Option<String> {
    let marker = "sign-in code is ";
    let start = data.find(marker)? + marker.len();
    let code: String = data[start..].chars().take(6).collect();
    (code.len() == 6 && code.chars().all(|c| c.is_ascii_digit())).then_some(code)
}

async fn serve_smtp(
    stream: tokio::net::TcpStream,
    mails: Arc<Mutex<Vec<Mail>>>,
    arrived: Arc<Notify>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 test-smtp ready\r\n").await?;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            write
                .write_all(b"250-test-smtp\r\n250 8BITMIME\r\n")
                .await?;
        } else if upper.starts_with("MAIL FROM") {
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO") {
            let address = line.trim()[8..]
                .trim()
                .trim_start_matches(':')
                .trim()
                .trim_matches(|c| c == '<' || c == '>');
            to.push(address.to_owned());
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("DATA") {
            write.write_all(b"354 end with .\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(&line);
            }
            mails.lock().expect("lock").push(Mail {
                to: to.clone(),
                data,
            });
            arrived.notify_waiters();
            write.write_all(b"250 queued\r\n").await?;
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"250 OK\r\n").await?;
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Database

/// Where a test's nodes keep their state. Nodes sharing a `Deployment` share the database and master key.
pub struct Deployment {
    pub database_url: Option<String>,
    pub master_key: String,
    pub root: tempfile::TempDir,
    pub engine: &'static str,
}

impl Deployment {
    pub async fn new() -> Self {
        // LATCHKEY_TEST_KEEP=1 keeps the nodes' logs and SQLite database for a post-mortem.
        let keep = std::env::var_os("LATCHKEY_TEST_KEEP").is_some();
        let root = tempfile::Builder::new().disable_cleanup(keep).tempdir().expect("tempdir");
        if keep {
            eprintln!("keeping {}", root.path().display());
        }
        let master_key =
            base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
        match std::env::var("LATCHKEY_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(admin_url) => {
                let name = format!("lk_test_{}", random_hex(8));
                let admin = sea_orm::Database::connect(&admin_url)
                    .await
                    .expect("connect to test PostgreSQL");
                use sea_orm::ConnectionTrait;
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                let _ = admin.close().await;
                let mut url = url::Url::parse(&admin_url).expect("postgres url");
                url.set_path(&format!("/{name}"));
                Self {
                    database_url: Some(url.to_string()),
                    master_key,
                    root,
                    engine: "postgres",
                }
            }
            None => {
                let path = root.path().join("shared.db");
                Self {
                    database_url: Some(format!("sqlite://{}?mode=rwc", path.display())),
                    master_key,
                    root,
                    engine: "sqlite",
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Server

pub struct Server {
    pub port: u16,
    pub base: String,
    child: Child,
    env: HashMap<String, String>,
}

/// The `latchkey` binary the tests start: this profile's, or `LATCHKEY_TEST_SERVER_BINARY` (the
/// benchmarks drive a release server from a quickly built harness).
pub fn binary() -> PathBuf {
    std::env::var_os("LATCHKEY_TEST_SERVER_BINARY").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_latchkey")), PathBuf::from)
}

impl Server {
    /// Starts a node. `extra` sets or overrides `LATCHKEY_*` variables.
    pub async fn start(
        deployment: &Deployment,
        smtp: &SmtpCatcher,
        extra: &[(&str, &str)],
    ) -> Self {
        let port = free_port();
        let base = format!("http://localhost:{port}");
        let data_dir = deployment.root.path().join(format!("node-{port}"));
        let mut env: HashMap<String, String> = HashMap::new();
        env.insert("LATCHKEY_LISTEN".into(), format!("127.0.0.1:{port}"));
        env.insert("LATCHKEY_PUBLIC_URL".into(), base.clone());
        env.insert("LATCHKEY_DATA_DIR".into(), data_dir.display().to_string());
        env.insert("LATCHKEY_MASTER_KEY".into(), deployment.master_key.clone());
        env.insert("LATCHKEY_SMTP_HOST".into(), "127.0.0.1".into());
        env.insert("LATCHKEY_SMTP_PORT".into(), smtp.port.to_string());
        env.insert("LATCHKEY_SMTP_TLS".into(), "none".into());
        env.insert("LATCHKEY_WORKERS".into(), "2".into());
        env.insert("LATCHKEY_DATABASE_MAX_CONNECTIONS".into(), "8".into());
        env.insert("LATCHKEY_LOG".into(), "warn".into());
        if let Some(url) = &deployment.database_url {
            env.insert("DATABASE_URL".into(), url.clone());
        }
        // An empty value removes the harness's own setting, leaving the server's default.
        for (k, v) in extra {
            if v.is_empty() {
                env.remove(*k);
            } else {
                env.insert((*k).into(), (*v).into());
            }
        }
        // The node's log goes to a file beside its data (kept with LATCHKEY_TEST_KEEP=1).
        std::fs::create_dir_all(deployment.root.path()).expect("root");
        let log = std::fs::File::create(deployment.root.path().join(format!("node-{port}.log")))
            .expect("log file");
        // bench/run.sh pins the server to one core: LATCHKEY_TEST_SERVER_CPU=0 → `taskset -c 0`.
        let mut command = match std::env::var("LATCHKEY_TEST_SERVER_CPU").ok().filter(|c| !c.is_empty()) {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &cpu]).arg(binary());
                c
            }
            None => Command::new(binary()),
        };
        let child = command
            .arg("serve")
            .envs(&env)
            .env_remove("LATCHKEY_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn latchkey");
        let mut server = Self {
            port,
            base,
            child,
            env,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let http = reqwest::Client::new();
        loop {
            // A node that exited (its port taken, say) must not pass for ready through another's answer.
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the node on port {} exited during start-up: {status}", self.port);
            }
            if let Ok(r) = http
                .get(format!("http://127.0.0.1:{}/healthz", self.port))
                .send()
                .await
                && r.status().is_success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "server did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/t/{tenant}", self.base)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/t/default/{path}", self.base)
    }

    /// Runs the operator CLI against this node's database.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = self.cli_output(args);
        assert!(
            output.status.success(),
            "latchkey {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    /// Runs the operator CLI and returns its output, failed or not.
    pub fn cli_output(&self, args: &[&str]) -> std::process::Output {
        self.cli_output_with(args, &[])
    }

    /// The same, with some variables of this node's environment changed.
    pub fn cli_output_with(&self, args: &[&str], extra: &[(&str, &str)]) -> std::process::Output {
        Command::new(binary()).args(args).envs(&self.env).envs(extra.iter().copied()).output().expect("run cli")
    }

    /// Registers a client and returns (client_id, client_secret).
    pub fn create_client(&self, args: &[&str]) -> (String, Option<String>) {
        let mut all = vec!["client", "create", "--json"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        let value: serde_json::Value = serde_json::from_str(out.trim()).expect("client json");
        (
            value["client_id"].as_str().expect("client_id").to_owned(),
            value["client_secret"].as_str().map(str::to_owned),
        )
    }

    pub fn audit_actions(&self) -> Vec<serde_json::Value> {
        self.cli(&["audit", "tail", "--limit", "500"])
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit json"))
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------------
// Browser-like HTTP

/// How long a test client keeps an idle connection: less than the server's keep-alive (actix: 5 s),
/// so a request is never sent on a connection the server is closing at that moment (seen as
/// `IncompleteMessage` after a test waited out a token's lifetime).
const POOL_IDLE: Duration = Duration::from_secs(2);

/// A cookie-keeping, non-redirecting HTTP client: each test step looks at every redirect.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .pool_idle_timeout(POOL_IDLE)
        .build()
        .expect("client")
}

pub fn api() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .pool_idle_timeout(POOL_IDLE)
        .build()
        .expect("client")
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("expected a redirect, got {}", response.status()))
        .to_owned()
}

pub fn absolute(server: &Server, location: &str) -> String {
    // Any URL with a scheme (https, a native app's private-use scheme) is already absolute.
    if url::Url::parse(location).is_ok() {
        location.to_owned()
    } else {
        format!("{}{location}", server.base)
    }
}

/// The value of `<input name="{name}" value="...">` in a page.
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(decode_entities(&html[start..end]))
}

/// The entities askama's escaping produces in attribute values.
fn decode_entities(value: &str) -> String {
    value
        .replace("&#x2f;", "/")
        .replace("&#x3d;", "=")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Drives the hosted pages from an authorization URL to the final redirect back to the client, signing
/// in with an email code and approving consent when asked. Returns the client redirect URL.
pub async fn authorize_through_pages(
    server: &Server,
    smtp: &SmtpCatcher,
    browser: &reqwest::Client,
    authorize_url: &str,
    email: &str,
) -> String {
    walk_pages(server, smtp, browser, authorize_url, email, |_| false).await.0
}

/// Does what a user does on each hosted page (email, code, passkey, consent, authenticator app) until
/// the browser leaves the server, or until a page satisfies `stop`: returns where it is, and that page.
pub async fn walk_pages(
    server: &Server,
    smtp: &SmtpCatcher,
    browser: &reqwest::Client,
    start: &str,
    email: &str,
    stop: impl Fn(&str) -> bool,
) -> (String, Option<String>) {
    let mut next = start.to_owned();
    let mut mails_seen = smtp.code_count(email);
    for _ in 0..12 {
        if !next.starts_with(&server.base) {
            return (next, None);
        }
        let response = browser.get(&next).send().await.expect("GET");
        if response.status() == StatusCode::SEE_OTHER || response.status() == StatusCode::FOUND {
            next = absolute(server, &location(&response));
            continue;
        }
        let status = response.status();
        let page = response.text().await.expect("body");
        // The page's own text says why (the heading and message of an error page).
        assert_eq!(status, StatusCode::OK, "page {next}: {}", page_text(&page));
        if stop(&page) {
            return (next, Some(page));
        }
        if page.contains("data-mode=\"enroll\"") || page.contains("data-mode=\"verify\"") {
            // The passkey step runs in page script; do what passkey.js does, with a software authenticator.
            next = absolute(server, &passkey_step(server, browser, &page, email).await);
            continue;
        }
        let csrf = hidden_input(&page, "csrf").expect("csrf field");
        let req = hidden_input(&page, "req");
        let mut form: Vec<(&str, String)> = vec![("csrf", csrf)];
        if let Some(req) = &req {
            form.push(("req", req.clone()));
        }
        let action = if let Some(secret) = totp_secret(&page) {
            // The tenant requires an authenticator app: be the app.
            form.push(("code", totp_code(&secret, 0)));
            server.url("account/totp")
        } else if page.contains("name=\"email\"") {
            form.push(("email", email.to_owned()));
            server.url("login")
        } else if page.contains("name=\"code\"") {
            mails_seen += 1;
            form.push(("code", smtp.code_for(email, mails_seen).await));
            server.url("login/code")
        } else if page.contains("name=\"decision\"") {
            form.push(("decision", "allow".to_owned()));
            server.url("consent")
        } else {
            panic!("unexpected page at {next}: {page}");
        };
        let response = browser
            .post(&action)
            .form(&form)
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "POST {action}");
        next = absolute(server, &location(&response));
    }
    panic!("authorization did not finish");
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let digest = <sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    Pkce {
        verifier,
        challenge,
    }
}

/// Decodes a JWT's payload without verifying it (tests verify separately).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("jwt payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

pub fn jwt_header(token: &str) -> serde_json::Value {
    let header = token.split('.').next().expect("jwt header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

/// POSTs a grant to the token endpoint with `client_secret_basic`; returns the status and JSON body.
pub async fn token_request(server: &Server, client_id: &str, secret: &str, form: &[(&str, &str)]) -> (StatusCode, serde_json::Value) {
    let response = api()
        .post(server.url("token"))
        .basic_auth(client_id, Some(secret))
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = response.status();
    (status, response.json().await.unwrap_or(serde_json::Value::Null))
}

/// Introspects a token as a confidential client (RFC 7662); the response body.
pub async fn introspect(server: &Server, client_id: &str, secret: &str, token: &str) -> serde_json::Value {
    api()
        .post(server.url("introspect"))
        .basic_auth(client_id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .expect("introspect")
        .json()
        .await
        .expect("introspection json")
}

/// Exchanges an authorization code (RFC 6749 §4.1.3 with the PKCE verifier).
pub async fn exchange_code(server: &Server, client_id: &str, secret: &str, code: &str, redirect_uri: &str, verifier: &str) -> (StatusCode, serde_json::Value) {
    token_request(server, client_id, secret, &[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ])
    .await
}

/// The software authenticators of this test process, one per email address: a user who enrolled a
/// passkey in one sign-in uses the same authenticator in the next.
static AUTHENTICATORS: std::sync::LazyLock<Mutex<HashMap<String, SoftPasskey>>> =
    std::sync::LazyLock::new(Default::default);
/// Recovery codes the server returned at each user's first enrollment.
/// Each enrolled user's credential id and user handle (for `discoverable_assertion`).
#[allow(clippy::type_complexity)]
static CREDENTIALS: std::sync::LazyLock<Mutex<HashMap<String, (Vec<u8>, Vec<u8>)>>> =
    std::sync::LazyLock::new(|| Mutex::new(HashMap::new()));
static RECOVERY_CODES: std::sync::LazyLock<Mutex<HashMap<String, Vec<String>>>> =
    std::sync::LazyLock::new(Default::default);

use webauthn_authenticator_rs::{WebauthnAuthenticator, softpasskey::SoftPasskey};

pub fn recovery_codes_of(email: &str) -> Vec<String> {
    RECOVERY_CODES.lock().unwrap_or_else(|p| p.into_inner()).get(email).cloned().unwrap_or_default()
}

/// Replaces the authenticator of `email` (a user who lost their device).
pub fn lose_authenticator(email: &str) {
    AUTHENTICATORS.lock().unwrap_or_else(|p| p.into_inner()).remove(email);
}

/// A `data-*` attribute of the passkey block.
pub fn data_attr(html: &str, name: &str) -> Option<String> {
    let marker = format!("data-{name}=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(decode_entities(&html[start..end]))
}

/// POSTs JSON to a passkey endpoint the way passkey.js does (CSRF header, JSON body).
pub async fn passkey_post(server: &Server, browser: &reqwest::Client, csrf: &str, path: &str, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    let response = browser
        .post(server.url(path))
        .header("X-CSRF-Token", csrf)
        .json(&body)
        .send()
        .await
        .expect("passkey POST");
    let status = response.status();
    (status, response.json().await.unwrap_or(serde_json::Value::Null))
}

/// Runs the ceremony a passkey page asks for (enroll or verify) with `email`'s software authenticator;
/// returns where the page would navigate next.
pub async fn passkey_step(server: &Server, browser: &reqwest::Client, page: &str, email: &str) -> String {
    let csrf = data_attr(page, "csrf").expect("data-csrf");
    let req = data_attr(page, "req");
    let origin = url::Url::parse(&server.base).expect("origin");
    if data_attr(page, "mode").as_deref() == Some("enroll") {
        let (status, start) = passkey_post(server, browser, &csrf, "passkey/register/options", serde_json::json!({})).await;
        assert_eq!(status, StatusCode::OK, "register options: {start}");
        let mut options: webauthn_rs_proto::CreationChallengeResponse = serde_json::from_value(start["options"].clone()).expect("creation options");
        // The server asks for a discoverable (resident) credential; the software authenticator cannot
        // make one and would refuse, as a real authenticator without resident-key support falls back.
        // The server cannot tell and does not depend on it. Discoverable sign-in is the browser tests'.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.require_resident_key = false;
            selection.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Discouraged);
        }
        let user_handle = options.public_key.user.id.clone();
        let credential = {
            let mut authenticators = AUTHENTICATORS.lock().unwrap_or_else(|p| p.into_inner());
            let authenticator = authenticators.entry(email.to_owned()).or_insert_with(|| SoftPasskey::new(true));
            authenticator.do_registration(origin, options).expect("authenticator registers")
        };
        CREDENTIALS.lock().unwrap_or_else(|p| p.into_inner()).insert(email.to_owned(), (credential.raw_id.clone(), user_handle));
        let (status, done) = passkey_post(server, browser, &csrf, "passkey/register", serde_json::json!({
            "ceremony": start["ceremony"], "name": "Test key", "credential": credential, "req": req,
        })).await;
        assert_eq!(status, StatusCode::OK, "register: {done}");
        if let Some(codes) = done["recovery_codes"].as_array() {
            let codes = codes.iter().map(|c| c.as_str().expect("code").to_owned()).collect();
            RECOVERY_CODES.lock().unwrap_or_else(|p| p.into_inner()).insert(email.to_owned(), codes);
        }
        done["next"].as_str().expect("next").to_owned()
    } else {
        let (status, start) = passkey_post(server, browser, &csrf, "passkey/authenticate/options", serde_json::json!({ "mode": "session" })).await;
        assert_eq!(status, StatusCode::OK, "authenticate options: {start}");
        let options: webauthn_rs_proto::RequestChallengeResponse = serde_json::from_value(start["options"].clone()).expect("request options");
        let credential = {
            let mut authenticators = AUTHENTICATORS.lock().unwrap_or_else(|p| p.into_inner());
            let authenticator = authenticators.get_mut(email).expect("this user enrolled a passkey in this test");
            authenticator.do_authentication(origin, options).expect("authenticator asserts")
        };
        let (status, done) = passkey_post(server, browser, &csrf, "passkey/authenticate", serde_json::json!({
            "ceremony": start["ceremony"], "mode": "session", "credential": credential, "req": req,
        })).await;
        assert_eq!(status, StatusCode::OK, "authenticate: {done}");
        done["next"].as_str().expect("next").to_owned()
    }
}

/// An assertion from `email`'s software authenticator (enrolled earlier through the pages).
pub fn software_assertion(email: &str, origin: url::Url, options: webauthn_rs_proto::RequestChallengeResponse) -> webauthn_rs_proto::PublicKeyCredential {
    let mut authenticators = AUTHENTICATORS.lock().unwrap_or_else(|p| p.into_inner());
    let authenticator = authenticators.get_mut(email).expect("this user enrolled a passkey in this test");
    authenticator.do_authentication(origin, options).expect("authenticator asserts")
}

/// What a discoverable (resident) credential of `email` answers to a sign-in that names no user: the
/// software authenticator keeps no resident keys, so the credential it made at enrollment is named for
/// it, and the user handle a resident key would return is filled in (it is not signed over).
pub fn discoverable_assertion(email: &str, origin: url::Url, mut options: webauthn_rs_proto::RequestChallengeResponse) -> webauthn_rs_proto::PublicKeyCredential {
    let (credential_id, user_handle) = CREDENTIALS.lock().unwrap_or_else(|p| p.into_inner()).get(email).cloned().expect("this user enrolled a passkey in this test");
    options.public_key.allow_credentials = vec![webauthn_rs_proto::AllowCredentials {
        type_: "public-key".into(),
        id: credential_id,
        transports: None,
    }];
    let mut assertion = software_assertion(email, origin, options);
    assertion.response.user_handle = Some(user_handle);
    assertion
}

/// The key on an authenticator-app set-up page.
pub fn totp_secret(page: &str) -> Option<String> {
    let marker = "id=\"totp-secret\">";
    let start = page.find(marker)? + marker.len();
    Some(page[start..start + page[start..].find('<')?].to_owned())
}

/// What an authenticator app shows for `secret_base32`, `offset` 30-second steps from now.
pub fn totp_code(secret_base32: &str, offset: i64) -> String {
    let secret = totp_rs::Secret::Encoded(secret_base32.to_owned()).to_bytes().expect("base32 secret");
    let totp = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, secret, None, "test".into()).expect("totp");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    totp.generate(((now / 30 + offset) * 30) as u64)
}

/// Percent-encodes a query parameter value.
pub fn urlencode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

// ---------------------------------------------------------------------------------------------------
// Permission API

/// The `latchkey-permissions` binary, a crate of its own (src/permissions): built beside the test
/// executables by `cargo build` / `cargo test` at the top of the workspace (its own command-line test
/// makes cargo build it).
pub fn permissions_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/{profile}/deps/{test}-{hash} → target/{profile}/latchkey-permissions
    let binary = exe.parent().and_then(|deps| deps.parent()).expect("target directory").join("latchkey-permissions");
    assert!(binary.exists(), "{} is missing: run `cargo build -p latchkey-permissions` (./scripts/test does)", binary.display());
    binary
}

/// A running `latchkey-permissions` process with its configuration and data in `dir`.
pub struct PermissionApi {
    pub port: u16,
    /// The resource URL (`http://127.0.0.1:{port}/mcp`): the `aud` its tokens need.
    pub resource: String,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl PermissionApi {
    /// Starts it trusting `issuers`, with `rules` (TOML `[[rules]]` tables) appended to its config.
    pub async fn start(issuers: &[String], rules: &str) -> Self {
        Self::start_replica(issuers, rules, None).await
    }

    /// The same; with `resource`, a replica of the API serving that resource (as behind a load
    /// balancer), with data of its own.
    pub async fn start_replica(issuers: &[String], rules: &str, resource: Option<&str>) -> Self {
        let port = free_port();
        let resource = resource.map_or_else(|| format!("http://127.0.0.1:{port}/mcp"), str::to_owned);
        let dir = tempfile::tempdir().expect("tempdir");
        let issuers = issuers.iter().map(|i| format!("{i:?}")).collect::<Vec<_>>().join(", ");
        let config = format!(
            "listen = \"127.0.0.1:{port}\"\nresource = \"{resource}\"\nissuers = [{issuers}]\ndata_dir = {:?}\n\
             jwks_refetch_seconds = 2\nscopes_supported = [\"files:read\", \"files:write\"]\n{rules}",
            dir.path().join("data").display().to_string()
        );
        let config_path = dir.path().join("permissions.toml");
        std::fs::write(&config_path, config).expect("write config");
        let log = std::fs::File::create(dir.path().join("permissions.log")).expect("log file");
        // Pinned like the identity server when benchmarking (LATCHKEY_TEST_SERVER_CPU).
        let mut command = match std::env::var("LATCHKEY_TEST_SERVER_CPU").ok().filter(|c| !c.is_empty()) {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &cpu]).arg(permissions_binary());
                c
            }
            None => Command::new(permissions_binary()),
        };
        let child = command
            .arg(&config_path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn latchkey-permissions");
        let api = Self { port, resource, dir, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(api.url("/healthz")).await.map(|r| r.status()).ok() != Some(StatusCode::OK) {
            assert!(Instant::now() < deadline, "permission API did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        api
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `POST /v1/decisions` with `token` (if any): status, `WWW-Authenticate`, JSON body.
    pub async fn decide(&self, token: Option<&str>, tool: &str, action: &str) -> (StatusCode, String, serde_json::Value) {
        let mut request = api().post(self.url("/v1/decisions")).json(&serde_json::json!({ "tool": tool, "action": action }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("decision request");
        let status = response.status();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, challenge, response.json().await.unwrap_or_default())
    }

    /// The audit table: (subject, tool, action, decision) of every decision, oldest first.
    pub async fn audit_rows(&self) -> Vec<(String, String, String, String)> {
        use sea_orm::{ConnectionTrait, Statement};
        let url = format!("sqlite://{}?mode=ro", self.dir.path().join("data/permissions.db").display());
        let db = sea_orm::Database::connect(&url).await.expect("open audit db");
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT subject, tool, action, decision FROM decisions ORDER BY id",
            ))
            .await
            .expect("audit rows");
        rows.iter()
            .map(|r| {
                let col = |c: &str| r.try_get::<String>("", c).expect("column");
                (col("subject"), col("tool"), col("action"), col("decision"))
            })
            .collect()
    }
}

impl Drop for PermissionApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------------
// Process figures for the load generators (bench_*.rs)

pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// User + system CPU time of a process, in clock ticks (1/100 s).
pub fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------------
// An https host for client metadata documents: a test certificate authority (its certificate is what
// the server is told to trust, through LATCHKEY_CLIENT_METADATA_EXTRA_ROOTS) and a tiny HTTP/1.1
// responder on 127.0.0.1 with a certificate for `localhost`.

#[derive(Clone)]
pub struct Served {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Served {
    pub fn json(value: &serde_json::Value) -> Self {
        Self {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec(value).expect("json"),
            delay: Duration::ZERO,
        }
    }

    pub fn redirect(to: &str) -> Self {
        Self { status: 302, headers: vec![("Location".into(), to.into())], body: vec![], delay: Duration::ZERO }
    }
}

pub struct DocumentHost {
    pub port: u16,
    /// PEM of the test certificate authority, written where the server can read it.
    pub ca_file: PathBuf,
    routes: Arc<Mutex<HashMap<String, Served>>>,
    fetches: Arc<Mutex<HashMap<String, usize>>>,
    _dir: tempfile::TempDir,
}

impl DocumentHost {
    pub async fn start() -> Self {
        use tokio_rustls::rustls::{
            self,
            pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
        };
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Latchkey test CA");
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("leaf params")
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("leaf");
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_file = dir.path().join("test-ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write CA");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .expect("tls config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let routes: Arc<Mutex<HashMap<String, Served>>> = Arc::default();
        let fetches: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (routes_for_task, fetches_for_task) = (routes.clone(), fetches.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (acceptor, routes, fetches) = (acceptor.clone(), routes_for_task.clone(), fetches_for_task.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
                        match tokio::io::AsyncReadExt::read(&mut tls, &mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&head);
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    *fetches.lock().unwrap().entry(path.clone()).or_default() += 1;
                    let served = routes.lock().unwrap().get(&path).cloned().unwrap_or(Served {
                        status: 404,
                        headers: vec![],
                        body: b"not found".to_vec(),
                        delay: Duration::ZERO,
                    });
                    tokio::time::sleep(served.delay).await;
                    let mut response = format!("HTTP/1.1 {} Test\r\nContent-Length: {}\r\nConnection: close\r\n", served.status, served.body.len());
                    for (name, value) in &served.headers {
                        response.push_str(&format!("{name}: {value}\r\n"));
                    }
                    response.push_str("\r\n");
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.write_all(&served.body).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Self { port, ca_file, routes, fetches, _dir: dir }
    }

    /// `https://localhost:{port}{path}`
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    pub fn serve(&self, path: &str, served: Served) {
        self.routes.lock().unwrap().insert(path.to_owned(), served);
    }

    /// Serves a client metadata document naming its own URL as `client_id`; returns that URL.
    pub fn serve_client(&self, path: &str, name: &str, redirect_uris: &[&str]) -> String {
        let url = self.url(path);
        self.serve(path, Served::json(&serde_json::json!({
            "client_id": url,
            "client_name": name,
            "redirect_uris": redirect_uris,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })));
        url
    }

    pub fn fetches(&self, path: &str) -> usize {
        self.fetches.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// A Latchkey node that may fetch documents from this host, with `extra` settings.
    pub async fn start_server(&self, deployment: &Deployment, smtp: &SmtpCatcher, extra: &[(&str, &str)]) -> Server {
        let env = self.server_env();
        let mut all = vec![(env[0].0, env[0].1.as_str()), (env[1].0, env[1].1.as_str())];
        all.extend_from_slice(extra);
        Server::start(deployment, smtp, &all).await
    }

    /// The server settings that let it fetch from this host (loopback, test CA).
    pub fn server_env(&self) -> [(&'static str, String); 2] {
        [
            ("LATCHKEY_CLIENT_METADATA_ALLOW_LOOPBACK", "true".to_owned()),
            ("LATCHKEY_CLIENT_METADATA_EXTRA_ROOTS", self.ca_file.display().to_string()),
        ]
    }
}

/// A page's visible text (what follows its style sheet, tags removed), short enough for a failure
/// message: an error page's heading and message, not its CSS.
pub fn page_text(page: &str) -> String {
    let body = page.rsplit_once("</style>").map_or(page, |(_, rest)| rest);
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(1000).collect()
}

// ---------------------------------------------------------------------------------------------------
// DNS

/// A real DNS server on loopback (Debian's dnsmasq; .ci/run installs `dnsmasq-base`), authoritative
/// for `zone`: a name under it without a record is NXDOMAIN, as a real zone answers. `set` restarts it
/// with other TXT records (dnsmasq reads `--txt-record` only at start).
pub struct DnsServer {
    pub port: u16,
    zone: String,
    child: Option<Child>,
}

impl DnsServer {
    pub async fn start(zone: &str, records: &[(&str, &str)]) -> Self {
        let mut server = Self { port: free_port(), zone: zone.to_owned(), child: None };
        server.set(records).await;
        server
    }

    /// The server's address as `LATCHKEY_DNS_NAMESERVERS` takes it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub async fn set(&mut self, records: &[(&str, &str)]) {
        self.stop();
        let mut command = Command::new("/usr/sbin/dnsmasq");
        command.args([
            "--keep-in-foreground",
            &format!("--port={}", self.port),
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--no-negcache",
            "--cache-size=0",
            "--conf-file=/dev/null",
            "--pid-file=",
            &format!("--local=/{}/", self.zone),
        ]);
        for (name, value) in records {
            command.arg(format!("--txt-record={name},{value}"));
        }
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start dnsmasq (Debian package dnsmasq-base)");
        self.child = Some(child);
        // Ready when it answers (over TCP, which it serves too): a connect succeeds once it listens.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "dnsmasq did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An https identity provider run by Node.js from tests/sso (`npm ci --prefix tests/sso`): a fresh CA
/// the server is told to trust (`LATCHKEY_SSO_EXTRA_ROOTS`), a `localhost` certificate it issued, and
/// the process, stopped on drop.
pub struct NodeIdp {
    pub port: u16,
    pub ca_pem: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    tls: bool,
}

impl NodeIdp {
    pub fn prepare() -> Self {
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf").signed_by(&leaf_key, &ca, &ca_key).expect("sign");
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("ca");
        std::fs::write(dir.path().join("cert.pem"), leaf.pem()).expect("cert");
        std::fs::write(dir.path().join("key.pem"), leaf_key.serialize_pem()).expect("key");
        Self { port: free_port(), ca_pem: ca.pem(), dir, child: None, tls: true }
    }

    pub fn ca_file(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }

    /// Another provider on another port with the same certificate (so the one trusted CA covers
    /// both).
    pub fn alongside(&self) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        for file in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::copy(self.dir.path().join(file), dir.path().join(file)).expect("copy");
        }
        Self { port: free_port(), ca_pem: self.ca_pem.clone(), dir, child: None, tls: true }
    }

    /// Runs `tests/sso/{script}` with PORT, CERT, KEY and `env`; returns once it prints "listening".
    pub fn start(&mut self, script: &str, env: &[(&str, String)]) {
        let mut command = Command::new("node");
        command.arg(format!("{}/tests/sso/{script}", env!("CARGO_MANIFEST_DIR"))).env("PORT", self.port.to_string());
        if self.tls {
            command.env("CERT", self.dir.path().join("cert.pem")).env("KEY", self.dir.path().join("key.pem"));
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("node (tests/sso: npm ci)");
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        std::io::BufRead::read_line(&mut lines, &mut line).expect("idp output");
        assert_eq!(line.trim(), "listening", "the test IdP did not start");
        // Keep reading what it prints, so it never writes into a closed pipe.
        std::thread::spawn(move || for line in std::io::BufRead::lines(lines).map_while(Result::ok) { eprintln!("idp: {line}") });
        self.child = Some(child);
    }

    /// Runs the script over plain http (a browser test, where the IdP must be same-site with the
    /// http server: http://localhost on both).
    pub fn start_plain(&mut self, script: &str, env: &[(&str, String)]) {
        self.tls = false;
        self.start(script, env);
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://localhost:{}{path}", self.port)
    }

    /// A browser that keeps cookies, follows nothing on its own and trusts the IdP's test CA.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).expect("ca"))
            .build()
            .expect("client")
    }
}

impl Drop for NodeIdp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
