//! Passkeys end to end over HTTP, with a software authenticator (webauthn-authenticator-rs SoftPasskey)
//! doing what passkey.js does in a browser: mandatory enrollment, confirmation, recovery codes, and the
//! ceremony failure paths. Discoverable (usernameless) sign-in needs a resident-key authenticator and is
//! left to the browser tests.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use webauthn_authenticator_rs::{AuthenticatorBackend, WebauthnAuthenticator, softpasskey::SoftPasskey};

const REDIRECT: &str = "http://127.0.0.1:9/cb";

fn actions(f: &Fixture) -> Vec<String> {
    f.server.audit_actions().iter().map(|e| e["action"].as_str().unwrap_or_default().to_owned()).collect()
}

struct Fixture {
    smtp: SmtpCatcher,
    server: Server,
    deployment: Deployment,
    client_id: String,
    secret: String,
}

async fn fixture() -> Fixture {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    let (client_id, secret) = server.create_client(&["--name", "App", "--confidential", "--first-party", "--redirect-uri", REDIRECT]);
    Fixture { smtp, server, deployment, client_id, secret: secret.expect("secret") }
}

impl Fixture {
    fn authorize_url(&self, pkce: &Pkce, extra: &str) -> String {
        format!(
            "{}?response_type=code&client_id={}&redirect_uri={REDIRECT}&scope=openid&code_challenge={}&code_challenge_method=S256{extra}",
            self.server.url("authorize"),
            self.client_id,
            pkce.challenge
        )
    }

    async fn id_token(&self, callback: &str, pkce: &Pkce) -> Value {
        let code = query_param(callback, "code").unwrap_or_else(|| panic!("no code in {callback}"));
        let (status, tokens) = exchange_code(&self.server, &self.client_id, &self.secret, &code, REDIRECT, &pkce.verifier).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        jwt_claims(tokens["id_token"].as_str().expect("id_token"))
    }

