//! The server CPU of one complete passkey sign-in, many in parallel (not run by the test suite):
//!
//!   cargo build --release -p latchkey
//!   LATCHKEY_TEST_SERVER_BINARY=target/release/latchkey LATCHKEY_TEST_SERVER_CPU=0 \
//!     cargo test --test bench_signin -- --ignored --nocapture
//!
//! Each of `BENCH_USERS` people enrolls once through the hosted pages (email code, passkey, consent).
//! Then, `BENCH_ROUNDS` times each and all people at once, a browser with no session runs what a
//! returning person does: the client's authorization request → the sign-in page → "Sign in with a
//! passkey" (a discoverable assertion from a software authenticator) → the remembered consent lets the
//! authorization finish → the client exchanges the code (PKCE, client secret) for tokens. The server's
//! user + system CPU over the measured part, divided by the sign-ins, is the figure; one worker.

mod common;

use std::time::Instant;

use common::*;
use reqwest::StatusCode;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const REDIRECT: &str = "http://127.0.0.1:9/cb";

/// One returning person's sign-in, start to tokens; returns the access token.
async fn sign_in(server: &Server, client_id: &str, secret: &str, email: &str) -> String {
    let browser = browser();
    let pkce = pkce();
    let url = format!(
        "{}?response_type=code&client_id={client_id}&redirect_uri={REDIRECT}&scope=openid&code_challenge={}&code_challenge_method=S256&state=s",
        server.url("authorize"),
        pkce.challenge
    );
    let response = browser.get(&url).send().await.expect("authorize");
    let login = absolute(server, &location(&response));
    let page = browser.get(&login).send().await.expect("login page").text().await.expect("body");
    let csrf = data_attr(&page, "csrf").expect("data-csrf");
    let req = data_attr(&page, "req").expect("data-req");
    let (status, start) = passkey_post(server, &browser, &csrf, "passkey/authenticate/options", serde_json::json!({ "mode": "discoverable" })).await;
    assert_eq!(status, StatusCode::OK, "options: {start}");
    let options = serde_json::from_value(start["options"].clone()).expect("request options");
    let origin = url::Url::parse(&server.base).expect("origin");
    let credential = discoverable_assertion(email, origin, options);
    let (status, done) = passkey_post(server, &browser, &csrf, "passkey/authenticate", serde_json::json!({
        "ceremony": start["ceremony"], "mode": "discoverable", "credential": credential, "req": req,
    }))
    .await;
    assert_eq!(status, StatusCode::OK, "authenticate: {done}");
    let resume = absolute(server, done["next"].as_str().expect("next"));
    let callback = location(&browser.get(&resume).send().await.expect("resume"));
    let code = query_param(&callback, "code").unwrap_or_else(|| panic!("no code in {callback}"));
    let (status, tokens) = exchange_code(server, client_id, secret, &code, REDIRECT, &pkce.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens["access_token"].as_str().expect("access token").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; see the module comment"]
async fn passkey_sign_in_cpu() {
    let users = env_or("BENCH_USERS", 16) as usize;
    let rounds = env_or("BENCH_ROUNDS", 25) as usize;
    let alg = std::env::var("BENCH_ID_TOKEN_ALG").unwrap_or_else(|_| "ES256".into());
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(
        &deployment,
        &smtp,
        &[
            ("LATCHKEY_WORKERS", "1"),
            ("LATCHKEY_RATE_TOKEN_PER_CLIENT_PER_SECOND", "1000000"),
            ("LATCHKEY_RATE_PASSKEY_CEREMONIES_PER_IP_PER_MINUTE", "1000000"),
            ("LATCHKEY_RATE_AUTHORIZATION_REQUESTS_PER_IP_PER_MINUTE", "1000000"),
            ("LATCHKEY_RATE_CODE_SEND_PER_IP_PER_HOUR", "1000000"),
            ("LATCHKEY_RATE_CODE_CHECK_PER_IP_PER_MINUTE", "1000000"),
        ],
    )
    .await;
    // Not first-party: the consent page is part of the first sign-in, and remembered for the rest.
    let (client_id, secret) = server.create_client(&[
        "--name", "Bench", "--confidential", "--redirect-uri", REDIRECT, "--scope", "openid", "--id-token-alg", &alg,
        "--access-token-alg", "ES256",
    ]);
    let secret = secret.expect("secret");
    let emails: Vec<String> = (0..users).map(|i| format!("bench{i}@example.com")).collect();
    for email in &emails {
        let url = format!(
            "{}?response_type=code&client_id={client_id}&redirect_uri={REDIRECT}&scope=openid&code_challenge={}&code_challenge_method=S256",
            server.url("authorize"),
            pkce().challenge
        );
        let callback = authorize_through_pages(&server, &smtp, &browser(), &url, email).await;
        assert!(query_param(&callback, "code").is_some(), "enrollment of {email}: {callback}");
    }
    // One sign-in each before measuring: every code path and cache is warm.
    for email in &emails {
        sign_in(&server, &client_id, &secret, email).await;
    }

    let pid = server.pid();
    let cpu_before = cpu_ticks(pid);
    let started = Instant::now();
    let server = std::sync::Arc::new(server);
    let mut workers = Vec::new();
    for email in emails {
        let (server, client_id, secret) = (server.clone(), client_id.clone(), secret.clone());
        workers.push(tokio::spawn(async move {
            for _ in 0..rounds {
                sign_in(&server, &client_id, &secret, &email).await;
            }
        }));
    }
    for worker in workers {
        worker.await.expect("worker");
    }
    let elapsed = started.elapsed();
    let ticks = cpu_ticks(pid) - cpu_before;
    let sign_ins = users * rounds;
    // Clock ticks are 10 ms.
    let cpu_ms = ticks as f64 * 10.0 / sign_ins as f64;
    println!(
        "BENCH passkey sign-in: {sign_ins} sign-ins ({users} in parallel, ID token {alg}), server CPU {:.3} ms per sign-in \
         ({ticks} ticks), {:.0} sign-ins/s wall",
        cpu_ms,
        sign_ins as f64 / elapsed.as_secs_f64()
    );
}
