//! The account page over HTTP: passkeys (rename, remove with a fresh assertion, the last-passkey
//! rule), new recovery codes, sessions on other browsers, apps with access, and signing out
//! everywhere, which ends every refresh-token family of the user.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:9/cb";
/// The step-up window for this test (seconds): long enough to act right after a passkey assertion,
/// short enough to wait out.
const STEP_UP_TTL: u64 = 3;

struct Fixture {
    smtp: SmtpCatcher,
    server: Server,
    _deployment: Deployment,
    notes: (String, String),
}

impl Fixture {
    async fn new() -> Self {
        let smtp = SmtpCatcher::start().await;
        let deployment = Deployment::new().await;
        let ttl = STEP_UP_TTL.to_string();
        let geoip = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/geoip/GeoLite2-City-Test.mmdb");
        let server = Server::start(
            &deployment,
            &smtp,
            &[
                ("LATCHKEY_STEP_UP_TTL", ttl.as_str()),
                ("LATCHKEY_GEOIP_CITY_DATABASE", geoip),
                ("LATCHKEY_TRUSTED_PROXY_HOPS", "1"),
            ],
        )
        .await;
        let (id, secret) = server.create_client(&["--name", "Acme Notes", "--confidential", "--redirect-uri", REDIRECT]);
        Fixture { smtp, server, _deployment: deployment, notes: (id, secret.expect("secret")) }
    }

    /// Signs in through an authorization of Acme Notes and returns its refresh token.
    async fn grant(&self, browser: &reqwest::Client, email: &str) -> String {
        let pkce = pkce();
        let url = format!(
            "{}?response_type=code&client_id={}&redirect_uri={REDIRECT}&scope=openid&code_challenge={}&code_challenge_method=S256",
            self.server.url("authorize"),
            self.notes.0,
            pkce.challenge
        );
        let callback = authorize_through_pages(&self.server, &self.smtp, browser, &url, email).await;
        let code = query_param(&callback, "code").expect("code");
        let (status, tokens) = exchange_code(&self.server, &self.notes.0, &self.notes.1, &code, REDIRECT, &pkce.verifier).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        tokens["refresh_token"].as_str().expect("refresh_token").to_owned()
    }

