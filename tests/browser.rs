//! The hosted pages in a real browser: headless Chromium (Debian's `chromium`), driven over the
//! DevTools protocol, with a virtual WebAuthn authenticator (CTAP2, internal transport, resident keys,
//! user verification). One user's whole life: first sign-in by email code → forced passkey enrollment
//! → recovery codes shown once → sign out → passkey sign-in without typing an email → step-up on a
//! sensitive action → lost device, recovery-code sign-in → re-enrollment → remove the old passkey.
//!
//! Every page is screenshotted into `target/browser-screenshots/<test>/` (or `LATCHKEY_SCREENSHOT_DIR`).
//! The browser is found at `LATCHKEY_TEST_CHROMIUM` or `/usr/bin/chromium`; .ci/run installs it.

mod common;

use std::{path::PathBuf, process::Stdio, time::Duration};

use chromiumoxide::{
    Browser, BrowserConfig, Page,
    cdp::browser_protocol::{
        page::CaptureScreenshotFormat,
        web_authn::{
            AddCredentialParams, AddVirtualAuthenticatorParams, AuthenticatorProtocol, AuthenticatorTransport, Ctap2Version,
            EnableParams, GetCredentialsParams, RemoveVirtualAuthenticatorParams, VirtualAuthenticatorOptions,
        },
    },
    page::ScreenshotParams,
};
use common::*;
use futures_util::StreamExt;

const EMAIL: &str = "ada@example.com";
/// Seconds a passkey assertion counts as fresh in this test (waited out once).
const STEP_UP_TTL: u64 = 3;

fn chromium() -> PathBuf {
    let path = std::env::var_os("LATCHKEY_TEST_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "Chromium not found at {}: install Debian's `chromium` package (.ci/run does) or set LATCHKEY_TEST_CHROMIUM",
        path.display()
    );
    path
}

struct Tab {
    page: Page,
    shots: PathBuf,
    shot_count: usize,
}

impl Tab {
    async fn eval<T: serde::de::DeserializeOwned>(&self, script: &str) -> T {
        self.page
            .evaluate(script)
            .await
            .unwrap_or_else(|e| panic!("evaluate {script}: {e}"))
            .into_value()
            .unwrap_or_else(|e| panic!("value of {script}: {e}"))
    }

    /// The current location, from the browser's target (not an evaluation, which a navigation under
    /// way would interrupt).
    async fn url(&self) -> String {
        self.page.url().await.ok().flatten().unwrap_or_default()
    }

