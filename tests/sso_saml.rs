//! SSO over SAML 2.0 against an independent identity provider (tests/sso/saml_idp.mjs: Node.js with
//! xml-crypto, its own RSA keys, Entra's response layout and claim URIs) on loopback https, with the
//! organization's domain verified through a real DNS server.
//!
//! The connection is made from the IdP's metadata URL (a byte-order mark, a WS-Federation role, two
//! certificates). The IdP checks Latchkey's signed AuthnRequest against the SP metadata. Then the
//! whole way through: home-realm discovery, the IdP's POST to the ACS, just-in-time provisioning, the
//! passkey, tokens. Then every forgery and mistake the issue lists, each refused with no session
//! made: replays, tampering, foreign keys, SHA-1, unsigned, wrong audience / recipient / destination /
//! issuer, expired, not yet valid, unsolicited, another browser's request, the eight signature
//! wrapping attacks, a comment in the NameID, a DTD, an oversized response.

mod common;

use common::{Deployment, DnsServer, NodeIdp, Server, SmtpCatcher, exchange_code, jwt_claims, location, pkce, query_param, walk_pages};
use reqwest::StatusCode;
use serde_json::json;

const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

fn users() -> serde_json::Value {
    json!({
        "ana@acme.test": { "nameid": "pairwise-ana", "oid": "00000000-0000-0000-0000-0000000000a1", "email": "ana@acme.test",
                           "name": "Ana Admin", "given_name": "Ana", "family_name": "Admin", "groups": ["g-admins"],
                           "amr": ["http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password",
                                   "http://schemas.microsoft.com/claims/multipleauthn"] },
        "eve@acme.test": { "nameid": "pairwise-eve", "oid": "00000000-0000-0000-0000-0000000000e1", "email": "eve@acme.test", "name": "Eve" },
        "zoe@acme.test": { "nameid": "pairwise-zoe", "oid": "00000000-0000-0000-0000-0000000000f1", "email": "zoe@acme.test", "name": "Zoe" },
    })
}

/// The signed-in person of `browser`, if any: after SSO the account page sends a session to its
/// passkey step, which names the address; without a session it sends the browser to sign in.
async fn signed_in_as(server: &Server, browser: &reqwest::Client) -> Option<String> {
    let mut page = browser.get(server.url("account")).send().await.expect("account");
    if page.status() == StatusCode::SEE_OTHER && location(&page).ends_with("/passkey") {
        page = browser.get(server.url("passkey")).send().await.expect("passkey");
    }
    if page.status() != StatusCode::OK {
        return None;
    }
    let text = page.text().await.expect("page");
    ["ana@acme.test", "eve@acme.test", "zoe@acme.test"].into_iter().find(|email| text.contains(email)).map(str::to_owned)
}

/// The IdP's auto-submitting page: the form's action and its SAMLResponse.
fn post_form(page: &str) -> (String, String) {
    let action = page.split("action=\"").nth(1).and_then(|r| r.split('"').next()).expect("form action").replace("&amp;", "&");
    let value = page.split("name=\"SAMLResponse\" value=\"").nth(1).and_then(|r| r.split('"').next()).expect("SAMLResponse").to_owned();
    (action, value)
}

async fn post_acs(browser: &reqwest::Client, acs: &str, saml_response: &str) -> reqwest::Response {
    browser.post(acs).form(&[("SAMLResponse", saml_response)]).send().await.expect("ACS")
}

/// The parts every test here runs: a DNS server for acme.test, the SAML IdP, the server, a mail catcher.
struct Stage {
    dns: DnsServer,
    _deployment: Deployment,
    smtp: SmtpCatcher,
    idp: NodeIdp,
    server: Server,
}

impl Stage {
    async fn new(extra: &[(&str, &str)]) -> Self {
        let dns = DnsServer::start("acme.test", &[]).await;
        let deployment = Deployment::new().await;
        let smtp = SmtpCatcher::start().await;
        let mut idp = NodeIdp::prepare();
        idp.start("saml_idp.mjs", &[("TID", TID.to_owned()), ("USERS", users().to_string())]);
        let (dns_address, ca_file) = (dns.address(), idp.ca_file());
        let mut env = vec![
            ("LATCHKEY_DNS_NAMESERVERS", dns_address.as_str()),
            ("LATCHKEY_SSO_ALLOW_LOOPBACK", "true"),
            ("LATCHKEY_SSO_EXTRA_ROOTS", ca_file.as_str()),
            // The refusal test posts a hundred responses from one address in a minute.
            ("LATCHKEY_RATE_SSO_PER_IP_PER_MINUTE", "1000000"),
        ];
        env.extend_from_slice(extra);
        let server = Server::start(&deployment, &smtp, &env).await;
        Self { dns, _deployment: deployment, smtp, idp, server }
    }

    fn metadata_url(&self) -> String {
        self.idp.url(&format!("/{TID}/federationmetadata/2007-06/federationmetadata.xml?keys=both"))
    }

    /// Gives the IdP a connection's SP metadata (as an administrator pastes it into Entra).
    async fn register_sp(&self, metadata_url: &str) -> String {
        let metadata = reqwest::get(metadata_url).await.expect("SP metadata");
        assert_eq!(metadata.headers()["content-type"], "application/samlmetadata+xml");
        let metadata = metadata.text().await.expect("xml");
        let registered = self.idp.browser().post(self.idp.url("/sp")).body(metadata.clone()).send().await.expect("register SP");
        assert_eq!(registered.status(), StatusCode::OK, "{}", registered.text().await.unwrap_or_default());
        metadata
    }
}