    /// Signs in by email code only (no passkey step) and returns the page that follows.
    async fn email_code_only(&self, browser: &reqwest::Client, email: &str, start: &str) -> (String, String) {
        let mut next = start.to_owned();
        let mails_before = self.smtp.code_count(email);
        loop {
            let response = browser.get(&next).send().await.expect("GET");
            if response.status() == StatusCode::SEE_OTHER || response.status() == StatusCode::FOUND {
                next = absolute(&self.server, &location(&response));
                continue;
            }
            let page = response.text().await.expect("page");
            let Some(csrf) = hidden_input(&page, "csrf") else { return (next, page) };
            let req = hidden_input(&page, "req").unwrap_or_default();
            let (action, field, value) = if page.contains("name=\"code\"") {
                ("login/code", "code", self.smtp.code_for(email, mails_before + 1).await)
            } else if page.contains("name=\"email\"") {
                ("login", "email", email.to_owned())
            } else {
                return (next, page);
            };
            let response = browser
                .post(self.server.url(action))
                .form(&[("csrf", csrf.as_str()), ("req", req.as_str()), (field, value.as_str())])
                .send()
                .await
                .expect("POST");
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
            next = absolute(&self.server, &location(&response));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_code_alone_can_do_nothing_but_enroll() {
    let f = fixture().await;
    let browser = browser();
    let email = "new@example.com";
    let pkce = pkce();
    let (at, page) = f.email_code_only(&browser, email, &f.authorize_url(&pkce, "")).await;
    assert!(at.contains("/passkey?req="), "the authorization waits for a passkey: {at}");
    assert_eq!(data_attr(&page, "mode").as_deref(), Some("enroll"));
    assert!(page.contains("Secure your account with a passkey"));

    // The single-factor session gets no code silently, and no account page.
    let silent = browser.get(f.authorize_url(&common::pkce(), "&prompt=none")).send().await.expect("authorize");
    let callback = location(&silent);
    assert_eq!(query_param(&callback, "error").as_deref(), Some("interaction_required"), "{callback}");
    let account = browser.get(f.server.url("account")).send().await.expect("account");
    assert!(location(&account).ends_with("/passkey"), "account page needs a passkey first");

    // Confirming is not possible without a passkey, and nothing is reachable with a forged CSRF header.
    let csrf = data_attr(&page, "csrf").expect("csrf");
    let (status, body) = passkey_post(&f.server, &browser, &csrf, "passkey/authenticate/options", json!({ "mode": "session" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = passkey_post(&f.server, &browser, "forged-token-forged-token-forged-token", "passkey/register/options", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Enrolling finishes the authorization, and the tokens say how the user signed in.
    let callback = authorize_through_pages(&f.server, &f.smtp, &browser, &at, email).await;
    let claims = f.id_token(&callback, &pkce).await;
    assert_eq!(claims["amr"], json!(["otp", "hwk", "user", "mfa"]));
    assert_eq!(claims["acr"], "urn:latchkey:acr:mfa");
    assert!(actions(&f).iter().any(|a| a == "passkey.register"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_user_confirms_with_the_passkey_and_gets_phishing_resistant_tokens() {
    let f = fixture().await;
    let email = "back@example.com";
    let pkce = pkce();
    authorize_through_pages(&f.server, &f.smtp, &browser(), &f.authorize_url(&pkce, ""), email).await;

    // A new browser: email code, then the passkey (not a second enrollment).
    let browser = browser();
    let pkce = common::pkce();
    let (at, page) = f.email_code_only(&browser, email, &f.authorize_url(&pkce, "")).await;
    assert!(at.contains("/passkey?req="));
    assert_eq!(data_attr(&page, "mode").as_deref(), Some("verify"));
    // An email-code session of a user who has a passkey may not add another one.
    let csrf = data_attr(&page, "csrf").expect("csrf");
    let (status, body) = passkey_post(&f.server, &browser, &csrf, "passkey/register/options", json!({})).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("step_up_required")));

    let callback = authorize_through_pages(&f.server, &f.smtp, &browser, &at, email).await;
    let claims = f.id_token(&callback, &pkce).await;
    assert_eq!(claims["amr"], json!(["hwk", "user", "mfa"]));
    assert_eq!(claims["acr"], "phr");
    assert!(actions(&f).iter().any(|a| a == "signin.passkey"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_codes_are_shown_once_work_once_and_force_a_new_passkey() {
    let f = fixture().await;
    let email = "lost@example.com";
    authorize_through_pages(&f.server, &f.smtp, &browser(), &f.authorize_url(&pkce(), ""), email).await;
    let codes = recovery_codes_of(email);
    assert_eq!(codes.len(), 10);
    let mut unique = codes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10, "ten different codes");

    // The device is gone. A wrong code changes nothing; a right one signs in, once.
    lose_authenticator(email);
    let browser = browser();
    let recover = |code: String| {
        let browser = browser.clone();
        let server_url = f.server.url("login/recovery");
        async move {
            let page = browser.get(&server_url).send().await.expect("form").text().await.expect("page");
            let csrf = hidden_input(&page, "csrf").expect("csrf");
            browser
                .post(&server_url)
                .form(&[("csrf", csrf.as_str()), ("email", email), ("code", code.as_str())])
                .send()
                .await
                .expect("POST")
        }
    };
    let wrong = recover("aaaaa-aaaaa".into()).await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let used = codes[3].to_uppercase().replace('-', " ");
    let accepted = recover(used.clone()).await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    assert!(location(&accepted).ends_with("/passkey"), "{}", location(&accepted));
    // The user is told.
    f.smtp.mail_containing(email, "A recovery code was just used").await;
    let again = recover(codes[3].clone()).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST, "a code works once");

    // The recovery session can only enroll: the authorization waits for the new passkey.
    let pkce = common::pkce();
    let start = browser.get(f.authorize_url(&pkce, "")).send().await.expect("authorize");
    let at = absolute(&f.server, &location(&start));
    assert!(at.contains("/passkey?req="));
    let page = browser.get(&at).send().await.expect("page").text().await.expect("page");
    assert_eq!(data_attr(&page, "mode").as_deref(), Some("enroll"));
    let callback = authorize_through_pages(&f.server, &f.smtp, &browser, &at, email).await;
    assert!(query_param(&callback, "code").is_some());
    let account = browser.get(f.server.url("account")).send().await.expect("account").text().await.expect("page");
    assert!(account.contains("Test key"), "the account page lists the passkeys");

    // Re-enrolling after a recovery issued a new set: the old codes are dead.
    let fresh = recovery_codes_of(email);
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !codes.contains(c)));
    assert_eq!(recover(codes[5].clone()).await.status(), StatusCode::BAD_REQUEST, "old codes invalidated");
    // Another recovery: the account page shows the passkeys and how many codes are unused.
    assert_eq!(recover(fresh[0].clone()).await.status(), StatusCode::SEE_OTHER);
    let page = browser.get(f.server.url("passkey")).send().await.expect("page").text().await.expect("page");
    let callback = passkey_step(&f.server, &browser, &page, email).await;
    assert!(callback.ends_with("/account"), "{callback}");
    let account = browser.get(f.server.url("account")).send().await.expect("account").text().await.expect("page");
    assert!(account.contains("10 of 10 recovery codes unused"), "re-enrolling after a recovery issues a new set");
    let recovery_events = actions(&f).iter().filter(|a| *a == "signin.recovery_code").count();
    assert_eq!(recovery_events, 5, "every use and every failure is audited");
}

/// Starts a session-confirmation ceremony for a signed-in (email-code) user; returns the CSRF token,
/// the ceremony id and the options.
async fn confirmation_ceremony(f: &Fixture, browser: &reqwest::Client, email: &str) -> (String, Value, webauthn_rs_proto::RequestChallengeResponse) {
    let (_, page) = f.email_code_only(browser, email, &f.server.url("login")).await;
    let page = if data_attr(&page, "mode").is_some() {
        page
    } else {
        browser.get(f.server.url("passkey")).send().await.expect("page").text().await.expect("page")
    };
    assert_eq!(data_attr(&page, "mode").as_deref(), Some("verify"), "{page}");
    let csrf = data_attr(&page, "csrf").expect("csrf");
    let (status, start) = passkey_post(&f.server, browser, &csrf, "passkey/authenticate/options", json!({ "mode": "session" })).await;
    assert_eq!(status, StatusCode::OK, "{start}");
    let options = serde_json::from_value(start["options"].clone()).expect("options");
    (csrf, start["ceremony"].clone(), options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ceremonies_refuse_replays_foreign_origins_and_missing_user_verification() {
    let f = fixture().await;
    let email = "careful@example.com";
    let mut authenticator = SoftPasskey::new(true);
    // Enroll with our own authenticator so the test controls it.
    let browser = browser();
    let (_, page) = f.email_code_only(&browser, email, &f.server.url("login")).await;
    let page = if data_attr(&page, "mode").is_some() { page } else {
        browser.get(f.server.url("passkey")).send().await.expect("page").text().await.expect("page")
    };
    let csrf = data_attr(&page, "csrf").expect("csrf");
    let (_, start) = passkey_post(&f.server, &browser, &csrf, "passkey/register/options", json!({})).await;
    let mut options: webauthn_rs_proto::CreationChallengeResponse = serde_json::from_value(start["options"].clone()).expect("options");
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.require_resident_key = false;
        selection.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Discouraged);
    }
    let origin = url::Url::parse(&f.server.base).expect("origin");
    let credential = authenticator.do_registration(origin.clone(), options).expect("register");
    let (status, done) = passkey_post(&f.server, &browser, &csrf, "passkey/register", json!({ "ceremony": start["ceremony"], "credential": credential })).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    // The enrollment ceremony is spent.
    let (status, _) = passkey_post(&f.server, &browser, &csrf, "passkey/register", json!({ "ceremony": start["ceremony"], "credential": credential })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an enrollment ceremony is single-use");

    // Wrong origin: a phishing site relaying our challenge.
    let browser = common::browser();
    let (csrf, ceremony, options) = confirmation_ceremony(&f, &browser, email).await;
    let phishing = url::Url::parse("http://localhost.evil.example:8080").expect("url");
    // A browser would refuse; the backend signs whatever client data it is given.
    let forged = AuthenticatorBackend::perform_auth(&mut authenticator, phishing, options.public_key, 60_000).expect("signed");
    let (status, body) = passkey_post(&f.server, &browser, &csrf, "passkey/authenticate", json!({ "ceremony": ceremony, "mode": "session", "credential": forged })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "passkey_rejected");

    // The same ceremony cannot be retried with a good response: it was consumed by the failure.
    let (status, body) = passkey_post(&f.server, &browser, &csrf, "passkey/authenticate", json!({ "ceremony": ceremony, "mode": "session", "credential": forged })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Wrong RP ID: our origin, but the authenticator data is for another relying party's id.
    let (csrf, ceremony, mut options) = confirmation_ceremony(&f, &browser, email).await;
    options.public_key.rp_id = "example.org".into();
    let other_rp = AuthenticatorBackend::perform_auth(&mut authenticator, origin.clone(), options.public_key, 60_000).expect("signed");
    let (status, body) = passkey_post(&f.server, &browser, &csrf, "passkey/authenticate", json!({ "ceremony": ceremony, "mode": "session", "credential": other_rp })).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("passkey_rejected")), "{body}");

    // A good assertion works once; replaying it (same ceremony) is refused.
    let (csrf, ceremony, options) = confirmation_ceremony(&f, &browser, email).await;
    let good = authenticator.do_authentication(origin.clone(), options).expect("assert");
    let (status, body) = passkey_post(&f.server, &browser, &csrf, "passkey/authenticate", json!({ "ceremony": ceremony, "mode": "session", "credential": good })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = passkey_post(&f.server, &browser, &csrf, "passkey/authenticate", json!({ "ceremony": ceremony, "mode": "session", "credential": good })).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("passkey_rejected")), "replayed challenge");

    // An authenticator that does not verify the user is refused (UV is required): a new user enrolls
    // with one that only tests presence, its client relaxing the requirement the server sent.
    let browser = common::browser();
    let (_, page) = f.email_code_only(&browser, "presence-only@example.com", &f.server.url("login")).await;
    let page = if data_attr(&page, "mode").is_some() { page } else {
        browser.get(f.server.url("passkey")).send().await.expect("page").text().await.expect("page")
    };
    let csrf = data_attr(&page, "csrf").expect("csrf");
    let (_, start) = passkey_post(&f.server, &browser, &csrf, "passkey/register/options", json!({})).await;
    let mut options: webauthn_rs_proto::CreationChallengeResponse = serde_json::from_value(start["options"].clone()).expect("options");
    let selection = options.public_key.authenticator_selection.as_mut().expect("selection");
    selection.require_resident_key = false;
    selection.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Discouraged);
    selection.user_verification = webauthn_rs_proto::UserVerificationPolicy::Discouraged_DO_NOT_USE;
    let mut presence_only = SoftPasskey::new(false);
    let credential = presence_only.do_registration(origin, options).expect("presence-only registration");
    let (status, body) = passkey_post(&f.server, &browser, &csrf, "passkey/register", json!({ "ceremony": start["ceremony"], "credential": credential })).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("passkey_rejected")), "{body}");
    assert!(actions(&f).iter().any(|a| a == "passkey.rejected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ceremony_started_on_one_node_finishes_on_another() {
    let f = fixture().await;
    let node_b = Server::start(&f.deployment, &f.smtp, &[("LATCHKEY_PUBLIC_URL", f.server.base.as_str())]).await;
    let email = "roaming@example.com";
    authorize_through_pages(&f.server, &f.smtp, &browser(), &f.authorize_url(&pkce(), ""), email).await;

    let browser = browser();
    let (csrf, ceremony, options) = confirmation_ceremony(&f, &browser, email).await;
    let credential = software_assertion(email, url::Url::parse(&f.server.base).expect("origin"), options);
    // Same public URL, other process: cookies are per host, so the browser's session goes along.
    let response = browser
        .post(format!("http://localhost:{}/t/default/passkey/authenticate", node_b.port))
        .header("X-CSRF-Token", csrf)
        .json(&json!({ "ceremony": ceremony, "mode": "session", "credential": credential }))
        .send()
        .await
        .expect("finish on node B");
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{body}");
    let account = browser.get(f.server.url("account")).send().await.expect("account");
    assert_eq!(account.status(), StatusCode::OK, "the session is multi-factor on every node");
}