    async fn refresh(&self, token: &str) -> (StatusCode, Value) {
        token_request(&self.server, &self.notes.0, &self.notes.1, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await
    }

    async fn account(&self, browser: &reqwest::Client) -> String {
        let response = browser.get(self.server.url("account")).send().await.expect("account");
        assert_eq!(response.status(), StatusCode::OK, "account page");
        response.text().await.expect("page")
    }

    /// Posts an account form with the page's CSRF token.
    async fn post(&self, browser: &reqwest::Client, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let page = self.account(browser).await;
        let csrf = hidden_input(&page, "csrf").expect("csrf");
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        browser.post(self.server.url(path)).form(&form).send().await.expect("POST")
    }

    fn actions(&self) -> Vec<String> {
        self.server.audit_actions().iter().map(|e| e["action"].as_str().unwrap_or_default().to_owned()).collect()
    }
}

/// The values of `<input name="id">` in the forms posting to `action`, in page order.
fn form_ids(html: &str, action: &str) -> Vec<String> {
    html.split("<form")
        .filter(|form| form.contains(&format!("{action}\"")))
        .filter_map(|form| hidden_input(form, "id"))
        .collect()
}

/// The id of the session marked "This browser", and the others.
fn sessions(html: &str) -> (String, Vec<String>) {
    let table = &html[html.find("id=\"sessions\"").expect("sessions table")..];
    let table = &table[..table.find("</table>").expect("end of table")];
    let mut current = None;
    let mut others = Vec::new();
    for row in table.split("<tr>").skip(2) {
        let id = hidden_input(row, "id").expect("session id");
        if row.contains("This browser") { current = Some(id) } else { others.push(id) }
    }
    (current.expect("this browser is listed"), others)
}

fn see_other_to(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    location(response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_page_manages_passkeys_sessions_and_apps() {
    let f = Fixture::new().await;
    let email = "owner@example.com";
    let laptop = browser();
    let notes_token = f.grant(&laptop, email).await;
    // The phone comes through a proxy that says it is in London.
    let phone = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers([("x-forwarded-for".parse().expect("name"), "81.2.69.142".parse().expect("value"))].into_iter().collect())
        .build()
        .expect("client");
    let phone_token = f.grant(&phone, email).await;

    // The page lists the passkey, both browsers, and the app.
    let page = f.account(&laptop).await;
    assert!(page.contains("Test key"), "{page}");
    let (laptop_session, other_sessions) = sessions(&page);
    assert_eq!(other_sessions.len(), 1, "the phone's session");
    assert!(page.contains("London, United Kingdom · 81.2.69.142"), "approximate location from GeoIP");
    assert!(page.contains("Acme Notes"));
    let passkey_id = form_ids(&page, "account/passkeys/rename").pop().expect("passkey");

    // Rename is not sensitive.
    let renamed = f.post(&laptop, "account/passkeys/rename", &[("id", &passkey_id), ("name", "Work laptop")]).await;
    let back = absolute(&f.server, &see_other_to(&renamed));
    assert!(back.ends_with("account?done=renamed"));
    let page = laptop.get(&back).send().await.expect("account").text().await.expect("page");
    assert!(page.contains("Work laptop") && page.contains("Passkey renamed."), "{page}");
    // Someone else's (or a made-up) passkey id: a clear error, nothing changes.
    let bogus = f.post(&laptop, "account/passkeys/rename", &[("id", "not-a-passkey"), ("name", "x")]).await;
    assert_eq!(bogus.status(), StatusCode::NOT_FOUND);

    // Sensitive actions on an old assertion ask for a fresh passkey first, and change nothing.
    tokio::time::sleep(std::time::Duration::from_millis(STEP_UP_TTL * 1000 + 300)).await;
    assert!(f.account(&laptop).await.contains("id=\"step-up-hint\""));
    let stale_remove = f.post(&laptop, "account/passkeys/remove", &[("id", &passkey_id)]).await;
    assert!(see_other_to(&stale_remove).ends_with("passkey?step_up=1"));
    let stale_codes = f.post(&laptop, "account/recovery-codes", &[]).await;
    assert!(see_other_to(&stale_codes).ends_with("passkey?step_up=1"));
    assert!(f.account(&laptop).await.contains("Work laptop"), "still there");

    // Use up every recovery code (on throwaway browsers), so no way back in would remain.
    for code in recovery_codes_of(email) {
        let stranger = browser();
        let form = stranger.get(f.server.url("login/recovery")).send().await.expect("form").text().await.expect("page");
        let csrf = hidden_input(&form, "csrf").expect("csrf");
        let used = stranger
            .post(f.server.url("login/recovery"))
            .form(&[("csrf", csrf.as_str()), ("email", email), ("code", code.as_str())])
            .send()
            .await
            .expect("recovery");
        assert_eq!(used.status(), StatusCode::SEE_OTHER);
    }
    assert!(f.account(&laptop).await.contains("0 of 10 recovery codes unused"));

    // Step up, then: the only passkey with no recovery code left cannot go.
    let step_up = laptop.get(f.server.url("passkey?step_up=1")).send().await.expect("step-up").text().await.expect("page");
    assert!(passkey_step(&f.server, &laptop, &step_up, email).await.ends_with("/account"));
    let refused = f.post(&laptop, "account/passkeys/remove", &[("id", &passkey_id)]).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert!(refused.text().await.expect("page").contains("This is your only passkey"));

    // New recovery codes are shown once, and then the last passkey may go.
    let codes_page = f.post(&laptop, "account/recovery-codes", &[]).await;
    assert_eq!(codes_page.status(), StatusCode::OK);
    let codes_page = codes_page.text().await.expect("page");
    assert_eq!(codes_page.matches("<li>").count(), 10, "{codes_page}");
    assert!(codes_page.contains("download=\"recovery-codes.txt\""));
    assert!(f.account(&laptop).await.contains("10 of 10 recovery codes unused"));
    let removed = f.post(&laptop, "account/passkeys/remove", &[("id", &passkey_id)]).await;
    assert!(see_other_to(&removed).ends_with("account?done=removed"));
    assert!(!f.account(&laptop).await.contains("Work laptop"));
    let actions = f.actions();
    for expected in ["passkey.rename", "passkey.remove", "recovery_codes.generate"] {
        assert!(actions.iter().any(|a| a == expected), "{expected} audited");
    }

    // Signing out the phone from the laptop ends its session and the grants bound to it.
    let page = f.account(&laptop).await;
    let (_, others) = sessions(&page);
    let ended = f.post(&laptop, "account/sessions/end", &[("id", &other_sessions[0])]).await;
    assert!(see_other_to(&ended).ends_with("account?done=session-ended"));
    assert!(others.contains(&other_sessions[0]));
    let phone_account = phone.get(f.server.url("account")).send().await.expect("account");
    assert!(see_other_to(&phone_account).ends_with("/login"), "the phone is signed out");
    let (status, body) = f.refresh(&phone_token).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));

    // Removing the app's access revokes its grant on this browser too.
    let revoked = f.post(&laptop, "account/apps/revoke", &[("client_id", &f.notes.0)]).await;
    assert!(see_other_to(&revoked).ends_with("account?done=access-removed"));
    let (status, _) = f.refresh(&notes_token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the app's refresh token is dead");
    assert!(f.account(&laptop).await.contains("No apps have access"));

    // Sign out everywhere: this browser and the recovery sessions go; the next email-code sign-in of an
    // account without passkeys must use a recovery code, not enroll on the email code alone.
    let everywhere = f.post(&laptop, "account/sessions/end-all", &[]).await;
    assert!(see_other_to(&everywhere).ends_with("/login"));
    let gone = laptop.get(f.server.url("account")).send().await.expect("account");
    assert!(see_other_to(&gone).ends_with("/login"));
    assert!(!laptop_session.is_empty());
    assert!(f.actions().iter().any(|a| a == "session.end_all"));
    let newcomer = browser();
    let start = newcomer.get(f.server.url("login")).send().await.expect("login").text().await.expect("page");
    let csrf = hidden_input(&start, "csrf").expect("csrf");
    let mails_before = f.smtp.code_count(email);
    let sent = newcomer.post(f.server.url("login")).form(&[("csrf", csrf.as_str()), ("email", email)]).send().await.expect("POST");
    let code_page = newcomer.get(absolute(&f.server, &location(&sent))).send().await.expect("code").text().await.expect("page");
    let csrf = hidden_input(&code_page, "csrf").expect("csrf");
    let code = f.smtp.code_for(email, mails_before + 1).await;
    let signed_in = newcomer.post(f.server.url("login/code")).form(&[("csrf", csrf.as_str()), ("code", code.as_str())]).send().await.expect("POST");
    let mut next = absolute(&f.server, &see_other_to(&signed_in));
    for _ in 0..4 {
        let response = newcomer.get(&next).send().await.expect("GET");
        if response.status() != StatusCode::SEE_OTHER {
            break;
        }
        next = absolute(&f.server, &location(&response));
    }
    assert!(next.ends_with("/login/recovery"), "no enrollment on an email code alone: {next}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticator_app_lets_a_new_device_enroll_and_each_code_works_once() {
    let f = Fixture::new().await;
    let email = "totp@example.com";
    let laptop = browser();
    f.grant(&laptop, email).await;

    // Set-up shows a QR code and the key; a wrong first code changes nothing.
    let setup = laptop.get(f.server.url("account/totp")).send().await.expect("setup");
    assert_eq!(setup.status(), StatusCode::OK);
    let setup = setup.text().await.expect("page");
    assert!(setup.contains("<svg") && setup.contains("otpauth://totp/"), "{setup}");
    let secret = totp_secret(&setup).expect("secret");
    let csrf = hidden_input(&setup, "csrf").expect("csrf");
    let right = totp_code(&secret, 0);
    let wrong = format!("{:06}", (right.parse::<u32>().expect("digits") + 1) % 1_000_000);
    let refused = laptop.post(f.server.url("account/totp")).form(&[("csrf", csrf.as_str()), ("code", wrong.as_str())]).send().await.expect("POST");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(f.account(&laptop).await.contains("Off."), "not on after a wrong code");
    let again = laptop.get(f.server.url("account/totp")).send().await.expect("setup").text().await.expect("page");
    assert!(again.contains(&secret), "reloading keeps the secret being set up");
    let on = laptop.post(f.server.url("account/totp")).form(&[("csrf", csrf.as_str()), ("code", right.as_str())]).send().await.expect("POST");
    assert!(see_other_to(&on).ends_with("account?done=totp-on"));
    assert!(f.account(&laptop).await.contains("On since"));

    // A new device: email code, then the app instead of a passkey, then a passkey of its own.
    lose_authenticator(email);
    let phone = browser();
    let url = f.server.url("login");
    let login = phone.get(&url).send().await.expect("login").text().await.expect("page");
    let csrf = hidden_input(&login, "csrf").expect("csrf");
    let mails = f.smtp.code_count(email);
    let sent = phone.post(&url).form(&[("csrf", csrf.as_str()), ("email", email)]).send().await.expect("POST");
    let code_page = phone.get(absolute(&f.server, &location(&sent))).send().await.expect("code").text().await.expect("page");
    let csrf = hidden_input(&code_page, "csrf").expect("csrf");
    let code = f.smtp.code_for(email, mails + 1).await;
    phone.post(f.server.url("login/code")).form(&[("csrf", csrf.as_str()), ("code", code.as_str())]).send().await.expect("POST");
    let passkey_page = phone.get(f.server.url("passkey")).send().await.expect("page").text().await.expect("page");
    assert_eq!(data_attr(&passkey_page, "mode").as_deref(), Some("verify"));
    assert!(passkey_page.contains("id=\"use-totp\""), "the app is offered");

    let form = phone.get(f.server.url("login/totp")).send().await.expect("form").text().await.expect("page");
    let csrf = hidden_input(&form, "csrf").expect("csrf");
    let submit = |code: String| {
        let phone = phone.clone();
        let url = f.server.url("login/totp");
        let csrf = csrf.clone();
        async move { phone.post(url).form(&[("csrf", csrf.as_str()), ("code", code.as_str())]).send().await.expect("POST") }
    };
    // The code that confirmed the app is spent; so is any older one.
    assert_eq!(submit(right.clone()).await.status(), StatusCode::BAD_REQUEST, "a used code is refused");
    let next = totp_code(&secret, 1);
    let accepted = submit(next.clone()).await;
    assert!(see_other_to(&accepted).ends_with("/passkey"));
    assert_eq!(submit(next).await.status(), StatusCode::BAD_REQUEST, "the accepted code works once");
    let enroll = phone.get(f.server.url("passkey")).send().await.expect("page").text().await.expect("page");
    assert_eq!(data_attr(&enroll, "mode").as_deref(), Some("enroll"), "the app opens enrollment on this device");
    let account = phone.get(f.server.url("account")).send().await.expect("account");
    assert!(see_other_to(&account).ends_with("/passkey"), "and nothing else before the passkey");
    assert!(passkey_step(&f.server, &phone, &enroll, email).await.ends_with("/account"));
    let page = f.account(&phone).await;
    assert_eq!(page.matches("class=\"passkey-name\"").count(), 2, "a passkey per device");

    // Removing the app is a sensitive change (the new enrollment is a fresh assertion).
    let off = f.post(&phone, "account/totp/remove", &[]).await;
    assert!(see_other_to(&off).ends_with("account?done=totp-off"));
    let actions = f.actions();
    for expected in ["totp.enable", "signin.totp", "totp.remove"] {
        assert!(actions.iter().any(|a| a == expected), "{expected} audited");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_can_require_an_authenticator_app_before_any_authorization() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    // No tenant cache, so the policy change below is seen at once.
    let server = Server::start(&deployment, &smtp, &[("LATCHKEY_CACHE_TTL", "0")]).await;
    server.cli(&["tenant", "set", "default", "--require-authenticator-app", "true"]);
    let (client_id, secret) = server.create_client(&["--name", "Payroll", "--confidential", "--first-party", "--redirect-uri", REDIRECT]);
    let secret = secret.expect("secret");
    let email = "policy@example.com";
    let browser = browser();
    let pkce = pkce();
    let url = format!(
        "{}?response_type=code&client_id={client_id}&redirect_uri={REDIRECT}&scope=openid&code_challenge={}&code_challenge_method=S256",
        server.url("authorize"),
        pkce.challenge
    );

    // Email code, passkey, and then the app's set-up page: required, with no way around it.
    let (at, page) = walk_pages(&server, &smtp, &browser, &url, email, |page| totp_secret(page).is_some()).await;
    let page = page.expect("the set-up page");
    assert!(at.contains("/account/totp?req="), "{at}");
    assert!(page.contains("requires an authenticator app") && !page.contains(">Cancel<"));
    let silent = browser.get(format!("{url}&prompt=none")).send().await.expect("authorize");
    assert_eq!(query_param(&location(&silent), "error").as_deref(), Some("interaction_required"));
    let account = browser.get(server.url("account")).send().await.expect("account");
    assert!(location(&account).ends_with("/account/totp"), "the account page waits for the app too");
    let callback = authorize_through_pages(&server, &smtp, &browser, &at, email).await;
    let code = query_param(&callback, "code").expect("code after the app is set up");
    let (status, _) = exchange_code(&server, &client_id, &secret, &code, REDIRECT, &pkce.verifier).await;
    assert_eq!(status, StatusCode::OK);

    // The app cannot be removed while the tenant requires it.
    let page = browser.get(server.url("account")).send().await.expect("account").text().await.expect("page");
    let csrf = hidden_input(&page, "csrf").expect("csrf");
    let refused = browser.post(server.url("account/totp/remove")).form(&[("csrf", csrf.as_str())]).send().await.expect("POST");
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert!(refused.text().await.expect("page").contains("requires an authenticator app"));
}
