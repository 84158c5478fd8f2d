//! Client ID Metadata Documents over real HTTP and TLS: a client whose `client_id` is the https URL of
//! its own metadata document signs a user in with nothing registered here; documents that do not fit,
//! and URLs that aim at places they must not, are refused with an error page and never redirected to.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CALLBACK: &str = "http://127.0.0.1:4180/callback";

fn authorize_url(server: &Server, tenant: &str, client_id: &str, redirect_uri: &str, pkce: &Pkce) -> String {
    format!(
        "{}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid%20email&state=s1&code_challenge={}&code_challenge_method=S256",
        server.issuer(tenant),
        urlencode(client_id),
        urlencode(redirect_uri),
        pkce.challenge
    )
}

/// The error page an authorization request gets; asserts it did not redirect anywhere.
async fn refused(server: &Server, client_id: &str, redirect_uri: &str) -> String {
    let response = browser().get(authorize_url(server, "default", client_id, redirect_uri, &pkce())).send().await.expect("authorize");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{client_id}");
    assert!(response.headers().get("location").is_none());
    response.text().await.expect("page")
}

async fn discovery(server: &Server, tenant: &str) -> Value {
    api()
        .get(format!("{}/.well-known/oauth-authorization-server", server.issuer(tenant)))
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_described_by_its_metadata_document_signs_a_user_in() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let host = DocumentHost::start().await;
    let server = host.start_server(&deployment, &smtp, &[]).await;
    assert_eq!(discovery(&server, "default").await["client_id_metadata_document_supported"], true);

    let client_id = host.serve_client("/apps/notes.json", "Notes Agent", &[CALLBACK]);
    let pkce = pkce();
    let browser = browser();
    let start = authorize_url(&server, "default", &client_id, "http://127.0.0.1:51234/callback", &pkce);
    // The consent page names the host that publishes the document, and says nobody vetted it.
    let (_, consent) = walk_pages(&server, &smtp, &browser, &start, "notes-user@example.com", |page| page.contains("name=\"decision\"")).await;
    let consent = consent.expect("consent page");
    assert!(consent.contains("Allow Notes Agent?"), "{consent}");
    assert!(consent.contains("describes itself at <strong>localhost</strong>"), "{consent}");
    let callback = authorize_through_pages(&server, &smtp, &browser, &start, "notes-user@example.com").await;
    assert!(callback.starts_with("http://127.0.0.1:51234/callback?"), "{callback}");
    let code = query_param(&callback, "code").expect("code");

    // A public client: the token request carries the URL as client_id and no secret.
    let response = api()
        .post(server.url("token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:51234/callback"),
            ("client_id", &client_id),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.expect("json");
    assert_eq!(jwt_claims(tokens["access_token"].as_str().expect("at"))["client_id"], client_id.as_str());
    assert_eq!(jwt_claims(tokens["id_token"].as_str().expect("id"))["aud"], client_id.as_str());
    // Fetched once, then served from the cache for the whole flow.
    assert_eq!(host.fetches("/apps/notes.json"), 1);

    // The account page lists it with its host, and taking its access away works like for any app.
    let account = browser.get(server.url("account")).send().await.expect("account").text().await.expect("page");
    assert!(account.contains("Notes Agent") && account.contains("from localhost"), "{account}");

    // The document is what counts: a redirect URI it does not list is refused on the page.
    let page = refused(&server, &client_id, "http://127.0.0.1:4180/elsewhere").await;
    assert!(page.contains("not registered for it"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_that_do_not_fit_are_refused_and_nothing_is_redirected() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let host = DocumentHost::start().await;
    let server = host.start_server(&deployment, &smtp, &[("LATCHKEY_CLIENT_METADATA_TIMEOUT_MS", "1500")]).await;

    // The document names another client_id.
    host.serve("/wrong-id.json", Served::json(&json!({ "client_id": "https://localhost/other.json", "redirect_uris": [CALLBACK] })));
    assert!(refused(&server, &host.url("/wrong-id.json"), CALLBACK).await.contains("does not name this URL as its client_id"));
    // A shared secret in a public document.
    host.serve("/secret.json", Served::json(&json!({ "client_id": host.url("/secret.json"), "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "client_secret_basic" })));
    assert!(refused(&server, &host.url("/secret.json"), CALLBACK).await.contains("shared-secret"));
    // Not there; not JSON; too large (the limit is 5 KiB).
    assert!(refused(&server, &host.url("/missing.json"), CALLBACK).await.contains("answered HTTP 404"));
    host.serve("/html.json", Served { status: 200, headers: vec![], body: b"<html>".to_vec(), delay: Duration::ZERO });
    assert!(refused(&server, &host.url("/html.json"), CALLBACK).await.contains("is not JSON"));
    let padding = "x".repeat(6000);
    host.serve("/large.json", Served::json(&json!({ "client_id": host.url("/large.json"), "redirect_uris": [CALLBACK], "client_name": padding })));
    assert!(refused(&server, &host.url("/large.json"), CALLBACK).await.contains("larger than 5120 bytes"));
    // Too slow.
    let mut slow = Served::json(&json!({}));
    slow.delay = Duration::from_secs(4);
    host.serve("/slow.json", slow);
    assert!(refused(&server, &host.url("/slow.json"), CALLBACK).await.contains("did not answer in time"));
    // A redirect to another host is not followed; one on the same host is.
    host.serve("/moved.json", Served::redirect(&format!("https://127.0.0.1:{}/elsewhere.json", host.port)));
    assert!(refused(&server, &host.url("/moved.json"), CALLBACK).await.contains("redirected to another host"));
    assert_eq!(host.fetches("/elsewhere.json"), 0);
    let same_host = host.url("/same-host.json");
    host.serve("/same-host.json", Served::redirect("/same-host-target.json"));
    host.serve("/same-host-target.json", Served::json(&json!({ "client_id": same_host, "redirect_uris": [CALLBACK] })));
    let response = browser().get(authorize_url(&server, "default", &same_host, CALLBACK, &pkce())).send().await.expect("authorize");
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "a same-host redirect is followed");
    // A URL that is not a document URL, and an IP literal in private space (refused before connecting).
    assert!(refused(&server, "https://localhost/", CALLBACK).await.contains("must have a path"));
    assert!(refused(&server, "https://10.0.0.7/client.json", CALLBACK).await.contains("is not a public address"));
    assert!(refused(&server, "http://localhost/client.json", CALLBACK).await.contains("not registered here"));

    // Nothing was created by any of this.
    assert!(server.cli(&["client", "list"]).trim().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_refused_without_the_test_switch_and_closed_tenants_refuse_documents() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let host = DocumentHost::start().await;
    // Trusts the test CA but keeps the SSRF defence whole: localhost resolves only to loopback.
    let ca = host.ca_file.display().to_string();
    let server = Server::start(&deployment, &smtp, &[("LATCHKEY_CLIENT_METADATA_EXTRA_ROOTS", &ca)]).await;
    let client_id = host.serve_client("/apps/loopback.json", "Loopback", &[CALLBACK]);
    let page = refused(&server, &client_id, CALLBACK).await;
    assert!(page.contains("localhost is not a public address"), "{page}");
    assert_eq!(host.fetches("/apps/loopback.json"), 0, "no connection was made");

    server.cli(&["tenant", "create", "closed-co", "--name", "Closed Co"]);
    server.cli(&["tenant", "set", "closed-co", "--registration", "closed"]);
    assert!(discovery(&server, "closed-co").await.get("client_id_metadata_document_supported").is_none());
    let response = browser().get(authorize_url(&server, "closed-co", &client_id, CALLBACK, &pkce())).send().await.expect("authorize");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.expect("page").contains("does not accept applications described by a metadata document"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_fetches_are_rate_limited_per_caller_address() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let host = DocumentHost::start().await;
    let server = host.start_server(&deployment, &smtp, &[("LATCHKEY_RATE_CLIENT_METADATA_FETCH_PER_IP_PER_MINUTE", "2")]).await;
    let first = host.serve_client("/a.json", "A", &[CALLBACK]);
    let second = host.serve_client("/b.json", "B", &[CALLBACK]);
    let third = host.serve_client("/c.json", "C", &[CALLBACK]);
    for client_id in [&first, &second] {
        let response = browser().get(authorize_url(&server, "default", client_id, CALLBACK, &pkce())).send().await.expect("authorize");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{client_id}");
    }
    // A third new URL from the same address within the minute: refused without fetching.
    assert!(refused(&server, &third, CALLBACK).await.contains("Too many applications were looked up"));
    assert_eq!(host.fetches("/c.json"), 0);
    // Cached documents are not fetches: the first one still works.
    let response = browser().get(authorize_url(&server, "default", &first, CALLBACK, &pkce())).send().await.expect("authorize");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(host.fetches("/a.json"), 1);
}
