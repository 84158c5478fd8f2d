//! `prompt`, `max_age`, consent memory, refresh-family lifetimes and rate limits.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:9/cb";
const EMAIL: &str = "pat@example.com";

struct Fixture {
    smtp: SmtpCatcher,
    server: Server,
    _deployment: Deployment,
    client_id: String,
    secret: String,
}

async fn fixture(extra: &[(&str, &str)]) -> Fixture {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, extra).await;
    // Not first-party: the consent page is part of the flow.
    let (client_id, secret) = server.create_client(&["--name", "Third Party", "--confidential", "--redirect-uri", REDIRECT]);
    Fixture { smtp, server, _deployment: deployment, client_id, secret: secret.expect("secret") }
}

impl Fixture {
    fn url(&self, pkce: &Pkce, extra: &str) -> String {
        format!(
            "{}?response_type=code&client_id={}&redirect_uri={REDIRECT}&scope=openid&code_challenge={}&code_challenge_method=S256&nonce=n{extra}",
            self.server.url("authorize"),
            self.client_id,
            pkce.challenge
        )
    }

    async fn id_token_claims(&self, callback: &str, pkce: &Pkce) -> Value {
        let code = query_param(callback, "code").unwrap_or_else(|| panic!("no code in {callback}"));
        let (status, tokens) = exchange_code(&self.server, &self.client_id, &self.secret, &code, REDIRECT, &pkce.verifier).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        jwt_claims(tokens["id_token"].as_str().expect("id_token"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_and_max_age_force_what_they_say() {
    let f = fixture(&[]).await;
    let browser = browser();
    let pkce = pkce();
    let first = authorize_through_pages(&f.server, &f.smtp, &browser, &f.url(&pkce, ""), EMAIL).await;
    let first_auth_time = f.id_token_claims(&first, &pkce).await["auth_time"].as_i64().expect("auth_time");
    assert_eq!(f.smtp.mails_to(EMAIL).len(), 1);

    // Signed in and consented: prompt=none succeeds silently.
    let pkce = common::pkce();
    let silent = browser.get(f.url(&pkce, "&prompt=none")).send().await.expect("authorize");
    assert!(query_param(&location(&silent), "code").is_some(), "prompt=none with a session and consent");

    // prompt=consent shows the consent page again although consent is remembered.
    let pkce = common::pkce();
    let response = browser.get(f.url(&pkce, "&prompt=consent")).send().await.expect("authorize");
    assert!(location(&response).contains("/consent?req="));

    // prompt=login, max_age=0 and a stronger acr demand a fresh authentication: the passkey again (no
    // new email code), and the ID token says so.
    let mut last_auth_time = first_auth_time;
    // (The first sign-in enrolled the passkey: acr urn:latchkey:acr:mfa, which phr outranks.)
    for extra in ["&acr_values=phr", "&prompt=login", "&max_age=0"] {
        // auth_time has one-second resolution; max_age=0 is met by a sign-in in the same second.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let pkce = common::pkce();
        let start = browser.get(f.url(&pkce, extra)).send().await.expect("authorize");
        assert!(location(&start).contains("/passkey?req=") && location(&start).contains("step_up=1"), "{extra} must ask for the passkey");
        let callback = authorize_through_pages(&f.server, &f.smtp, &browser, &f.url(&pkce, extra), EMAIL).await;
        assert_eq!(f.smtp.mails_to(EMAIL).len(), 1, "{extra}: no new email code");
        let claims = f.id_token_claims(&callback, &pkce).await;
        let auth_time = claims["auth_time"].as_i64().expect("auth_time");
        assert!(auth_time > last_auth_time, "{extra}: auth_time reflects the new assertion");
        assert_eq!(claims["acr"], "phr", "{extra}");
        assert_eq!(claims["amr"], serde_json::json!(["hwk", "user", "mfa"]), "{extra}");
        last_auth_time = auth_time;
    }
    // Now at phr, the same acr request is met silently; an essential acr nobody can meet is an error.
    let pkce = common::pkce();
    let met = browser.get(f.url(&pkce, "&acr_values=phr&prompt=none")).send().await.expect("authorize");
    assert!(query_param(&location(&met), "code").is_some(), "{}", location(&met));
    let claims = r#"{"id_token":{"acr":{"essential":true,"values":["urn:example:gold"]}}}"#;
    let unmet = browser
        .get(format!("{}&claims={}", f.url(&common::pkce(), ""), urlencode(claims)))
        .send()
        .await
        .expect("authorize");
    assert_eq!(query_param(&location(&unmet), "error").as_deref(), Some("unmet_authentication_requirements"));

    // A generous max_age is satisfied by the existing session.
    let pkce = common::pkce();
    let response = browser.get(f.url(&pkce, "&max_age=3600")).send().await.expect("authorize");
    assert!(query_param(&location(&response), "code").is_some());

    // Denying consent returns access_denied to the client.
    let other = common::browser();
    let pkce = common::pkce();
    let mut next = f.url(&pkce, "&state=deny-me&prompt=consent");
    let mut codes_seen = f.smtp.code_count(EMAIL);
    for _ in 0..10 {
        if next.starts_with(REDIRECT) {
            break;
        }
        let response = other.get(&next).send().await.expect("get");
        if response.status() == StatusCode::SEE_OTHER {
            next = absolute(&f.server, &location(&response));
            if next.starts_with(REDIRECT) {
                break;
            }
            continue;
        }
        let page = response.text().await.expect("page");
        if data_attr(&page, "mode").is_some_and(|m| m == "verify") {
            next = absolute(&f.server, &passkey_step(&f.server, &other, &page, EMAIL).await);
            continue;
        }
        let csrf = hidden_input(&page, "csrf").expect("csrf");
        let req = hidden_input(&page, "req").expect("req");
        let (action, field, value) = if page.contains("name=\"email\"") {
            ("login", "email", EMAIL.to_owned())
        } else if page.contains("name=\"code\"") {
            codes_seen += 1;
            ("login/code", "code", f.smtp.code_for(EMAIL, codes_seen).await)
        } else {
            ("consent", "decision", "deny".to_owned())
        };
        let response = other.post(f.server.url(action)).form(&[("csrf", csrf.as_str()), ("req", req.as_str()), (field, value.as_str())]).send().await.expect("post");
        next = absolute(&f.server, &location(&response));
    }
    assert!(next.starts_with(REDIRECT), "{next}");
    assert_eq!(query_param(&next, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&next, "state").as_deref(), Some("deny-me"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_family_idle_lifetime_ends_it() {
    let f = fixture(&[("LATCHKEY_REFRESH_IDLE_TTL", "1")]).await;
    let browser = browser();
    let pkce = pkce();
    let callback = authorize_through_pages(&f.server, &f.smtp, &browser, &f.url(&pkce, ""), EMAIL).await;
    let code = query_param(&callback, "code").expect("code");
    let (_, tokens) = exchange_code(&f.server, &f.client_id, &f.secret, &code, REDIRECT, &pkce.verifier).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = token_request(&f.server, &f.client_id, &f.secret, &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().expect("rt"))]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after() {
    let f = fixture(&[("LATCHKEY_RATE_TOKEN_PER_CLIENT_PER_SECOND", "1"), ("LATCHKEY_RATE_CODE_SEND_PER_EMAIL_PER_HOUR", "3")]).await;
    let (worker, secret) = f.server.create_client(&["--name", "W", "--confidential", "--grant-type", "client_credentials", "--scope", "jobs"]);
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let response = api()
            .post(f.server.url("token"))
            .basic_auth(&worker, secret.as_deref())
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token");
        let status = response.status();
        statuses.push(status);
        if status == StatusCode::TOO_MANY_REQUESTS {
            retry_after = response.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_owned());
            assert_eq!(response.json::<Value>().await.expect("json")["error"], "temporarily_unavailable");
        }
    }
    assert_eq!(statuses[0], StatusCode::OK);
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    assert!(retry_after.expect("Retry-After").parse::<u64>().expect("seconds") >= 1);

    // Code sending per email address: the burst is a third of the hourly quota (1 here).
    let browser = browser();
    let page = browser.get(f.server.url("login")).send().await.expect("login").text().await.expect("page");
    let csrf = hidden_input(&page, "csrf").expect("csrf");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = browser.post(f.server.url("login")).form(&[("csrf", csrf.as_str()), ("email", "flood@example.com")]).send().await.expect("send");
        statuses.push(response.status());
    }
    assert_eq!(statuses[0], StatusCode::SEE_OTHER);
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    f.smtp.code_for("flood@example.com", 1).await;
    // Mail leaves through the worker: give a stray second message time to arrive.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(f.smtp.mails_to("flood@example.com").len(), 1, "no mail beyond the limit");
}