/// A stage with acme's domain verified and a SAML connection made with the CLI.
struct Fixture {
    stage: Stage,
    connection: String,
    acs: String,
    metadata_url: String,
}

impl std::ops::Deref for Fixture {
    type Target = Stage;

    fn deref(&self) -> &Stage {
        &self.stage
    }
}

impl Fixture {
    async fn new() -> Self {
        Self::with(&[]).await
    }

    async fn with(extra: &[(&str, &str)]) -> Self {
        let mut stage = Stage::new(extra).await;
        let server = &stage.server;
        server.cli(&["org", "create", "acme", "--name", "Acme"]);
        let added = server.cli(&["org", "domain", "add", "acme", "acme.test"]);
        let value = added.lines().last().expect("record").split('\t').nth(2).expect("value").to_owned();
        stage.dns.set(&[("_latchkey-challenge.acme.test", &value)]).await;
        let server = &stage.server;
        server.cli(&["org", "domain", "verify", "acme", "acme.test"]);
        // Entra's "App Federation Metadata Url": two certificates (a rollover under way).
        let metadata_url = stage.metadata_url();
        let said = server.cli(&["org", "sso", "add-saml", "acme", "--name", "Acme Entra ID", "--metadata-url", &metadata_url, "--role-map", "g-admins=admin"]);
        let connection = said.split_whitespace().nth(3).expect("connection id").to_owned();
        let base = format!("{}/sso/saml/{connection}", server.issuer("default"));
        assert!(said.contains(&format!("entity id (identifier):\t{base}/metadata")), "{said}");
        let acs = format!("{base}/acs");
        assert!(said.contains(&format!("reply URL (assertion consumer service):\t{acs}")), "{said}");
        // The administrator gives the IdP Latchkey's SP metadata.
        let metadata = stage.register_sp(&format!("{base}/metadata")).await;
        let entity = format!("entityID=\"{base}/metadata\"");
        let location = format!("Location=\"{acs}\"");
        for part in [entity.as_str(), location.as_str(), "AuthnRequestsSigned=\"true\"", "WantAssertionsSigned=\"true\"", "X509Certificate"] {
            assert!(metadata.contains(part), "{part} in {metadata}");
        }
        Self { stage, connection, acs, metadata_url }
    }

    /// A browser that started a sign-in for `hint` here: the AuthnRequest's id, as the IdP read it
    /// (after checking its signature with the SP metadata's certificate).
    async fn started(&self, hint: &str) -> (reqwest::Client, String) {
        let browser = self.idp.browser();
        let start = browser
            .get(self.server.url(&format!("sso/{}/start?login_hint={}", self.connection, common::urlencode(hint))))
            .send()
            .await
            .expect("start");
        assert_eq!(start.status(), StatusCode::SEE_OTHER);
        let at_idp = location(&start);
        let inspect = at_idp.replacen("/saml2?", "/saml2/inspect?", 1);
        let read: serde_json::Value = browser.get(&inspect).send().await.expect("inspect").json().await.expect("json");
        assert_eq!(read["acs"], self.acs.as_str());
        (browser, read["id"].as_str().expect("request id").to_owned())
    }

    async fn sign(&self, options: serde_json::Value) -> String {
        let signed: serde_json::Value =
            self.idp.browser().post(self.idp.url("/sign")).json(&options).send().await.expect("sign").json().await.expect("json");
        signed["SAMLResponse"].as_str().expect("SAMLResponse").to_owned()
    }

    /// Another SAML connection of `org` to the same IdP, accepting IdP-initiated sign-in: its ACS URL
    /// and entity id.
    fn idp_initiated_connection(&self, org: &str) -> (String, String) {
        let said = self.server.cli(&["org", "sso", "add-saml", org, "--name", "Tiles", "--metadata-url", &self.metadata_url, "--allow-idp-initiated"]);
        let id = said.split_whitespace().nth(3).expect("connection id");
        let base = format!("{}/sso/saml/{id}", self.server.issuer("default"));
        (format!("{base}/acs"), format!("{base}/metadata"))
    }

    fn sso_signins(&self) -> usize {
        self.server.audit_actions().iter().filter(|e| e["action"] == "signin.sso" && e["outcome"] == "success").count()
    }
}

