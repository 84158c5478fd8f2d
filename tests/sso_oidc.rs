//! SSO over OpenID Connect against an independent OpenID Provider (panva's oidc-provider, shaped like a
//! Microsoft Entra directory: GUID issuer, `tid`/`oid`/`xms_edov`) on loopback https, with the
//! organization's domain verified through a real DNS server: home-realm discovery from the sign-in
//! page, just-in-time provisioning, a passkey after SSO, and tokens that say how the person signed in;
//! then the nOAuth takeover: an IdP asserting an address it does not prove is refused.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use common::{Deployment, DnsServer, Server, SmtpCatcher, exchange_code, jwt_claims, location, pkce, query_param, walk_pages};
use reqwest::StatusCode;

const TID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
const CLIENT_SECRET: &str = "idp-client-secret-for-tests";

struct Idp {
    port: u16,
    child: Option<Child>,
    ca_pem: String,
    dir: tempfile::TempDir,
}

impl Drop for Idp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Idp {
    /// The provider's certificate, issued by a fresh CA (whose PEM the server is told to trust).
    fn prepare() -> Self {
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf").signed_by(&leaf_key, &ca, &ca_key).expect("sign");
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("ca");
        std::fs::write(dir.path().join("cert.pem"), leaf.pem()).expect("cert");
        std::fs::write(dir.path().join("key.pem"), leaf_key.serialize_pem()).expect("key");
        Self { port: common::free_port(), child: None, ca_pem: ca.pem(), dir }
    }

