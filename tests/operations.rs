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
