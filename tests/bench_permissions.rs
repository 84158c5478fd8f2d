//! Load generator for permission decisions (not part of the test suite):
//! `LATCHKEY_TEST_SERVER_CPU=0 taskset -c 1 cargo test --release --test bench_permissions -- --ignored --nocapture`
//! (bench/permissions.sh does exactly that).
//!
//! Two runs against `POST /v1/decisions`, each decision allowed, signed (Ed25519 receipt) and audited:
//! `cached` repeats one access token (verified once, then a cache lookup); `first_seen` sends each token
//! once (every request pays the signature verification). Tokens are real Latchkey client-credentials
//! tokens minted before the run. Reports decisions/s, p50/p99 and the permission API's CPU time per
//! decision.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::*;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const RULES: &str = r#"
[[rules]]
tool = "bench"
caller = "agent"
effect = "allow"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "benchmark; run through bench/permissions.sh"]
async fn permission_decision_load() {
    let concurrency = env_or("BENCH_CONC", 32) as usize;
    let seconds = env_or("BENCH_SECONDS", 10);
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    // The identity server only mints tokens here; it is not pinned, and idle during the runs.
    let server = {
        let cpu = std::env::var("LATCHKEY_TEST_SERVER_CPU").ok();
        // SAFETY: single-threaded at this point of the test (no other task reads the environment).
        unsafe { std::env::remove_var("LATCHKEY_TEST_SERVER_CPU") };
        let server = Server::start(&deployment, &smtp, &[("LATCHKEY_RATE_TOKEN_PER_CLIENT_PER_SECOND", "1000000")]).await;
        if let Some(cpu) = cpu {
            unsafe { std::env::set_var("LATCHKEY_TEST_SERVER_CPU", cpu) };
        }
        server
    };
    let permissions = PermissionApi::start(&[server.issuer("default")], RULES).await;
    server.cli(&["resource", "create", "--uri", &permissions.resource, "--scope", "bench"]);
    let (client_id, secret) = server.create_client(&["--name", "Bench agent", "--confidential", "--grant-type", "client_credentials"]);
    let secret = secret.expect("secret");

    // Enough distinct tokens for the first-seen run (minted with the same concurrency).
    let wanted = env_or("BENCH_TOKENS", 40_000) as usize;
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().expect("client");
    let minted = Arc::new(std::sync::Mutex::new(Vec::with_capacity(wanted)));
    let mut minters = Vec::new();
    for _ in 0..concurrency {
        let (http, url, id, secret, resource, minted) =
            (http.clone(), server.url("token"), client_id.clone(), secret.clone(), permissions.resource.clone(), minted.clone());
        minters.push(tokio::spawn(async move {
            while minted.lock().expect("tokens").len() < wanted {
                let body: serde_json::Value = http
                    .post(&url)
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "client_credentials"), ("resource", resource.as_str())])
                    .send()
                    .await
                    .expect("token")
                    .json()
                    .await
                    .expect("json");
                minted.lock().expect("tokens").push(body["access_token"].as_str().expect("access token").to_owned());
            }
        }));
    }
    for minter in minters {
        minter.await.expect("minter");
    }
    let tokens: Arc<Vec<String>> = Arc::new(std::mem::take(&mut *minted.lock().expect("tokens")));

    let pid = permissions.pid();
    let rss_idle = rss_kb(pid);
    for mode in ["cached", "first_seen"] {
        let next = Arc::new(AtomicUsize::new(1));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let cpu_before = cpu_ticks(pid);
        let mut workers = Vec::new();
        for _ in 0..concurrency {
            let (http, url, tokens, next) = (http.clone(), permissions.url("/v1/decisions"), tokens.clone(), next.clone());
            workers.push(tokio::spawn(async move {
                let (mut latencies, mut failures) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let token = if mode == "cached" { &tokens[0] } else {
                        let Some(token) = tokens.get(next.fetch_add(1, Ordering::Relaxed)) else { break };
                        token
                    };
                    let t = Instant::now();
                    let response = http.post(&url).bearer_auth(token).json(&serde_json::json!({ "tool": "bench" })).send().await;
                    match response {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            latencies.push(t.elapsed());
                        }
                        _ => failures += 1,
                    }
                }
                (latencies, failures)
            }));
        }
        let (mut latencies, mut failures) = (Vec::new(), 0);
        for worker in workers {
            let (l, f) = worker.await.expect("worker");
            latencies.extend(l);
            failures += f;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu_seconds = (cpu_ticks(pid) - cpu_before) as f64 / 100.0;
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64() * 1000.0;
        println!(
            "BENCH decisions mode={mode} conc={concurrency} decisions/s={:.0} p50_ms={:.2} p99_ms={:.2} ok={} non2xx={failures} server_cpu_us_per_decision={:.1} server_cpu%={:.0} rss_idle_mb={:.1} rss_mb={:.1}",
            latencies.len() as f64 / elapsed,
            pct(0.50),
            pct(0.99),
            latencies.len(),
            cpu_seconds * 1e6 / latencies.len() as f64,
            cpu_seconds / elapsed * 100.0,
            rss_idle as f64 / 1024.0,
            rss_kb(pid) as f64 / 1024.0,
        );
        assert_eq!(failures, 0, "every decision must be an allow");
    }
    assert!(permissions.audit_rows().await.len() > 1000, "decisions were audited");
}