    fn ca_file(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Starts the provider with these accounts (login_hint → claims).
    fn start(&mut self, redirect_uri: &str, users: serde_json::Value) {
        let (port, dir) = (self.port, &self.dir);
        let mut child = Command::new("node")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sso/idp.mjs"))
            .env("PORT", port.to_string())
            .env("TID", TID)
            .env("CERT", dir.path().join("cert.pem"))
            .env("KEY", dir.path().join("key.pem"))
            .env("CLIENT_ID", "latchkey")
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("REDIRECT_URI", redirect_uri)
            .env("USERS", users.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node (tests/sso: npm ci)");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        lines.read_line(&mut line).expect("idp output");
        assert_eq!(line.trim(), "listening", "the test IdP did not start");
        // Keep reading what it prints, so it never writes into a closed pipe.
        std::thread::spawn(move || for line in lines.lines().map_while(Result::ok) { eprintln!("idp: {line}") });
        self.child = Some(child);
    }

    fn issuer(&self) -> String {
        format!("https://localhost:{}/{TID}/v2.0", self.port)
    }
}

/// A browser that keeps cookies, follows nothing on its own and trusts the IdP's test CA.
fn trusting_browser(idp: &Idp) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(reqwest::Certificate::from_pem(idp.ca_pem.as_bytes()).expect("ca"))
        .build()
        .expect("client")
}

/// Follows redirects from `start` through the IdP until the browser is sent back to Latchkey.
async fn through_idp(server: &Server, browser: &reqwest::Client, start: &str) -> String {
    let mut next = start.to_owned();
    for _ in 0..10 {
        if next.starts_with(&server.base) && next.contains("/sso/callback") {
            return next;
        }
        let response = browser.get(&next).send().await.expect("GET");
        assert!(response.status().is_redirection(), "{next}: {} {}", response.status(), response.text().await.unwrap_or_default());
        let to = location(&response);
        next = if to.starts_with('/') { url::Url::parse(&next).expect("url").join(&to).expect("join").to_string() } else { to };
    }
    panic!("never came back from the IdP");
}

async fn setup() -> (DnsServer, Deployment, SmtpCatcher) {
    let dns = DnsServer::start("acme.test", &[]).await;
    (dns, Deployment::new().await, SmtpCatcher::start().await)
}

#[tokio::test]
async fn an_entra_directory_signs_its_people_in_and_cannot_take_over_an_address_it_does_not_prove() {
    let (mut dns, deployment, smtp) = setup().await;
    let mut idp = Idp::prepare();
    let ca_file = idp.ca_file().display().to_string();
    let server = Server::start(
        &deployment,
        &smtp,
        &[
            ("LATCHKEY_DNS_NAMESERVERS", &dns.address()),
            ("LATCHKEY_SSO_ALLOW_LOOPBACK", "true"),
            ("LATCHKEY_SSO_EXTRA_ROOTS", &ca_file),
        ],
    )
    .await;
    let base = server.base.clone();
    let users = serde_json::json!({
        "ana@acme.test": { "sub": "pairwise-ana", "oid": "00000000-0000-0000-0000-0000000000a1", "tid": TID,
                           "email": "ana@acme.test", "xms_edov": true, "name": "Ana Admin", "given_name": "Ana", "family_name": "Admin",
                           "amr": ["pwd", "mfa"] },
        // nOAuth: this directory's user set her `email` to the victim's address; Entra does not prove it.
        "mallory@evil.test": { "sub": "pairwise-mallory", "oid": "00000000-0000-0000-0000-0000000000e1", "tid": TID,
                     "email": "victim@acme.test" },
    });
    idp.start(&format!("{base}/t/default/sso/callback"), users);

    // The administrator's part: organization, verified domain, Entra connection.
    server.cli(&["org", "create", "acme", "--name", "Acme"]);
    let added = server.cli(&["org", "domain", "add", "acme", "acme.test"]);
    let value = added.lines().last().expect("record").split('\t').nth(2).expect("value").to_owned();
    dns.set(&[("_latchkey-challenge.acme.test", &value)]).await;
    server.cli(&["org", "domain", "verify", "acme", "acme.test"]);
    let output = server.cli_output_with(
        &["org", "sso", "add-oidc", "acme", "--name", "Acme Entra ID", "--flavor", "entra", "--issuer", &idp.issuer(),
          "--client-id", "latchkey", "--client-secret-env", "IDP_SECRET", "--role-map", "admins=admin"],
        &[("IDP_SECRET", CLIENT_SECRET)],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains(&format!("{base}/t/default/sso/callback")), "{said}");
    let connection = said.split_whitespace().nth(3).expect("connection id").to_owned();

    // A person of acme.test types her address at a relying party's sign-in and lands at her IdP.
    let (client_id, secret) = server.create_client(&["--name", "App", "--confidential", "--redirect-uri", "https://app.example/cb"]);
    let secret = secret.expect("secret");
    let p = pkce();
    let authorize = format!(
        "{}?response_type=code&client_id={client_id}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid%20email%20profile&state=s1&code_challenge={}&code_challenge_method=S256",
        server.url("authorize"),
        p.challenge
    );
    let browser = trusting_browser(&idp);
    let (_, page) = walk_pages(&server, &smtp, &browser, &authorize, "ana@acme.test", |page| page.contains("Continue to your organization")).await;
    let page = page.expect("the home-realm page");
    assert!(page.contains("signs in with Acme Entra ID"), "{page}");
    assert_eq!(smtp.code_count("ana@acme.test"), 0, "no email code for a domain that signs in with SSO");
    let start = page.split("href=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("continue link").replace("&amp;", "&").replace("&#38;", "&");
    assert!(start.contains(&format!("/sso/{connection}/start")), "{start}");
    assert!(query_param(&start, "req").is_some(), "the authorization request goes along: {start}");

    let first = browser.get(&start).send().await.expect("start");
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let at_idp = location(&first);
    assert!(at_idp.starts_with(&idp.issuer()), "{at_idp}");
    for param in ["state", "nonce", "code_challenge"] {
        assert!(query_param(&at_idp, param).is_some(), "{param} in {at_idp}");
    }
    assert_eq!(query_param(&at_idp, "code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(query_param(&at_idp, "domain_hint").as_deref(), Some("acme.test"));
    let callback = through_idp(&server, &browser, &at_idp).await;

    // A replay of the same answer from another browser (no binding cookie) is refused and changes nothing.
    let stranger = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let replay = stranger.get(&callback).send().await.expect("replay");
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);

    // Back at Latchkey: a new account (just in time), then the passkey, then consent, then the code.
    let (done, _) = walk_pages(&server, &smtp, &browser, &callback, "ana@acme.test", |_| false).await;
    assert!(done.starts_with("https://app.example/cb"), "{done}");
    let code = query_param(&done, "code").expect("code");
    let (status, tokens) = exchange_code(&server, &client_id, &secret, &code, "https://app.example/cb", &p.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id_token = jwt_claims(tokens["id_token"].as_str().expect("id token"));
    assert_eq!(id_token["email"], "ana@acme.test");
    assert_eq!(id_token["acr"], "urn:latchkey:acr:mfa", "{id_token}");
    let amr: Vec<&str> = id_token["amr"].as_array().expect("amr").iter().filter_map(|v| v.as_str()).collect();
    assert!(amr.contains(&"pwd") && amr.contains(&"hwk") && amr.contains(&"user"), "the IdP's methods and the passkey's: {amr:?}");
    let access = jwt_claims(tokens["access_token"].as_str().expect("access token"));
    assert_eq!(access["org"], "acme", "{access}");
    let actions = server.audit_actions();
    let sso_signins: Vec<_> = actions.iter().filter(|e| e["action"] == "signin.sso").collect();
    assert_eq!(sso_signins.len(), 1, "{sso_signins:?}");
    let details = match &sso_signins[0]["details"] {
        serde_json::Value::String(text) => serde_json::from_str(text).expect("details json"),
        other => other.clone(),
    };
    assert_eq!(details["account"], "created", "{sso_signins:?}");

    // The same replayed callback, now from the right browser: already used.
    let again = browser.get(&callback).send().await.expect("again");
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);

    // nOAuth: victim@acme.test has an account (email code); the directory asserts that address for
    // another person without proving it. Refused: no session, no link, the victim's account untouched.
    server.cli(&["user", "profile", "--email", "victim@acme.test", "--name", "Victim"]);
    let attacker = trusting_browser(&idp);
    let first = attacker.get(server.url(&format!("sso/{connection}/start?login_hint=mallory%40evil.test"))).send().await.expect("start");
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let callback = through_idp(&server, &attacker, &location(&first)).await;
    let refused = attacker.get(&callback).send().await.expect("callback");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let text = refused.text().await.expect("page");
    assert!(text.contains("did not confirm that this email address is yours"), "{}", common::page_text(&text));
    let account = attacker.get(server.url("account")).send().await.expect("account");
    assert_eq!(account.status(), StatusCode::SEE_OTHER, "no session was made");
    assert!(location(&account).contains("/login"));
    let failed = server.audit_actions().into_iter().filter(|e| e["action"] == "signin.sso" && e["outcome"] != "success").count();
    assert!(failed >= 1);
}
