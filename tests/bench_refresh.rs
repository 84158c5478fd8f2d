//! Load generator for refresh-token rotation (run by bench/run.sh, not by the test suite):
//! `cargo test --release --test bench_refresh -- --ignored --nocapture`.
//!
//! oha repeats one request body, but every refresh rotates the token, so a fixed body would be a reuse
//! after the first request. Here each of `BENCH_CONC` workers follows its own family: it signs in once
//! (hosted pages, SMTP code), then refreshes in a loop for `BENCH_SECONDS`, always with the token it
//! just received. Every request is a full rotation persisted in the database.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "benchmark; run through bench/run.sh"]
async fn refresh_rotation_load() {
    let concurrency = env_or("BENCH_CONC", 32) as usize;
    let seconds = env_or("BENCH_SECONDS", 15);
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    // The server's own pool size (one SQLite connection per core it may run on) unless
    // BENCH_DB_CONNECTIONS sets one; the harness's fixed test size would not be what a deployment runs.
    let connections = std::env::var("BENCH_DB_CONNECTIONS").unwrap_or_default();
    let server = Server::start(
        &deployment,
        &smtp,
        &[
            ("LATCHKEY_RATE_TOKEN_PER_CLIENT_PER_SECOND", "1000000"),
            ("LATCHKEY_WORKERS", "1"),
            ("LATCHKEY_DATABASE_MAX_CONNECTIONS", &connections),
        ],
    )
    .await;
    let redirect = "http://127.0.0.1:9/cb";
    // The ID token's algorithm is the client's registration (RS256 is the OIDC default; ES256 is 20x
    // cheaper to sign). BENCH_ID_TOKEN_ALG picks it, and the result line says which was measured.
    let id_token_alg = std::env::var("BENCH_ID_TOKEN_ALG").unwrap_or_else(|_| "RS256".into());
    let (client_id, secret) = server.create_client(&["--name", "Bench", "--confidential", "--first-party", "--redirect-uri", redirect, "--scope", "openid offline_access", "--id-token-alg", &id_token_alg]);
    let secret = secret.expect("secret");

    let browser = browser();
    let mut chains = Vec::new();
    for i in 0..concurrency {
        let pkce = pkce();
        let url = format!(
            "{}?response_type=code&client_id={client_id}&redirect_uri={redirect}&scope=openid%20offline_access&code_challenge={}&code_challenge_method=S256",
            server.url("authorize"),
            pkce.challenge
        );
        let callback = if i == 0 {
            authorize_through_pages(&server, &smtp, &browser, &url, "bench@example.com").await
        } else {
            location(&browser.get(&url).send().await.expect("authorize"))
        };
        let code = query_param(&callback, "code").expect("code");
        let (_, tokens) = exchange_code(&server, &client_id, &secret, &code, redirect, &pkce.verifier).await;
        chains.push(tokens["refresh_token"].as_str().expect("refresh token").to_owned());
    }

    let pid = server.pid();
    let rss_before = rss_kb(pid);
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().expect("client");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let cpu_before = cpu_ticks(pid);
    let mut workers = Vec::new();
    for mut refresh in chains {
        let (http, url, id, secret) = (http.clone(), server.url("token"), client_id.clone(), secret.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                let response = http
                    .post(&url)
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())])
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().is_success() => {
                        let body: serde_json::Value = r.json().await.expect("json");
                        refresh = body["refresh_token"].as_str().expect("rotated token").to_owned();
                        assert!(body["id_token"].is_string() && body["access_token"].is_string());
                        latencies.push(t.elapsed());
                    }
                    _ => {
                        failures += 1;
                        break;
                    }
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for worker in workers {
        let (l, f) = worker.await.expect("worker");
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(pid) - cpu_before) as f64 / 100.0 / elapsed * 100.0;
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "BENCH refresh engine={} id_token={id_token_alg} conc={concurrency} req/s={:.0} p50_ms={:.2} p99_ms={:.2} ok={} non2xx={failures} server_cpu%={cpu:.0} rss_before_mb={:.1} rss_after_mb={:.1}",
        deployment.engine,
        latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        latencies.len(),
        rss_before as f64 / 1024.0,
        rss_kb(pid) as f64 / 1024.0,
    );
    assert_eq!(failures, 0, "every rotation must succeed");
}
