//! SCIM provisioning throughput (not run by the test suite; docs/benchmarks.md):
//!
//!   cargo build --release -p latchkey
//!   LATCHKEY_TEST_SERVER_BINARY=target/release/latchkey LATCHKEY_TEST_SERVER_CPU=0 \
//!     cargo test --test bench_scim -- --ignored --nocapture
//!
//! One server worker pinned to one core. `BENCH_SCIM_USERS` users (default 10,000) are created by
//! `BENCH_SCIM_CLIENTS` concurrent clients (default 8), each a POST /Users of an address in the
//! organization's verified domain (so each also makes and links an account and a membership); then
//! 100 groups are created and every user is added to one of them by a PATCH naming that one member
//! (what Entra sends); then `userName eq` lookups, one at a time. For each phase: requests/s, p50 /
//! p99 latency and the server's CPU per request.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use serde_json::json;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

fn report(phase: &str, requests: usize, elapsed: Duration, mut latencies: Vec<Duration>, ticks: u64) {
    latencies.sort();
    println!(
        "BENCH scim {phase}: {requests} requests, {:.0}/s wall, p50 {:.2} ms, p99 {:.2} ms, server CPU {:.3} ms per request",
        requests as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        ticks as f64 * 10.0 / requests as f64,
    );
}

/// Runs `jobs` on `clients` concurrent workers; each job is one request returning its status.
async fn run<F, Fut>(clients: usize, jobs: usize, job: F) -> (Duration, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = StatusCode> + Send,
{
    let job = std::sync::Arc::new(job);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..clients {
        let (job, next) = (job.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= jobs {
                    return latencies;
                }
                let at = Instant::now();
                let status = job(n).await;
                assert!(status.is_success(), "request {n}: {status}");
                latencies.push(at.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    (started.elapsed(), latencies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; see the module comment"]
async fn scim_provisioning_throughput() {
    let users = env_or("BENCH_SCIM_USERS", 10_000) as usize;
    let clients = env_or("BENCH_SCIM_CLIENTS", 8) as usize;
    let lookups = env_or("BENCH_SCIM_LOOKUPS", 2_000) as usize;
    let mut dns = DnsServer::start("acme.test", &[]).await;
    let (deployment, smtp) = (Deployment::new().await, SmtpCatcher::start().await);
    let dns_address = dns.address();
    let server = Server::start(
        &deployment,
        &smtp,
        &[("LATCHKEY_WORKERS", "1"), ("LATCHKEY_DNS_NAMESERVERS", dns_address.as_str()), ("LATCHKEY_RATE_SCIM_PER_TOKEN_PER_SECOND", "1000000")],
    )
    .await;
    server.cli(&["org", "create", "acme"]);
    let added = server.cli(&["org", "domain", "add", "acme", "acme.test"]);
    let value = added.lines().last().expect("record").split('\t').nth(2).expect("value").to_owned();
    dns.set(&[("_latchkey-challenge.acme.test", &value)]).await;
    server.cli(&["org", "domain", "verify", "acme", "acme.test"]);
    let out = server.cli(&["org", "scim", "token", "acme"]);
    let base = out.lines().find_map(|l| l.strip_prefix("SCIM base URL (Entra: Tenant URL): ")).expect("base").to_owned();
    let token = out.lines().last().expect("token").trim().to_owned();
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("client");
    let pid = server.pid();
    println!("BENCH scim engine: {}", deployment.engine);

    // Users.
    let ids = std::sync::Arc::new(std::sync::Mutex::new(vec![String::new(); users]));
    let cpu = cpu_ticks(pid);
    let (elapsed, latencies) = {
        let (http, base, token, ids) = (http.clone(), base.clone(), token.clone(), ids.clone());
        run(clients, users, move |n| {
            let (http, base, token, ids) = (http.clone(), base.clone(), token.clone(), ids.clone());
            async move {
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": format!("person{n}@acme.test"),
                    "externalId": format!("ext-{n}"),
                    "name": { "givenName": "Person", "familyName": format!("Number {n}") },
                    "emails": [{ "value": format!("person{n}@acme.test"), "type": "work", "primary": true }],
                    "active": true,
                });
                let response = http.post(format!("{base}/Users")).bearer_auth(&token).header("content-type", "application/scim+json").body(body.to_string()).send().await.expect("post");
                let status = response.status();
                let created: serde_json::Value = response.json().await.expect("json");
                ids.lock().expect("ids")[n] = created["id"].as_str().unwrap_or_default().to_owned();
                status
            }
        })
        .await
    };
    report("user create", users, elapsed, latencies, cpu_ticks(pid) - cpu);

    // Groups, and every user added to one by a PATCH.
    let mut groups = Vec::new();
    for g in 0..100 {
        let response = http
            .post(format!("{base}/Groups"))
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body(json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": format!("Group {g}") }).to_string())
            .send()
            .await
            .expect("group");
        assert_eq!(response.status(), StatusCode::CREATED);
        groups.push(response.json::<serde_json::Value>().await.expect("json")["id"].as_str().expect("id").to_owned());
    }
    let groups = std::sync::Arc::new(groups);
    let ids: std::sync::Arc<Vec<String>> = std::sync::Arc::new(ids.lock().expect("ids").clone());
    let cpu = cpu_ticks(pid);
    let (elapsed, latencies) = {
        let (http, base, token, ids, groups) = (http.clone(), base.clone(), token.clone(), ids.clone(), groups.clone());
        run(clients, users, move |n| {
            let (http, base, token, ids, groups) = (http.clone(), base.clone(), token.clone(), ids.clone(), groups.clone());
            async move {
                let body = json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{ "op": "Add", "path": "members", "value": [{ "value": ids[n] }] }] });
                http.patch(format!("{base}/Groups/{}", groups[n % 100])).bearer_auth(&token).header("content-type", "application/scim+json").body(body.to_string()).send().await.expect("patch").status()
            }
        })
        .await
    };
    report("group member add (PATCH)", users, elapsed, latencies, cpu_ticks(pid) - cpu);

    // Lookups, one at a time (Entra's query before each change).
    let cpu = cpu_ticks(pid);
    let (elapsed, latencies) = {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        run(1, lookups, move |n| {
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            async move {
                let wanted = (n * 7919) % users;
                let response = http.get(format!("{base}/Users?filter=userName%20eq%20%22person{wanted}@acme.test%22")).bearer_auth(&token).send().await.expect("get");
                let status = response.status();
                let found: serde_json::Value = response.json().await.expect("json");
                assert_eq!(found["totalResults"], 1);
                status
            }
        })
        .await
    };
    report(&format!("userName eq lookup at {users} users"), lookups, elapsed, latencies, cpu_ticks(pid) - cpu);
}