#[tokio::test]
async fn an_entra_saml_directory_signs_its_people_in_end_to_end() {
    let f = Fixture::new().await;
    let server = &f.server;
    let (client_id, secret) = server.create_client(&["--name", "App", "--confidential", "--redirect-uri", "https://app.example/cb"]);
    let secret = secret.expect("secret");
    let p = pkce();
    let authorize = format!(
        "{}?response_type=code&client_id={client_id}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid%20email%20profile&state=s1&code_challenge={}&code_challenge_method=S256",
        server.url("authorize"),
        p.challenge
    );
    let browser = f.idp.browser();
    let (_, page) = walk_pages(server, &f.smtp, &browser, &authorize, "ana@acme.test", |page| page.contains("Continue to your organization")).await;
    let page = page.expect("the home-realm page");
    assert_eq!(f.smtp.code_count("ana@acme.test"), 0, "no email code for a domain that signs in with SSO");
    let start = page.split("href=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("continue link").replace("&amp;", "&").replace("&#38;", "&");
    let first = browser.get(&start).send().await.expect("start");
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let at_idp = location(&first);
    assert!(at_idp.starts_with(&f.idp.url(&format!("/{TID}/saml2?SAMLRequest="))), "{at_idp}");
    for param in ["SigAlg", "Signature"] {
        assert!(query_param(&at_idp, param).is_some(), "HTTP-Redirect binding, signed: {param} in {at_idp}");
    }
    assert_eq!(query_param(&at_idp, "login_hint").as_deref(), Some("ana@acme.test"));

    // The IdP checks the request's signature, then posts its response to the ACS.
    let idp_page = browser.get(&at_idp).send().await.expect("IdP");
    assert_eq!(idp_page.status(), StatusCode::OK);
    let (action, saml_response) = post_form(&idp_page.text().await.expect("page"));
    assert_eq!(action, f.acs);
    let back = post_acs(&browser, &action, &saml_response).await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER, "{}", common::page_text(&back.text().await.unwrap_or_default()));
    let resume = common::absolute(server, &location(&back));
    assert!(resume.contains("/authorize/resume?req="), "{resume}");

    // The same response again, from this browser or another: refused, nothing made.
    let again = post_acs(&browser, &f.acs, &saml_response).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let stranger = f.idp.browser();
    assert_eq!(post_acs(&stranger, &f.acs, &saml_response).await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(signed_in_as(server, &stranger).await, None);

    // Just in time: a new account, then the passkey, then consent and the code.
    let (done, _) = walk_pages(server, &f.smtp, &browser, &resume, "ana@acme.test", |_| false).await;
    assert!(done.starts_with("https://app.example/cb"), "{done}");
    let code = query_param(&done, "code").expect("code");
    let (status, tokens) = exchange_code(server, &client_id, &secret, &code, "https://app.example/cb", &p.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id_token = jwt_claims(tokens["id_token"].as_str().expect("id token"));
    assert_eq!(id_token["email"], "ana@acme.test");
    assert_eq!(id_token["acr"], "urn:latchkey:acr:mfa", "{id_token}");
    let amr: Vec<&str> = id_token["amr"].as_array().expect("amr").iter().filter_map(|v| v.as_str()).collect();
    assert!(amr.contains(&"pwd") && amr.contains(&"hwk"), "the IdP's methods and the passkey's: {amr:?}");
    let userinfo: serde_json::Value = reqwest::Client::new()
        .get(server.url("userinfo"))
        .bearer_auth(tokens["access_token"].as_str().expect("access token"))
        .send()
        .await
        .expect("userinfo")
        .json()
        .await
        .expect("json");
    assert_eq!(userinfo["name"], "Ana Admin", "the profile from Entra's claims: {userinfo}");
    assert_eq!(userinfo["given_name"], "Ana");
    let access = jwt_claims(tokens["access_token"].as_str().expect("access token"));
    assert_eq!(access["org"], "acme", "{access}");
    assert_eq!(access["roles"], json!(["admin"]), "roles from the IdP's groups: {access}");
    assert_eq!(f.sso_signins(), 1);
    // Public values only of what exists: no metadata of an unknown connection, no client keys of a SAML one.
    for path in ["sso/saml/sso_nothing/metadata".to_owned(), format!("sso/{}/jwks", f.connection)] {
        assert_eq!(reqwest::get(server.url(&path)).await.expect("get").status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn every_forged_or_misaddressed_saml_response_is_refused_and_makes_no_session() {
    let f = Fixture::new().await;
    let server = &f.server;
    let evil = json!({ "nameid": "pairwise-ana", "oid": "00000000-0000-0000-0000-0000000000a1", "email": "ana@acme.test" });

    // What must be accepted: the assertion signed (Entra's default), the response signed, both, and
    // a response signed with the second certificate of the rollover.
    for (case, options) in [
        ("assertion signed", json!({})),
        ("response signed", json!({ "sign": "response" })),
        ("both signed", json!({ "sign": "both" })),
        ("the rollover's new key", json!({ "key": "secondary" })),
    ] {
        let (browser, request_id) = f.started("eve@acme.test").await;
        let mut options = options;
        options["user"] = json!("eve@acme.test");
        options["in_response_to"] = json!(request_id);
        let response = post_acs(&browser, &f.acs, &f.sign(options).await).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{case}: {}", common::page_text(&response.text().await.unwrap_or_default()));
        assert_eq!(signed_in_as(server, &browser).await.as_deref(), Some("eve@acme.test"), "{case}");
    }
    let accepted = f.sso_signins();
    assert_eq!(accepted, 4);

    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("tampered after signing", json!({ "tamper_email": "ana@acme.test" })),
        ("signed with a key not in the metadata", json!({ "key": "rogue" })),
        ("unsigned", json!({ "sign": "none" })),
        ("SHA-1", json!({ "alg": "sha1" })),
        ("SHA-1, response and assertion", json!({ "alg": "sha1", "sign": "both" })),
        ("another audience", json!({ "audience": "https://other.example/sp" })),
        ("no AudienceRestriction", json!({ "omit_audience": true })),
        ("another recipient", json!({ "recipient": "https://other.example/acs" })),
        ("another destination", json!({ "destination": "https://other.example/acs" })),
        ("another issuer", json!({ "issuer": "https://sts.windows.net/00000000-0000-0000-0000-000000000000/" })),
        ("expired", json!({ "issue_offset": -3600, "not_before_offset": -3700, "not_on_or_after_offset": -3000 })),
        ("not yet valid", json!({ "not_before_offset": 1800 })),
        ("a comment in the NameID", json!({ "user": { "nameid": "ana@acme.test.evil.test", "oid": null, "email": "ana@acme.test.evil.test" }, "comment_in_nameid": 13 })),
        ("a DTD with an external entity", json!({ "doctype": true })),
        // Over the SAMLResponse cap (192 KiB), and over the ACS body cap (256 KiB, refused unread).
        ("oversized", json!({ "pad_groups": 1500 })),
        ("oversized body", json!({ "pad_groups": 3000 })),
        ("XSW1", json!({ "sign": "response", "xsw": "XSW1", "evil": evil })),
        ("XSW2", json!({ "sign": "response", "xsw": "XSW2", "evil": evil })),
        ("XSW3", json!({ "xsw": "XSW3", "evil": evil })),
        ("XSW4", json!({ "xsw": "XSW4", "evil": evil })),
        ("XSW5", json!({ "xsw": "XSW5", "evil": evil })),
        ("XSW6", json!({ "xsw": "XSW6", "evil": evil })),
        ("XSW7", json!({ "xsw": "XSW7", "evil": evil })),
        ("XSW8", json!({ "xsw": "XSW8", "evil": evil })),
    ];
    for (case, overrides) in cases {
        let (browser, request_id) = f.started("eve@acme.test").await;
        let mut options = json!({ "user": "eve@acme.test", "in_response_to": request_id });
        for (key, value) in overrides.as_object().expect("object") {
            options[key] = value.clone();
        }
        let response = post_acs(&browser, &f.acs, &f.sign(options).await).await;
        let status = response.status();
        let page = common::page_text(&response.text().await.unwrap_or_default());
        assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE, "{case}: {status} {page}");
        eprintln!("refused, {case}: {page}");
        assert_eq!(signed_in_as(server, &browser).await, None, "{case}: no session");
        // The request was not consumed by a refusal: the right answer still signs in.
        let good = f.sign(json!({ "user": "eve@acme.test", "in_response_to": request_id })).await;
        let after = post_acs(&browser, &f.acs, &good).await;
        assert_eq!(after.status(), StatusCode::SEE_OTHER, "{case}: the genuine answer after the refusal");
        assert_eq!(signed_in_as(server, &browser).await.as_deref(), Some("eve@acme.test"), "{case}");
    }

    // Unsolicited (IdP-initiated) while the connection does not accept that.
    let browser = f.idp.browser();
    let unsolicited = f.sign(json!({ "user": "eve@acme.test" })).await;
    let response = post_acs(&browser, &f.acs, &unsolicited).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(common::page_text(&response.text().await.expect("page")).contains("without a request from this site"));
    // Another browser's request.
    let (_, theirs) = f.started("eve@acme.test").await;
    let response = post_acs(&browser, &f.acs, &f.sign(json!({ "user": "eve@acme.test", "in_response_to": theirs })).await).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(signed_in_as(server, &browser).await, None);
    // IdP-initiated sign-in where the administrator turned it on: taken once; the same assertion again
    // (from any browser) is a replay. (Eve's account signs in through the first connection only: one
    // way in per account.)
    let (tiles_acs, tiles_entity) = f.idp_initiated_connection("acme");
    let eve_elsewhere = f.sign(json!({ "user": "eve@acme.test", "acs": tiles_acs, "audience": tiles_entity })).await;
    let browser = f.idp.browser();
    let refused = post_acs(&browser, &tiles_acs, &eve_elsewhere).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(common::page_text(&refused.text().await.expect("page")).contains("already signs in another way"));
    let unsolicited = f.sign(json!({ "user": "zoe@acme.test", "acs": tiles_acs, "audience": tiles_entity })).await;
    assert_eq!(post_acs(&browser, &tiles_acs, &unsolicited).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in_as(server, &browser).await.as_deref(), Some("zoe@acme.test"));
    let replayer = f.idp.browser();
    assert_eq!(post_acs(&replayer, &tiles_acs, &unsolicited).await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(signed_in_as(server, &replayer).await, None);
    // Another organization's connection to the same directory asserts an acme.test address: acme
    // verified that domain, not globex, so the address names no account and makes none.
    server.cli(&["org", "create", "globex", "--name", "Globex"]);
    let (globex_acs, globex_entity) = f.idp_initiated_connection("globex");
    let takeover = f.sign(json!({ "user": "ana@acme.test", "acs": globex_acs, "audience": globex_entity })).await;
    let attacker = f.idp.browser();
    let refused = post_acs(&attacker, &globex_acs, &takeover).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(common::page_text(&refused.text().await.expect("page")).contains("not one your organization has verified"));
    assert_eq!(signed_in_as(server, &attacker).await, None);

    // Nobody ever signed in as the person the wrapped assertions named.
    let ana = server.cli_output(&["org", "member", "acme", "--email", "ana@acme.test", "--remove"]);
    assert!(!ana.status.success(), "ana@acme.test never became a member");
    let refused = server.audit_actions().iter().filter(|e| e["action"] == "signin.sso" && e["outcome"] != "success").count();
    assert!(refused >= 20, "every refusal that reached the sign-in is audited: {refused}");
}

/// This process's user + system CPU time, in seconds.
fn cpu_seconds() -> f64 {
    common::cpu_ticks(std::process::id()) as f64 / 100.0
}

/// The server CPU of the ACS (not run by the test suite):
///
///   cargo build --release -p latchkey
///   LATCHKEY_TEST_SERVER_BINARY=target/release/latchkey LATCHKEY_TEST_SERVER_CPU=0 \
///     cargo test --release --test sso_saml -- --ignored --nocapture
///
/// `BENCH_RESPONSES` sign-ins are started (one browser each) and answered by the IdP beforehand;
/// then all are posted to the ACS, 8 at a time: verification, the request taken, the assertion
/// recorded, the account found, a session made. Then each is posted once more: verified, then
/// refused as already answered (one UPDATE and an audit row) — close to the verification alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; see the comment"]
async fn saml_acs_cpu() {
    use futures_util::{StreamExt, stream};
    let n: usize = std::env::var("BENCH_RESPONSES").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let f = Fixture::with(&[("LATCHKEY_WORKERS", "1")]).await;
    // The first sign-in makes the account (just in time); the measured ones sign it in.
    let (browser, request_id) = f.started("eve@acme.test").await;
    let first = post_acs(&browser, &f.acs, &f.sign(json!({ "user": "eve@acme.test", "in_response_to": request_id })).await).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let mut prepared = Vec::new();
    for _ in 0..n {
        let (browser, request_id) = f.started("eve@acme.test").await;
        let response = f.sign(json!({ "user": "eve@acme.test", "in_response_to": request_id })).await;
        prepared.push((browser, response));
    }
    let bytes = prepared[0].1.len();
    // The verification alone, in this process (samael and libxmlsec1 optimised as in the server; this
    // crate's glue at the test profile's opt-level): the same checks `saml::verify` makes at the ACS.
    let metadata_xml = f.idp.browser().get(&f.metadata_url).send().await.expect("metadata").text().await.expect("xml");
    let idp = latchkey::sso::saml::parse_metadata(&metadata_xml, false).expect("metadata");
    let settings = latchkey::sso::saml::SamlSettings {
        idp_entity_id: idp.entity_id,
        sso_url: idp.sso_url,
        certificates: idp.certificates,
        allow_idp_initiated: false,
        metadata_url: None,
        sp_certificate: String::new(),
        role_map: vec![],
    };
    let urls = latchkey::sso::saml::ServiceProviderUrls { entity_id: f.acs.replace("/acs", "/metadata"), acs_url: f.acs.clone() };
    let started = std::time::Instant::now();
    let cpu = cpu_seconds();
    for (_, response) in &prepared {
        latchkey::sso::saml::verify(&settings, &urls, response).expect("verifies");
    }
    println!(
        "BENCH SAML verify only (in process): {n} responses, {:.3} ms CPU each, {:.3} ms wall each",
        (cpu_seconds() - cpu) * 1000.0 / n as f64,
        started.elapsed().as_secs_f64() * 1000.0 / n as f64
    );
    // The same with samael's default reduction (the document pruned to its signed nodes), side by side.
    let descriptor: samael::metadata::EntityDescriptor = metadata_xml.trim_start_matches('\u{feff}').parse().expect("descriptor");
    let provider = samael::service_provider::ServiceProviderBuilder::default()
        .entity_id(urls.entity_id.clone())
        .acs_url(urls.acs_url.clone())
        .idp_metadata(descriptor)
        .allow_idp_initiated(true)
        .build()
        .expect("provider");
    use base64::Engine;
    let xmls: Vec<String> = prepared
        .iter()
        .map(|(_, r)| String::from_utf8(base64::engine::general_purpose::STANDARD.decode(r).expect("base64")).expect("utf8"))
        .collect();
    for mode in [samael::crypto::ReduceMode::ValidateAndMarkNoAncestors, samael::crypto::ReduceMode::PreDigest] {
        let cpu = cpu_seconds();
        for xml in &xmls {
            provider.parse_xml_response_with_mode(xml, None, mode).expect("verifies");
        }
        println!("BENCH SAML samael alone, {mode:?}: {:.3} ms CPU each", (cpu_seconds() - cpu) * 1000.0 / n as f64);
    }
    // Of which: one serde parse of the response (samael's types; `verify` makes one of the whole
    // document for Destination and the wrapping check, samael more of the signed part).
    let xml = &xmls[0];
    let cpu = cpu_seconds();
    for _ in 0..n {
        let _: samael::schema::Response = xml.parse().expect("parses");
    }
    println!("BENCH SAML one serde parse of the response: {:.3} ms CPU each", (cpu_seconds() - cpu) * 1000.0 / n as f64);
    let pid = f.server.pid();
    let acs = f.acs.as_str();
    for (what, expected) in [("accepted", StatusCode::SEE_OTHER), ("refused replay", StatusCode::BAD_REQUEST)] {
        // BENCH_PERF=file: the server's profile of the replays (`perf report -i file`).
        let perf = std::env::var("BENCH_PERF").ok().filter(|_| what == "refused replay").map(|file| {
            std::process::Command::new("perf")
                .args(["record", "-F", "999", "-g", "-o", &file, "-p", &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("perf")
        });
        let before = common::cpu_ticks(pid);
        let started = std::time::Instant::now();
        let statuses: Vec<StatusCode> = stream::iter(prepared.iter())
            .map(|(browser, response)| async move {
                // A connection the server closed while the client held it idle (actix's keep-alive
                // ran out during the preparation) fails before the request is sent: send it again.
                match browser.post(acs).form(&[("SAMLResponse", response.as_str())]).send().await {
                    Ok(r) => r.status(),
                    Err(_) => post_acs(browser, acs, response).await.status(),
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        let elapsed = started.elapsed();
        assert!(statuses.iter().all(|s| *s == expected), "{what}: {statuses:?}");
        let ticks = common::cpu_ticks(pid) - before;
        if let Some(perf) = perf {
            let _ = std::process::Command::new("kill").args(["-INT", &perf.id().to_string()]).status();
            let _ = perf.wait_with_output();
        }
        println!(
            "BENCH SAML ACS {what}: {n} responses ({bytes} bytes base64, assertion signed RSA-SHA256), server CPU {:.3} ms each ({ticks} ticks), {:.0}/s wall",
            ticks as f64 * 10.0 / n as f64,
            n as f64 / elapsed.as_secs_f64()
        );
    }
}

/// The email-code way in, as chosen on the "Continue to your organization" page: the status of the
/// code's POST (303 with a session, or the refusal).
async fn code_way(f: &Fixture, browser: &reqwest::Client, email: &str) -> (StatusCode, String) {
    let server = &f.server;
    let form = browser.get(format!("{}?way=code&login_hint={}", server.url("login"), common::urlencode(email))).send().await.expect("form");
    let page = form.text().await.expect("page");
    assert!(page.contains("instead of your organization"), "{}", common::page_text(&page));
    let csrf = common::hidden_input(&page, "csrf").expect("csrf");
    assert_eq!(common::hidden_input(&page, "way").as_deref(), Some("code"));
    let before = f.smtp.code_count(email);
    let sent = browser.post(server.url("login")).form(&[("csrf", csrf.as_str()), ("email", email), ("way", "code")]).send().await.expect("send");
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    assert!(location(&sent).contains("/login/code"), "a code, not the IdP: {}", location(&sent));
    let code = f.smtp.code_for(email, before + 1).await;
    let page = browser.get(server.url("login/code")).send().await.expect("code form").text().await.expect("page");
    let csrf = common::hidden_input(&page, "csrf").expect("csrf");
    let checked = browser.post(server.url("login/code")).form(&[("csrf", csrf.as_str()), ("code", code.as_str())]).send().await.expect("check");
    let status = checked.status();
    (status, common::page_text(&checked.text().await.unwrap_or_default()))
}

/// A passkey on its own ("Sign in with a passkey" on the sign-in page): the status of its finish.
async fn passkey_alone(server: &Server, email: &str) -> StatusCode {
    let browser = common::browser();
    let page = browser.get(server.url("login")).send().await.expect("login").text().await.expect("page");
    let csrf = common::data_attr(&page, "csrf").expect("data-csrf");
    let (status, start) = common::passkey_post(server, &browser, &csrf, "passkey/authenticate/options", json!({ "mode": "discoverable" })).await;
    assert_eq!(status, StatusCode::OK, "{start}");
    let options = serde_json::from_value(start["options"].clone()).expect("options");
    let credential = common::discoverable_assertion(email, url::Url::parse(&server.base).expect("origin"), options);
    let (status, _) = common::passkey_post(server, &browser, &csrf, "passkey/authenticate", json!({
        "ceremony": start["ceremony"], "mode": "discoverable", "credential": credential,
    }))
    .await;
    status
}

#[tokio::test]
async fn enforced_sso_closes_every_other_way_in_but_the_owners_audited_one() {
    let f = Fixture::new().await;
    let server = &f.server;
    server.cli(&["org", "member", "acme", "--email", "olga@acme.test", "--role", "owner"]);
    server.cli(&["org", "member", "acme", "--email", "eve@acme.test"]);

    // Not enforced: the page that sends an address to its IdP also offers the email code, and it works.
    let page = f.idp.browser().get(format!("{}?connection={}&login_hint=eve%40acme.test", server.url("login/sso"), f.connection)).send().await.expect("page");
    assert!(page.text().await.expect("page").contains("Sign in with an email code instead"));
    for email in ["eve@acme.test", "olga@acme.test"] {
        let browser = f.idp.browser();
        let (status, page) = code_way(&f, &browser, email).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{email}: {page}");
        // Each enrolls a passkey (which the passkey-alone sign-in below uses).
        let (done, _) = walk_pages(server, &f.smtp, &browser, &server.url("account"), email, |page| page.contains("Sign out")).await;
        assert!(done.ends_with("/account"), "{done}");
    }
    assert_eq!(passkey_alone(server, "eve@acme.test").await, StatusCode::OK);

    // Enforcement needs a verified domain.
    server.cli(&["org", "domain", "add", "acme", "beta.acme-corp.test"]);
    let refused = server.cli_output(&["org", "domain", "enforce", "acme", "beta.acme-corp.test"]);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("not verified"));
    let said = server.cli(&["org", "domain", "enforce", "acme", "acme.test"]);
    assert!(said.contains("SSO enforced"), "{said}");
    assert!(server.cli(&["org", "domain", "list", "acme"]).contains("SSO enforced"));

    // Enforced: the page names the owners' way; for anyone else every way but the IdP is refused.
    let page = f.idp.browser().get(format!("{}?connection={}&login_hint=eve%40acme.test", server.url("login/sso"), f.connection)).send().await.expect("page");
    assert!(page.text().await.expect("page").contains("Organization owners: sign in with an email code (break-glass)"));
    let browser = f.idp.browser();
    let (status, page) = code_way(&f, &browser, "eve@acme.test").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("requires signing in through its own sign-in"), "{page}");
    assert_eq!(signed_in_as(server, &browser).await, None);
    assert_eq!(passkey_alone(server, "eve@acme.test").await, StatusCode::FORBIDDEN);
    let recovery_page = browser.get(server.url("login/recovery")).send().await.expect("recovery").text().await.expect("page");
    let csrf = common::hidden_input(&recovery_page, "csrf").expect("csrf");
    let code = common::recovery_codes_of("eve@acme.test").into_iter().next().expect("eve's recovery code");
    let recovery = browser
        .post(server.url("login/recovery"))
        .form(&[("csrf", csrf.as_str()), ("email", "eve@acme.test"), ("code", code.as_str())])
        .send()
        .await
        .expect("recovery");
    assert_eq!(recovery.status(), StatusCode::FORBIDDEN);
    assert_eq!(signed_in_as(server, &browser).await, None);
    // Through the IdP, eve signs in as before.
    let (sso_browser, request_id) = f.started("eve@acme.test").await;
    let answer = f.sign(json!({ "user": "eve@acme.test", "in_response_to": request_id })).await;
    assert_eq!(post_acs(&sso_browser, &f.acs, &answer).await.status(), StatusCode::SEE_OTHER);

    // The owner's break-glass: the email code, then the passkey, audited as such.
    let owner = f.idp.browser();
    let (status, page) = code_way(&f, &owner, "olga@acme.test").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(passkey_alone(server, "olga@acme.test").await, StatusCode::OK);
    let actions = server.audit_actions();
    assert_eq!(actions.iter().filter(|e| e["action"] == "signin.break_glass").count(), 2, "the code and the passkey");
    assert!(actions.iter().any(|e| e["action"] == "domain.sso_enforce"));
    let refusals = actions.iter().filter(|e| e["outcome"] != "success" && e["details"].to_string().contains("sso_required")).count();
    assert_eq!(refusals, 3, "eve's code, passkey and recovery code");

    // Relaxed again: the email code works for everyone.
    server.cli(&["org", "domain", "enforce", "acme", "acme.test", "--off"]);
    let (status, page) = code_way(&f, &f.idp.browser(), "eve@acme.test").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
}

/// The administration page of acme as `browser` sees it.
async fn admin_page(server: &Server, browser: &reqwest::Client) -> (StatusCode, String) {
    let response = browser.get(server.url("org/acme/admin")).send().await.expect("admin page");
    let status = response.status();
    (status, response.text().await.expect("page"))
}

/// One of the administration forms, posted with the page's CSRF token: the response.
async fn admin_post(server: &Server, browser: &reqwest::Client, fields: &[(&str, &str)]) -> reqwest::Response {
    let (_, page) = admin_page(server, browser).await;
    let csrf = common::hidden_input(&page, "csrf").expect("csrf");
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    browser.post(server.url("org/acme/admin")).form(&form).send().await.expect("admin post")
}

/// A fresh passkey assertion (the step-up every change here needs).
async fn step_up(stage: &Stage, browser: &reqwest::Client, email: &str) {
    let (done, _) = walk_pages(&stage.server, &stage.smtp, browser, &stage.server.url("passkey?step_up=1"), email, |page| page.contains("Sign out")).await;
    assert!(done.ends_with("/account"), "{done}");
}

// The software authenticators of tests/common are kept per address for the whole test process:
// tests running side by side use addresses of their own.
#[tokio::test]
async fn an_owner_wires_a_saml_directory_in_through_the_admin_pages() {
    let mut stage = Stage::new(&[("LATCHKEY_STEP_UP_TTL", "4")]).await;
    let server = &stage.server;
    // The operator makes the organization and its first owner; the owner does the rest on the pages.
    server.cli(&["org", "create", "acme", "--name", "Acme"]);
    server.cli(&["org", "member", "acme", "--email", "owen@acme.test", "--role", "owner"]);
    server.cli(&["org", "member", "acme", "--email", "max@acme.test"]);
    let owner = stage.idp.browser();
    let (_, account) = walk_pages(server, &stage.smtp, &owner, &server.url("account"), "owen@acme.test", |page| page.contains("Sign out")).await;
    let account = account.expect("account page");
    assert!(account.contains("You administer") && account.contains("/org/acme/admin"), "{}", common::page_text(&account));

    // Not for members without the role, nor for anyone not signed in.
    let member = stage.idp.browser();
    walk_pages(server, &stage.smtp, &member, &server.url("account"), "max@acme.test", |page| page.contains("Sign out")).await;
    assert_eq!(admin_page(server, &member).await.0, StatusCode::FORBIDDEN);
    let response = common::browser().get(server.url("org/acme/admin")).send().await.expect("anonymous");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).ends_with("/login"));
    let (status, page) = admin_page(server, &owner).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("owen@acme.test") && page.contains("max@acme.test"), "{}", common::page_text(&page));

    // A domain: its TXT record shown, published, verified.
    step_up(&stage, &owner, "owen@acme.test").await;
    let added = admin_post(server, &owner, &[("op", "add-domain"), ("domain", "acme.test")]).await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    let (_, page) = admin_page(server, &owner).await;
    assert!(page.contains("_latchkey-challenge.acme.test") && page.contains("Waiting for the TXT record"), "{}", common::page_text(&page));
    let value = page.split("record-value\">").nth(1).and_then(|r| r.split('<').next()).expect("TXT value").to_owned();
    stage.dns.set(&[("_latchkey-challenge.acme.test", &value)]).await;
    let server = &stage.server;
    step_up(&stage, &owner, "owen@acme.test").await;
    let verified = admin_post(server, &owner, &[("op", "verify-domain"), ("domain", "acme.test")]).await;
    assert_eq!(verified.status(), StatusCode::SEE_OTHER, "{}", common::page_text(&verified.text().await.unwrap_or_default()));

    // A SAML connection from pasted metadata; the values to copy into the IdP are on the page.
    let metadata = stage.idp.browser().get(stage.metadata_url()).send().await.expect("IdP metadata").text().await.expect("xml");
    let refused = admin_post(server, &owner, &[("op", "add-saml"), ("name", "Acme Entra ID"), ("metadata_xml", "<EntityDescriptor/>")]).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "unusable metadata is refused with the reason");
    assert!(common::page_text(&refused.text().await.expect("page")).contains("metadata cannot be used"));
    let created = admin_post(
        server,
        &owner,
        &[("op", "add-saml"), ("name", "Acme Entra ID"), ("metadata_xml", metadata.as_str()), ("role_map", "g-admins=admin")],
    )
    .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let (_, page) = admin_page(server, &owner).await;
    let text = common::page_text(&page);
    for label in ["Identifier (entity id)", "Reply URL (ACS)", "SP metadata", "https://sts.windows.net/", "Passkey after SSO"] {
        assert!(page.contains(label), "{label} in {text}");
    }
    let entity = page.split("/sso/saml/").nth(1).and_then(|r| r.split('/').next()).map(|id| format!("{}/sso/saml/{id}/metadata", server.issuer("default"))).expect("entity id");
    stage.register_sp(&entity).await;

    // "Test connection": the IdP's answer is shown to the owner, and nobody is signed in or made.
    let test = page.split("href=\"").find(|r| r.contains("/admin/test/")).and_then(|r| r.split('"').next()).expect("test link").replace("&#38;", "&");
    let started = owner.get(&test).send().await.expect("test");
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let idp_page = owner.get(location(&started)).send().await.expect("IdP").text().await.expect("page");
    let (action, saml_response) = post_form(&idp_page);
    let report = post_acs(&owner, &action, &saml_response).await;
    assert_eq!(report.status(), StatusCode::OK);
    let report = common::page_text(&report.text().await.expect("report"));
    for part in ["Acme Entra ID works", "ana@acme.test", &format!("entra:{TID}:00000000-0000-0000-0000-0000000000a1"), "create the account ana@acme.test", "pwd, mfa", "roles from its groups: admin"] {
        assert!(report.contains(part), "{part} in {report}");
    }
    let ana = server.cli_output(&["org", "member", "acme", "--email", "ana@acme.test", "--remove"]);
    assert!(!ana.status.success(), "the test made no account");
    let account = owner.get(server.url("account")).send().await.expect("account").text().await.expect("page");
    assert!(account.contains("owen@acme.test") && !account.contains("ana@acme.test"), "the browser is still the owner's");
    assert!(server.audit_actions().iter().any(|e| e["action"] == "sso.connection_test"));

    // The enforcement switch.
    step_up(&stage, &owner, "owen@acme.test").await;
    let enforced = admin_post(server, &owner, &[("op", "enforce"), ("domain", "acme.test")]).await;
    assert_eq!(enforced.status(), StatusCode::SEE_OTHER);
    let (_, page) = admin_page(server, &owner).await;
    assert!(common::page_text(&page).contains("SSO enforced"));
    // A member cannot take the owner role; an owner cannot leave the organization ownerless.
    let demoted = admin_post(server, &owner, &[("op", "set-member"), ("email", "owen@acme.test"), ("roles", "admin")]).await;
    assert_eq!(demoted.status(), StatusCode::CONFLICT);
    // Once the step-up is stale, a change asks for it again and changes nothing.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let stale = admin_post(server, &owner, &[("op", "relax"), ("domain", "acme.test")]).await;
    assert_eq!(stale.status(), StatusCode::SEE_OTHER);
    assert!(location(&stale).contains("passkey?step_up=1"), "{}", location(&stale));
    assert!(common::page_text(&admin_page(server, &owner).await.1).contains("SSO enforced"));
    let mut changes: Vec<String> = server
        .audit_actions()
        .iter()
        .filter(|e| e["details"].to_string().contains("admin pages"))
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect();
    changes.sort();
    assert_eq!(changes, ["domain.claim", "domain.sso_enforce", "domain.verify", "sso.connection_create"], "every change audited");
}