    /// Waits until `selector` matches a visible element (pages load and scripts run asynchronously).
    async fn wait_for(&self, selector: &str) {
        let script = format!(
            "(() => {{ const e = document.querySelector({selector:?}); return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0; }})()"
        );
        for _ in 0..150 {
            if self.page.evaluate(script.as_str()).await.ok().and_then(|v| v.into_value::<bool>().ok()) == Some(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let url = self.url().await;
        let body: String = self.eval("document.body ? document.body.innerText : ''").await;
        panic!("{selector} did not appear on {url}:\n{body}");
    }

    /// Whether the current document has finished loading. A navigation under way destroys the
    /// context an evaluation runs in ("Cannot find context with specified id"): that is "not yet",
    /// and the caller tries again.
    async fn loaded(&self) -> bool {
        self.page.evaluate("document.readyState").await.ok().and_then(|v| v.into_value::<String>().ok()).as_deref() == Some("complete")
    }

    /// Waits until the location's path (and query) ends with `suffix`.
    async fn wait_for_url(&self, suffix: &str) {
        for _ in 0..150 {
            if let Ok(Some(url)) = self.page.url().await
                && url.ends_with(suffix)
                && self.loaded().await
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("never reached …{suffix}; at {}", self.url().await);
    }

    /// Waits until the location contains `part` (and the page has loaded).
    async fn wait_for_url_containing(&self, part: &str) {
        for _ in 0..150 {
            if let Ok(Some(url)) = self.page.url().await
                && url.contains(part)
                && self.loaded().await
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("never reached …{part}…; at {}", self.url().await);
    }

    async fn goto(&self, url: &str) {
        self.page.goto(url).await.unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// Clicks the element once it is visible. A document replaced between finding the element and
    /// clicking it (a redirect chain still landing) leaves a stale node ("Could not find node with
    /// given id"): found again on the new document, a few times at most.
    async fn click(&self, selector: &str) {
        let mut last_error = String::new();
        for _ in 0..10 {
            self.wait_for(selector).await;
            match self.page.find_element(selector).await {
                Ok(element) => match element.click().await {
                    Ok(_) => return,
                    Err(e) => last_error = format!("click {selector}: {e}"),
                },
                Err(e) => last_error = format!("find {selector}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("{last_error}");
    }

    /// Types into a field with real key events (found again if the document was replaced).
    async fn type_into(&self, selector: &str, text: &str) {
        let mut last_error = String::new();
        for _ in 0..10 {
            self.click(selector).await;
            match self.page.find_element(selector).await {
                Ok(element) => match element.type_str(text).await {
                    Ok(_) => return,
                    Err(e) => last_error = format!("type into {selector}: {e}"),
                },
                Err(e) => last_error = format!("find {selector}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("{last_error}");
    }

    async fn text(&self) -> String {
        self.eval("document.body.innerText").await
    }

    async fn screenshot(&mut self, name: &str) {
        self.shot_count += 1;
        let png = self
            .page
            .screenshot(ScreenshotParams::builder().format(CaptureScreenshotFormat::Png).full_page(true).build())
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        let path = self.shots.join(format!("{:02}-{name}.png", self.shot_count));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// A virtual platform authenticator, as a laptop's built-in one: CTAP2.1, resident keys, user
    /// verification that always succeeds, presence simulated.
    async fn add_authenticator(&self) -> chromiumoxide::cdp::browser_protocol::web_authn::AuthenticatorId {
        let options = VirtualAuthenticatorOptions::builder()
            .protocol(AuthenticatorProtocol::Ctap2)
            .ctap2_version(Ctap2Version::Ctap21)
            .transport(AuthenticatorTransport::Internal)
            .has_resident_key(true)
            .has_user_verification(true)
            .is_user_verified(true)
            .automatic_presence_simulation(true)
            .build()
            .expect("authenticator options");
        self.page
            .execute(AddVirtualAuthenticatorParams::new(options))
            .await
            .expect("add virtual authenticator")
            .result
            .authenticator_id
    }

    async fn credentials_on(&self, authenticator: &chromiumoxide::cdp::browser_protocol::web_authn::AuthenticatorId) -> usize {
        self.page
            .execute(GetCredentialsParams::new(authenticator.clone()))
            .await
            .expect("credentials")
            .result
            .credentials
            .len()
    }

    /// The recovery codes listed on the page.
    async fn recovery_codes(&self) -> Vec<String> {
        self.eval("[...document.querySelectorAll('#recovery-codes li')].map(li => li.textContent.trim())").await
    }

    /// Names of the passkeys on the account page.
    async fn passkey_names(&self) -> Vec<String> {
        self.eval("[...document.querySelectorAll('#passkeys .passkey-name')].map(e => e.textContent.trim())").await
    }
}

/// Starts Chromium with a fresh profile and one tab with the WebAuthn domain on. Screenshots go to a
/// directory per test.
async fn launch(test: &str) -> (Browser, tokio::task::JoinHandle<()>, Tab, tempfile::TempDir) {
    let shots = std::env::var_os("LATCHKEY_SCREENSHOT_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots"), PathBuf::from)
        .join(test);
    // Only this run's pages: a stale picture would pass for a current one.
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).expect("screenshot directory");
    let profile = tempfile::tempdir().expect("profile dir");
    let config = BrowserConfig::builder()
        .chrome_executable(chromium())
        .new_headless_mode()
        .no_sandbox()
        .window_size(1100, 900)
        .user_data_dir(profile.path())
        .request_timeout(Duration::from_secs(30))
        .arg("--disable-gpu")
        .arg("--disable-dev-shm-usage")
        .build()
        .expect("browser config");
    let (browser, mut handler) = Browser::launch(config).await.expect("launch Chromium");
    // The handler drives the DevTools connection; events newer than the bindings are skipped.
    let driver = tokio::spawn(async move { while handler.next().await.is_some() {} });
    let page = browser.new_page("about:blank").await.expect("tab");
    page.execute(EnableParams::default()).await.expect("WebAuthn domain");
    (browser, driver, Tab { page, shots, shot_count: 0 }, profile)
}

async fn close(mut browser: Browser, driver: tokio::task::JoinHandle<()>) {
    browser.close().await.expect("close");
    let _ = browser.wait().await;
    driver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_life_with_passkeys_in_a_real_browser() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let ttl = STEP_UP_TTL.to_string();
    let server = Server::start(&deployment, &smtp, &[("LATCHKEY_STEP_UP_TTL", ttl.as_str())]).await;

    let (browser, driver, mut tab, _profile) = launch("life").await;
    let laptop = tab.add_authenticator().await;

    // 1. First sign-in: email, then the 6-digit code from the real SMTP listener.
    tab.goto(&server.url("account")).await;
    tab.wait_for_url("/login").await;
    tab.wait_for("#email").await;
    tab.screenshot("sign-in").await;
    tab.type_into("#email", EMAIL).await;
    tab.click("button[type=submit]").await;
    tab.wait_for("input[name=code]").await;
    tab.screenshot("email-code").await;
    let code = smtp.code_for(EMAIL, 1).await;
    tab.type_into("input[name=code]", &code).await;
    tab.click("button[type=submit]").await;

    // 2. Enrollment is forced: the email code alone reaches nothing else.
    tab.wait_for_url("/passkey").await;
    tab.wait_for("#passkey-start").await;
    assert!(tab.text().await.contains("Secure your account with a passkey"));
    tab.screenshot("enroll-passkey").await;
    tab.type_into("#passkey-name", "Laptop").await;
    tab.click("#passkey-start").await;

    // 3. Ten recovery codes, shown once.
    tab.wait_for("#recovery-codes li").await;
    let first_codes = tab.recovery_codes().await;
    assert_eq!(first_codes.len(), 10);
    assert_eq!(tab.credentials_on(&laptop).await, 1, "a resident credential on the authenticator");
    tab.screenshot("recovery-codes").await;
    tab.click("#recovery-continue").await;
    tab.wait_for_url("/account").await;
    tab.wait_for("#passkeys").await;
    assert_eq!(tab.passkey_names().await, vec!["Laptop"]);
    assert!(tab.text().await.contains("10 of 10 recovery codes unused"));
    tab.screenshot("account").await;

    // 4. Sign out, then sign in with the passkey alone: no email typed. The sign-in page starts a
    // conditional (autofill) request at load; Chromium's virtual authenticator answers it with the
    // resident credential at once, as a user picking the passkey from the autofill would.
    tab.click("#sign-out").await;
    tab.wait_for_url("/logout").await;
    assert!(tab.text().await.contains("You’re signed out"));
    tab.screenshot("signed-out").await;
    tab.click("a[href$='/login']").await;
    tab.wait_for_url("/account").await;
    tab.wait_for("#passkeys").await;
    assert!(tab.text().await.contains(EMAIL), "signed in as the passkey's owner");

    // The same with the "Sign in with a passkey" button. The credential is kept aside while the page
    // loads (so the autofill request finds nothing and waits), then put back on a new authenticator.
    let mut credential = tab
        .page
        .execute(GetCredentialsParams::new(laptop.clone()))
        .await
        .expect("credentials")
        .result
        .credentials
        .pop()
        .expect("the passkey");
    tab.page.execute(RemoveVirtualAuthenticatorParams::new(laptop)).await.expect("remove");
    tab.click("#sign-out").await;
    tab.wait_for_url("/logout").await;
    tab.click("a[href$='/login']").await;
    tab.wait_for("#passkey-start").await;
    tab.screenshot("passkey-button").await;
    let laptop = tab.add_authenticator().await;
    credential.sign_count += 1;
    tab.page.execute(AddCredentialParams::new(laptop.clone(), credential)).await.expect("put back");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(tab.url().await.ends_with("/login"), "the waiting autofill request did not sign in by itself");
    tab.click("#passkey-start").await;
    tab.wait_for_url("/account").await;
    tab.wait_for("#passkeys").await;
    assert_eq!(smtp.code_count(EMAIL), 1, "no second email code was needed");

    // 5. A sensitive action on an old assertion asks for the passkey again, then proceeds.
    tokio::time::sleep(Duration::from_millis(STEP_UP_TTL * 1000 + 300)).await;
    tab.goto(&server.url("account")).await;
    tab.wait_for("#step-up-hint").await;
    tab.click("#new-recovery-codes").await;
    tab.wait_for_url("/passkey?step_up=1").await;
    tab.wait_for("#passkey-start").await;
    assert!(tab.text().await.contains("Confirm it’s you"));
    tab.screenshot("step-up").await;
    tab.click("#passkey-start").await;
    tab.wait_for_url("/account").await;
    tab.click("#new-recovery-codes").await;
    tab.wait_for("#recovery-codes li").await;
    let codes = tab.recovery_codes().await;
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|c| !first_codes.contains(c)), "a new set");
    tab.screenshot("new-recovery-codes").await;

    // 6. The laptop is lost: a new device signs in with a recovery code and must enroll a passkey.
    tab.page
        .execute(RemoveVirtualAuthenticatorParams::new(laptop))
        .await
        .expect("remove authenticator");
    tab.goto(&server.url("account")).await;
    tab.click("#sign-out").await;
    tab.wait_for_url("/logout").await;
    tab.click("a[href$='/login']").await;
    tab.wait_for("a[href*='login/recovery']").await;
    tab.click("a[href*='login/recovery']").await;
    tab.wait_for("input[name=code]").await;
    tab.type_into("input[name=email]", EMAIL).await;
    tab.type_into("input[name=code]", &codes[0]).await;
    tab.screenshot("recovery-sign-in").await;
    tab.click("button[type=submit]").await;
    tab.wait_for_url("/passkey").await;
    tab.wait_for("#passkey-name").await;
    assert!(tab.text().await.contains("Create a new passkey"));
    let phone = tab.add_authenticator().await;
    tab.type_into("#passkey-name", "Phone").await;
    tab.screenshot("re-enroll").await;
    tab.click("#passkey-start").await;
    tab.wait_for("#recovery-codes li").await;
    assert_eq!(tab.credentials_on(&phone).await, 1);
    tab.click("#recovery-continue").await;
    tab.wait_for_url("/account").await;
    tab.wait_for("#passkeys").await;
    assert_eq!(tab.passkey_names().await, vec!["Laptop", "Phone"]);
    // The user is told about the recovery.
    smtp.mail_containing(EMAIL, "A recovery code was just used").await;

    // 7. Remove the lost laptop's passkey (the new enrollment is a fresh assertion).
    tab.click("#passkeys tbody tr:first-child button.danger").await;
    tab.wait_for_url("account?done=removed").await;
    tab.wait_for("#notice").await;
    assert_eq!(tab.passkey_names().await, vec!["Phone"]);
    tab.screenshot("passkey-removed").await;

    close(browser, driver).await;
}

/// WebAuthn §6.1.1: a signature counter that does not grow means two authenticators hold the same
/// key. The credential is copied, private key and all, onto a second virtual authenticator with its
/// counter reset; signing in with the copy is refused and audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloned_authenticator_is_refused_and_audited() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    let (browser, driver, mut tab, _profile) = launch("cloned").await;
    let original = tab.add_authenticator().await;

    tab.goto(&server.url("login")).await;
    tab.type_into("#email", "grace@example.com").await;
    tab.click("button[type=submit]").await;
    tab.wait_for("input[name=code]").await;
    tab.type_into("input[name=code]", &smtp.code_for("grace@example.com", 1).await).await;
    tab.click("button[type=submit]").await;
    tab.wait_for("#passkey-name").await;
    tab.click("#passkey-start").await;
    tab.wait_for("#recovery-continue").await;
    tab.click("#recovery-continue").await;
    tab.wait_for_url("/account").await;

    // Set up an authenticator app from its QR page, typing the code an app would show.
    tab.click("#set-up-totp").await;
    tab.wait_for(".qr svg").await;
    tab.screenshot("authenticator-app").await;
    let secret: String = tab.eval("document.getElementById('totp-secret').textContent").await;
    let key = totp_rs::Secret::Encoded(secret).to_bytes().expect("base32 key");
    let app = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, key, None, "grace".into()).expect("totp");
    tab.type_into("#code", &app.generate_current().expect("clock")).await;
    tab.click("button[type=submit]").await;
    tab.wait_for("#notice").await;
    assert!(tab.text().await.contains("Your authenticator app is set up."));

    // Two more sign-ins with the original move its counter on.
    for _ in 0..2 {
        tab.click("#sign-out").await;
        tab.wait_for_url("/logout").await;
        tab.click("a[href$='/login']").await;
        tab.wait_for_url("/account").await;
    }

    let mut credential = tab
        .page
        .execute(GetCredentialsParams::new(original.clone()))
        .await
        .expect("credentials")
        .result
        .credentials
        .pop()
        .expect("the passkey");
    assert!(credential.sign_count >= 2, "the original counted its uses: {}", credential.sign_count);
    credential.sign_count = 0;
    tab.page.execute(RemoveVirtualAuthenticatorParams::new(original)).await.expect("remove original");
    let clone = tab.add_authenticator().await;
    tab.page.execute(AddCredentialParams::new(clone, credential)).await.expect("plant the copy");

    tab.click("#sign-out").await;
    tab.wait_for_url("/logout").await;
    tab.click("a[href$='/login']").await;
    tab.wait_for("#passkey-error").await;
    let error: String = tab.eval("document.getElementById('passkey-error').textContent").await;
    assert!(error.contains("may have been copied"), "the page says why: {error}");
    assert!(tab.url().await.ends_with("/login"), "not signed in");
    tab.screenshot("cloned-refused").await;
    assert!(
        server.audit_actions().iter().any(|e| e["action"] == "passkey.cloned"),
        "the refusal is audited"
    );
    close(browser, driver).await;
}

/// Serves `html` for every path on an ephemeral loopback port, as a static host serves a
/// single-page app (the page's script branches on its own path).
async fn serve_page(listener: tokio::net::TcpListener, html: String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let html = html.clone();
            tokio::spawn(async move {
                let mut request = vec![0u8; 16 * 1024];
                let _ = stream.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncache-control: no-store\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
}

/// The single-page app: on `/` it makes a PKCE pair with WebCrypto and goes to the authorization
/// endpoint; on `/callback` it exchanges the code with `fetch`, reads UserInfo (a preflighted
/// request: it sends `Authorization`), reads a 401's challenge, and refreshes. Everything it saw goes
/// into `#result` as JSON. On `/foreign` (served from another origin) it tries the same endpoints
/// with the token in its fragment.
const SPA: &str = r#"<!doctype html><meta charset="utf-8"><title>SPA</title><pre id="result"></pre>
<script>
const ISSUER = "__ISSUER__", CLIENT = "__CLIENT__", REDIRECT = location.origin + "/callback";
const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const form = (fields) => new URLSearchParams(fields);
const done = (out) => { document.getElementById("result").textContent = JSON.stringify(out); };
async function start() {
  const verifier = b64(crypto.getRandomValues(new Uint8Array(32)));
  sessionStorage.setItem("verifier", verifier);
  const challenge = b64(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  location = ISSUER + "/authorize?" + form({ response_type: "code", client_id: CLIENT, redirect_uri: REDIRECT,
    scope: "openid profile email urn:example:unknown", code_challenge: challenge, code_challenge_method: "S256", state: "spa-state" });
}
async function callback() {
  const out = {};
  try {
    const code = new URLSearchParams(location.search).get("code");
    let r = await fetch(ISSUER + "/token", { method: "POST", body: form({ grant_type: "authorization_code", code,
      redirect_uri: REDIRECT, client_id: CLIENT, code_verifier: sessionStorage.getItem("verifier") }) });
    const tokens = await r.json();
    out.token_status = r.status; out.scope = tokens.scope;
    r = await fetch(ISSUER + "/userinfo", { headers: { Authorization: "Bearer " + tokens.access_token } });
    out.userinfo_status = r.status; out.userinfo = await r.json();
    r = await fetch(ISSUER + "/userinfo", { headers: { Authorization: "Bearer not-a-token" } });
    out.bad_status = r.status; out.challenge = r.headers.get("WWW-Authenticate");
    r = await fetch(ISSUER + "/token", { method: "POST", body: form({ grant_type: "refresh_token", refresh_token: tokens.refresh_token, client_id: CLIENT }) });
    const refreshed = await r.json();
    out.refresh_status = r.status;
    out.rotated = typeof refreshed.refresh_token === "string" && refreshed.refresh_token !== tokens.refresh_token;
    out.access_token = refreshed.access_token;
  } catch (e) { out.error = String(e); }
  done(out);
}
async function foreign() {
  const out = {};
  const token = location.hash.slice(1);
  try { await fetch(ISSUER + "/userinfo", { headers: { Authorization: "Bearer " + token } }); out.userinfo = "read"; }
  catch (e) { out.userinfo = "blocked"; }
  try { await fetch(ISSUER + "/token", { method: "POST", body: form({ grant_type: "refresh_token", refresh_token: "x", client_id: CLIENT }) }); out.token = "read"; }
  catch (e) { out.token = "blocked"; }
  try { const r = await fetch(ISSUER + "/.well-known/openid-configuration", { headers: { "MCP-Protocol-Version": "2025-06-18" } }); out.discovery = (await r.json()).issuer; }
  catch (e) { out.discovery = "blocked"; }
  done(out);
}
({ "/callback": callback, "/foreign": foreign }[location.pathname] || start)();
</script>"#;

/// A browser application on another origin signs a person in with authorization code + PKCE, and
/// uses the token endpoint and UserInfo through CORS; a page from an origin no client lists cannot
/// read either (public metadata stays readable by all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_page_app_on_another_origin_signs_in_through_cors() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the app's host");
    let port = listener.local_addr().expect("port").port();
    let app_origin = format!("http://127.0.0.1:{port}");
    // A public client: nothing but its redirect URI, whose origin is the app's.
    let (client_id, secret) = server.create_client(&["--name", "Notes SPA", "--redirect-uri", &format!("{app_origin}/callback")]);
    assert!(secret.is_none(), "a browser app has no secret");
    serve_page(listener, SPA.replace("__ISSUER__", &server.issuer("default")).replace("__CLIENT__", &client_id)).await;

    let (browser, driver, mut tab, _profile) = launch("spa").await;
    tab.add_authenticator().await;
    tab.goto(&format!("{app_origin}/")).await;
    tab.wait_for("#email").await;
    tab.type_into("#email", "lin@example.com").await;
    tab.click("button[type=submit]").await;
    tab.wait_for("input[name=code]").await;
    tab.type_into("input[name=code]", &smtp.code_for("lin@example.com", 1).await).await;
    tab.click("button[type=submit]").await;
    tab.wait_for("#passkey-start").await;
    tab.click("#passkey-start").await;
    tab.wait_for("#recovery-continue").await;
    tab.click("#recovery-continue").await;
    // The consent page lists what will be granted: the unknown scope is not on it.
    tab.wait_for("button[value=allow]").await;
    let consent = tab.text().await;
    assert!(consent.contains("profile") && !consent.contains("urn:example"), "{consent}");
    tab.screenshot("spa-consent").await;
    tab.click("button[value=allow]").await;
    tab.wait_for("#result:not(:empty)").await;
    assert!(tab.url().await.starts_with(&format!("{app_origin}/callback?")), "back at the app");
    let result: serde_json::Value = serde_json::from_str(&tab.eval::<String>("document.getElementById('result').textContent").await).expect("result JSON");
    assert_eq!(result["error"], serde_json::Value::Null, "{result}");
    assert_eq!((result["token_status"].as_u64(), result["scope"].as_str()), (Some(200), Some("openid profile email")), "{result}");
    assert_eq!((result["userinfo_status"].as_u64(), result["userinfo"]["email"].as_str()), (Some(200), Some("lin@example.com")), "{result}");
    assert!(result["userinfo"]["updated_at"].is_i64(), "profile claims for the profile scope: {result}");
    assert_eq!(result["bad_status"].as_u64(), Some(401));
    assert!(result["challenge"].as_str().is_some_and(|c| c.contains("invalid_token")), "WWW-Authenticate is exposed: {result}");
    assert_eq!((result["refresh_status"].as_u64(), result["rotated"].as_bool()), (Some(200), Some(true)), "{result}");
    tab.screenshot("spa-signed-in").await;

    // Another origin (localhost is not 127.0.0.1 to a browser) holding a valid token reads nothing.
    let token = result["access_token"].as_str().expect("access token");
    tab.goto(&format!("http://localhost:{port}/foreign#{token}")).await;
    tab.wait_for("#result:not(:empty)").await;
    let foreign: serde_json::Value = serde_json::from_str(&tab.eval::<String>("document.getElementById('result').textContent").await).expect("result JSON");
    assert_eq!(foreign["userinfo"], "blocked", "{foreign}");
    assert_eq!(foreign["token"], "blocked", "{foreign}");
    assert_eq!(foreign["discovery"].as_str(), Some(server.issuer("default").as_str()), "metadata is public: {foreign}");

    close(browser, driver).await;
}

/// Enterprise SSO in a real browser: an organization's owner signs in, opens the administration,
/// adds and verifies the domain (a real DNS server on loopback), adds a SAML connection from the
/// IdP's metadata and tests it; then a person of that domain types their address at an app's
/// sign-in, lands at the organization's IdP (tests/sso/saml_idp.mjs, Entra-shaped), comes back through
/// the ACS, enrolls a passkey, and the app's tokens say how they signed in. Screenshots of each page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_wires_saml_and_a_person_signs_in_through_it_in_a_real_browser() {
    const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let mut dns = DnsServer::start("acme.test", &[]).await;
    let mut idp = NodeIdp::prepare();
    let users = serde_json::json!({
        "ana@acme.test": { "nameid": "pairwise-ana", "oid": "00000000-0000-0000-0000-0000000000a1", "email": "ana@acme.test",
                           "name": "Ana Admin", "given_name": "Ana", "family_name": "Admin",
                           "amr": ["http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password",
                                   "http://schemas.microsoft.com/claims/multipleauthn"] },
    });
    // Plain http on localhost, as the server is here: the IdP's POST to the ACS is then same-site and
    // carries the sign-in's binding cookie (over https that cookie is SameSite=None).
    idp.start_plain("saml_idp.mjs", &[("TID", TID.to_owned()), ("USERS", users.to_string())]);
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let dns_address = dns.address();
    let server = Server::start(&deployment, &smtp, &[("LATCHKEY_DNS_NAMESERVERS", &dns_address), ("LATCHKEY_SSO_ALLOW_LOOPBACK", "true")]).await;
    server.cli(&["org", "create", "acme", "--name", "Acme"]);
    server.cli(&["org", "member", "acme", "--email", "olga@acme.test", "--role", "owner"]);

    let (browser, driver, mut tab, _profile) = launch("sso").await;
    let owners_laptop = tab.add_authenticator().await;
    // The owner's first sign-in: email code, passkey, recovery codes.
    tab.goto(&server.url("account")).await;
    first_sign_in(&tab, &smtp, "olga@acme.test").await;
    tab.wait_for("#administers a").await;
    tab.click("#administers a").await;

    // The administration: members, then the domain and its TXT record.
    tab.wait_for_url("/org/acme/admin").await;
    tab.wait_for("#members").await;
    tab.screenshot("admin").await;
    tab.type_into("#domain", "acme.test").await;
    tab.click("#add-domain button[type=submit]").await;
    tab.wait_for_url_containing("done=domain").await;
    let value: String = tab.eval("document.querySelector('tr[data-domain=\"acme.test\"] .record-value').textContent").await;
    tab.screenshot("admin-domain-record").await;
    dns.set(&[("_latchkey-challenge.acme.test", &value)]).await;
    tab.click("tr[data-domain=\"acme.test\"] button[type=submit]").await;
    tab.wait_for_url_containing("done=verified").await;
    assert!(tab.text().await.contains("Domain verified."), "{}", tab.text().await);

    // The SAML connection from the IdP's metadata (pasted, as from Entra's "Federation Metadata XML").
    let metadata = reqwest::get(idp.url(&format!("/{TID}/federationmetadata/2007-06/federationmetadata.xml"))).await.expect("metadata").text().await.expect("xml");
    tab.type_into("#saml-name", "Acme Entra ID").await;
    let paste = format!("document.querySelector('#metadata-xml').value = {}; true", serde_json::to_string(&metadata).expect("json"));
    let _: bool = tab.eval(&paste).await;
    tab.click("#add-saml button[type=submit]").await;
    tab.wait_for_url_containing("done=connection").await;
    tab.wait_for(".connection").await;
    tab.screenshot("admin-connection").await;
    let connection: String = tab.eval("document.querySelector('.connection').dataset.connection").await;
    let sp_metadata = reqwest::get(server.url(&format!("sso/saml/{connection}/metadata"))).await.expect("SP metadata").text().await.expect("xml");
    let registered = reqwest::Client::new().post(idp.url("/sp")).body(sp_metadata).send().await.expect("register");
    assert_eq!(registered.status(), reqwest::StatusCode::OK);
    // "Test connection": through the IdP and back to a report; nobody signed in.
    tab.click(".connection a.button").await;
    tab.wait_for("#claims").await;
    let report = tab.text().await;
    assert!(report.contains("ana@acme.test") && report.contains("create the account ana@acme.test"), "{report}");
    tab.screenshot("admin-test-connection").await;
    tab.click("p.meta a").await;
    tab.wait_for("#members").await;
    tab.goto(&server.url("logout")).await;
    tab.click("button[type=submit]").await;
    tab.wait_for_url("/logout").await;

    // Another person's device: the sign-in page's passkey autofill would otherwise sign the owner in.
    tab.page.execute(RemoveVirtualAuthenticatorParams::new(owners_laptop)).await.expect("remove authenticator");
    tab.add_authenticator().await;

    // A person of acme.test at an app: their address, their organization's sign-in, back, a passkey.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("app listener");
    let app = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
    serve_page(listener, "<!doctype html><title>App</title><p>Signed in.</p>".to_owned()).await;
    let (client_id, secret) = server.create_client(&["--name", "App", "--confidential", "--redirect-uri", &format!("{app}/cb")]);
    let pkce = pkce();
    let authorize = format!(
        "{}?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid%20email&state=s&code_challenge={}&code_challenge_method=S256",
        server.url("authorize"),
        urlencode(&format!("{app}/cb")),
        pkce.challenge
    );
    tab.goto(&authorize).await;
    tab.wait_for("#email").await;
    tab.type_into("#email", "ana@acme.test").await;
    tab.click("button[type=submit]").await;
    tab.wait_for_url_containing("/login/sso").await;
    assert!(tab.text().await.contains("ana@acme.test signs in with Acme Entra ID"));
    tab.screenshot("home-realm").await;
    tab.click("#continue").await;
    // The IdP answers at once (the test IdP signs in whoever login_hint names) and posts to the ACS.
    tab.wait_for("#passkey-start").await;
    assert!(tab.text().await.contains("Your organization signed you in"), "the passkey as the second step");
    tab.screenshot("passkey-after-sso").await;
    tab.click("#passkey-start").await;
    tab.wait_for("#recovery-continue").await;
    tab.click("#recovery-continue").await;
    tab.wait_for("button[name=decision]").await;
    tab.click("button[name=decision][value=allow]").await;
    tab.wait_for_url_containing("/cb?").await;
    let back = tab.url().await;
    let code = query_param(&back, "code").expect("code");
    let (status, tokens) = exchange_code(&server, &client_id, &secret.expect("secret"), &code, &format!("{app}/cb"), &pkce.verifier).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{tokens}");
    let claims = jwt_claims(tokens["id_token"].as_str().expect("id token"));
    assert_eq!(claims["email"], "ana@acme.test");
    assert_eq!(claims["acr"], "urn:latchkey:acr:mfa");
    let amr: Vec<&str> = claims["amr"].as_array().expect("amr").iter().filter_map(|v| v.as_str()).collect();
    assert!(amr.contains(&"pwd") && amr.contains(&"mfa") && amr.contains(&"user"), "the IdP's methods and the passkey's: {amr:?}");
    close(browser, driver).await;
}

/// A person approves what an agent is about to do (docs/approvals.md). An unmodified MCP client
/// (the official TypeScript SDK, tests/mcp/approval.mjs) connects to the permission API's MCP
/// endpoint with only its URL; the person signs in through the hosted pages in Chromium. A gated
/// tool call comes back as a tool error saying where to approve; the person opens the link, sees
/// the call in plain words, approves with the virtual passkey, and the SDK's retry goes through —
/// once. Approving one call does not approve another (other arguments); a denial and an expiry are
/// tool errors too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmodified_mcp_client_runs_a_tool_call_once_its_person_approves_it_with_a_passkey() {
    const PERSON: &str = "approver@example.com";
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[("LATCHKEY_CACHE_TTL", "0")]).await;
    server.cli(&["tenant", "set", "default", "--authorization-details-types", "tool_call"]);
    let (gate_id, gate_secret) =
        server.create_client(&["--name", "Demo tools", "--confidential", "--grant-type", "urn:openid:params:grant-type:ciba"]);
    let rules = format!(
        r#"
[[rules]]
tool = "files.delete"
scopes = ["files:write"]
effect = "approve"

[[rules]]
tool = "*"
scopes = ["files:read"]
effect = "allow"

[approvals]
expires_in = 20
[[approvals.clients]]
issuer = "{}"
client_id = "{gate_id}"
client_secret = "{}"
"#,
        server.issuer("default"),
        gate_secret.expect("secret")
    );
    let permissions = PermissionApi::start(&[server.issuer("default")], &rules).await;
    server.cli(&["resource", "create", "--uri", &permissions.resource, "--name", "Demo files", "--scope", "files:read", "--scope", "files:write"]);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("callback listener");
    let redirect = format!("http://127.0.0.1:{}/callback", listener.local_addr().expect("addr").port());
    serve_page(listener, "<!doctype html><title>MCP client</title><p>You can close this window.</p>".to_owned()).await;
    let (browser, driver, mut tab, _profile) = launch("approvals").await;
    let _laptop = tab.add_authenticator().await;
    // The SDK sends the person to sign in: email code, a passkey, consent; its callback gets the code.
    let mut sdk = McpSdk::start(&permissions.resource, &redirect, false).await;
    let authorize = sdk.next_event().await;
    assert_eq!(authorize["event"], "authorize");
    tab.goto(authorize["url"].as_str().expect("url")).await;
    first_sign_in(&tab, &smtp, PERSON).await;
    tab.click("button[name=decision][value=allow]").await;
    tab.wait_for_url_containing("code=").await;
    sdk.send(&tab.url().await).await;
    assert_eq!(sdk.next_event().await["event"], "connected");
    let mut call = async |name: &str, arguments: serde_json::Value| sdk.call(name, arguments).await;
    // Where the tool error tells the person to approve.
    let approval_url = |result: &serde_json::Value| -> String {
        let text = result["text"].as_str().expect("text");
        let start = text.find(&server.url("approvals/")).unwrap_or_else(|| panic!("no approval link in {text:?}"));
        text[start..].split_whitespace().next().expect("url").to_owned()
    };

    // 1. The gated call: a tool error that says what to approve and where. (A second after the
    // sign-in, so that its passkey assertion is plainly older than the request.)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let first = call("files.delete", serde_json::json!({ "name": "plan.md" })).await;
    assert_eq!(first["isError"], true, "{first}");
    let first_url = approval_url(&first);
    assert!(first["text"].as_str().expect("text").contains("approve"), "{first}");
    // The person opens it: the call in plain words, the binding message the tool error named.
    tab.goto(&first_url).await;
    tab.wait_for("#approve").await;
    let page = tab.text().await;
    assert!(page.contains("Demo tools asks for your approval") && page.contains("files.delete") && page.contains("plan.md"), "{page}");
    let binding: String = tab.eval("document.querySelector('#binding-message strong').textContent").await;
    assert!(first["text"].as_str().expect("text").contains(&binding), "the page and the tool error show the same binding message");
    tab.screenshot("approval").await;
    // Approving asks for the passkey (an assertion made for this request), then records the yes.
    assert!(approve(&mut tab).await, "the sign-in's assertion, older than the request, does not approve it");
    tab.screenshot("approved").await;

    // 2. The SDK's retry of the same call goes through, once; the receipt names the approval.
    let done = call("files.delete", serde_json::json!({ "name": "plan.md" })).await;
    assert_eq!((done["isError"].as_bool(), done["text"].as_str()), (Some(false), Some("deleted plan.md")), "{done}");
    let receipt = jwt_claims(done["receipt"].as_str().expect("receipt"));
    assert_eq!(receipt["decision"], "allow");
    assert!(first_url.ends_with(receipt["approval"].as_str().expect("approval")), "{receipt}");
    let again = call("files.delete", serde_json::json!({ "name": "plan.md" })).await;
    assert_eq!(again["isError"], true);
    assert_ne!(approval_url(&again), first_url, "a second use needs a new approval");

    // 3. An approval is for its own arguments: approving readme.txt does not let another name through.
    let readme = call("files.delete", serde_json::json!({ "name": "readme.txt" })).await;
    let readme_url = approval_url(&readme);
    tab.goto(&readme_url).await;
    approve(&mut tab).await;
    let other = call("files.delete", serde_json::json!({ "name": "README.TXT" })).await;
    assert_eq!(other["isError"], true);
    assert_ne!(approval_url(&other), readme_url);
    let done = call("files.delete", serde_json::json!({ "name": "readme.txt" })).await;
    assert_eq!(done["text"], "deleted readme.txt", "{done}");

    // 4. Denied: one click, and the retry is a tool error that says so.
    let doomed = call("files.delete", serde_json::json!({ "name": "nothing.txt" })).await;
    tab.goto(&approval_url(&doomed)).await;
    tab.click("#deny").await;
    tab.wait_for("#answer").await;
    assert!(tab.text().await.contains("Denied"));
    let denied = call("files.delete", serde_json::json!({ "name": "nothing.txt" })).await;
    assert_eq!(denied["isError"], true);
    assert!(denied["text"].as_str().expect("text").contains("denied"), "{denied}");

    // 5. Unanswered until it expires: the retry is a tool error asking again; the old page says expired.
    let late = call("files.delete", serde_json::json!({ "name": "late.txt" })).await;
    let late_url = approval_url(&late);
    tokio::time::sleep(Duration::from_secs(21)).await;
    let after = call("files.delete", serde_json::json!({ "name": "late.txt" })).await;
    assert_eq!(after["isError"], true);
    assert_ne!(approval_url(&after), late_url);
    tab.goto(&late_url).await;
    tab.wait_for("#answer").await;
    assert!(tab.text().await.contains("expired"));

    // The permission API audited each decision, the approvals named.
    let rows = permissions.audit_rows().await;
    assert!(rows.iter().filter(|r| r.1 == "files.delete" && r.3 == "pending_approval").count() >= 5, "{rows:?}");
    assert_eq!(rows.iter().filter(|r| r.1 == "files.delete" && r.3 == "allow").count(), 2, "{rows:?}");
    sdk.quit().await;

    // A client that declared URL-mode elicitation (MCP 2025-11-25) gets the URLElicitationRequired
    // error instead, carrying the approval page; its session id (signed, any replica reads it) says
    // what it declared. The person is signed in already: consent, then the same approval.
    let mut sdk = McpSdk::start(&permissions.resource, &redirect, true).await;
    let authorize = sdk.next_event().await;
    tab.goto(authorize["url"].as_str().expect("url")).await;
    tab.click("button[name=decision][value=allow]").await;
    tab.wait_for_url_containing("code=").await;
    sdk.send(&tab.url().await).await;
    assert_eq!(sdk.next_event().await["event"], "connected");
    let asked = sdk.call("files.delete", serde_json::json!({ "name": "url.txt" })).await;
    let elicitation = &asked["elicitations"][0];
    assert_eq!(elicitation["mode"], "url", "{asked}");
    assert!(asked["sessionId"].as_str().is_some_and(|id| id.contains('.')), "a signed session id: {asked}");
    let url = elicitation["url"].as_str().expect("url").to_owned();
    assert!(url.starts_with(&server.url("approvals/")) && url.ends_with(elicitation["elicitationId"].as_str().expect("id")), "{asked}");
    tab.goto(&url).await;
    approve(&mut tab).await;
    let through = sdk.call("files.delete", serde_json::json!({ "name": "url.txt" })).await;
    // Past the gate: the demo tool itself answers (there is no such file).
    assert_eq!(through["text"], "no file named url.txt", "{through}");
    assert!(jwt_claims(through["receipt"].as_str().expect("receipt"))["approval"].as_str().is_some_and(|a| url.ends_with(a)));
    sdk.quit().await;
    close(browser, driver).await;
}

/// tests/mcp/approval.mjs: the unmodified MCP TypeScript SDK, driven line by line.
struct McpSdk {
    node: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl McpSdk {
    async fn start(mcp_url: &str, redirect: &str, url_elicitation: bool) -> Self {
        use tokio::io::AsyncBufReadExt;
        let client_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp");
        assert!(client_dir.join("node_modules/@modelcontextprotocol/sdk").exists(), "run `npm ci --prefix tests/mcp` (scripts/test does)");
        let mut node = tokio::process::Command::new("node")
            .arg(client_dir.join("approval.mjs"))
            .env("MCP_URL", mcp_url)
            .env("REDIRECT_URL", redirect)
            .env("URL_ELICITATION", if url_elicitation { "1" } else { "0" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("run node");
        let stdin = node.stdin.take().expect("stdin");
        let stdout = tokio::io::BufReader::new(node.stdout.take().expect("stdout")).lines();
        Self { node, stdin, stdout }
    }

    async fn next_event(&mut self) -> serde_json::Value {
        let line = tokio::time::timeout(Duration::from_secs(60), self.stdout.next_line())
            .await
            .expect("the MCP client went quiet")
            .expect("read")
            .expect("the MCP client exited");
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert_ne!(event["event"], "failed", "the MCP client failed: {event:#}");
        event
    }

    async fn send(&mut self, line: &str) {
        use tokio::io::AsyncWriteExt;
        self.stdin.write_all(format!("{line}\n").as_bytes()).await.expect("write to the MCP client");
    }

    async fn call(&mut self, name: &str, arguments: serde_json::Value) -> serde_json::Value {
        self.send(&serde_json::json!({ "call": name, "arguments": arguments }).to_string()).await;
        let result = self.next_event().await;
        assert_eq!(result["event"], "result");
        result
    }

    async fn quit(mut self) {
        self.send("{\"quit\":true}").await;
        assert!(self.node.wait().await.expect("node exit").success());
    }
}

/// A person's first sign-in from the sign-in page: their address, the emailed code, a passkey made
/// on the tab's authenticator, past the recovery codes.
async fn first_sign_in(tab: &Tab, smtp: &SmtpCatcher, email: &str) {
    tab.wait_for("#email").await;
    tab.type_into("#email", email).await;
    tab.click("button[type=submit]").await;
    tab.wait_for("input[name=code]").await;
    let code = smtp.code_for(email, 1).await;
    tab.type_into("input[name=code]", &code).await;
    tab.click("button[type=submit]").await;
    tab.wait_for("#passkey-start").await;
    tab.click("#passkey-start").await;
    tab.wait_for("#recovery-continue").await;
    tab.click("#recovery-continue").await;
}

/// Clicks Approve on an approval page; when the page asks for the passkey first (the last assertion
/// was made before the request arrived), confirms with it and approves on the page it returns to.
/// Whether it asked.
async fn approve(tab: &mut Tab) -> bool {
    tab.click("#approve").await;
    let mut asked = false;
    for _ in 0..150 {
        let url = tab.url().await;
        if url.contains("step_up=1") {
            asked = true;
            break;
        }
        if url.contains("done=1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if asked {
        tab.wait_for("#passkey-start").await;
        tab.screenshot("approval-passkey").await;
        tab.click("#passkey-start").await;
        tab.wait_for_url_containing("/approvals/").await;
        tab.click("#approve").await;
    }
    tab.wait_for("#answer").await;
    assert!(tab.text().await.contains("Approved"), "{}", tab.text().await);
    asked
}

/// A CLI signs in with the device flow (RFC 8628) through a real client library — the
/// `openidconnect` crate's device authorization and polling — while its person, in Chromium, opens
/// the verification link, signs in (email code, a passkey on the virtual authenticator), reads what
/// the device asks for and allows it. The CLI gets tokens and refreshes them; a second device the
/// person denies gets `access_denied`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_signs_in_with_the_device_flow_while_its_person_allows_it_in_a_real_browser() {
    use openidconnect::{
        ClientId, DeviceAuthorizationUrl, IssuerUrl, OAuth2TokenResponse, RequestTokenError, Scope, TokenResponse,
        core::{CoreClient, CoreDeviceAuthorizationResponse, CoreProviderMetadata},
    };
    const PERSON: &str = "cli-person@example.com";
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    let (client_id, _) = server.create_client(&[
        "--name", "Deploy CLI",
        "--grant-type", "urn:ietf:params:oauth:grant-type:device_code",
        "--grant-type", "refresh_token",
    ]);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http");
    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(server.issuer("default")).expect("issuer"), &http)
        .await
        .expect("discovery");
    let device_endpoint: serde_json::Value =
        http.get(format!("{}/.well-known/openid-configuration", server.issuer("default"))).send().await.expect("discovery").json().await.expect("json");
    let cli = CoreClient::from_provider_metadata(metadata, ClientId::new(client_id), None).set_device_authorization_url(
        DeviceAuthorizationUrl::new(device_endpoint["device_authorization_endpoint"].as_str().expect("advertised").to_owned()).expect("url"),
    );
    let details: CoreDeviceAuthorizationResponse = cli
        .exchange_device_code()
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .request_async(&http)
        .await
        .expect("device authorization");
    let link = details.verification_uri_complete().expect("verification_uri_complete").secret().clone();
    let user_code = details.user_code().secret().clone();
    // The CLI polls in the background, as it would while printing the code.
    let polling = {
        let (cli, http, details) = (cli.clone(), http.clone(), details.clone());
        tokio::spawn(async move { cli.exchange_device_access_token(&details).expect("endpoint").request_async(&http, tokio::time::sleep, None).await })
    };

    let (browser, driver, mut tab, _profile) = launch("device").await;
    let _laptop = tab.add_authenticator().await;
    tab.goto(&link).await;
    tab.wait_for("#user_code").await;
    let filled: String = tab.eval("document.querySelector('#user_code').value").await;
    assert_eq!(filled, user_code, "the link fills the code in; nothing happens until the person continues");
    tab.screenshot("device-code").await;
    tab.click("#device-continue").await;
    first_sign_in(&tab, &smtp, PERSON).await;
    tab.wait_for("#allow").await;
    let page = tab.text().await;
    assert!(page.contains("Allow Deploy CLI on your device?") && page.contains("offline_access") && page.contains(PERSON), "{page}");
    tab.screenshot("device-confirm").await;
    tab.click("#allow").await;
    tab.wait_for("#answer").await;
    assert!(tab.text().await.contains("Device connected"));
    tab.screenshot("device-connected").await;

    let tokens = tokio::time::timeout(Duration::from_secs(60), polling).await.expect("the CLI got an answer").expect("task").expect("tokens");
    let id_token = tokens.id_token().expect("an ID token");
    let claims = jwt_claims(&id_token.to_string());
    assert_eq!(claims["email"], PERSON);
    assert!(claims["auth_time"].as_i64().is_some());
    let refresh = tokens.refresh_token().expect("a refresh token");
    let refreshed = cli.exchange_refresh_token(refresh).expect("endpoint").request_async(&http).await.expect("refresh");
    assert_ne!(refreshed.access_token().secret(), tokens.access_token().secret());

    // A second device, denied: the library reports access_denied.
    let denied_details: CoreDeviceAuthorizationResponse = cli.exchange_device_code().request_async(&http).await.expect("device authorization");
    tab.goto(&server.url("device")).await;
    tab.type_into("#user_code", denied_details.user_code().secret()).await;
    tab.click("#device-continue").await;
    tab.click("#deny").await;
    tab.wait_for("#answer").await;
    let outcome = cli.exchange_device_access_token(&denied_details).expect("endpoint").request_async(&http, tokio::time::sleep, None).await;
    match outcome {
        Err(RequestTokenError::ServerResponse(error)) => assert_eq!(error.error().to_string(), "access_denied"),
        other => panic!("expected access_denied, got {other:?}"),
    }
    close(browser, driver).await;
}
