//! SSO over OpenID Connect against an independent OpenID Provider (panva's oidc-provider, shaped like a
//! Microsoft Entra directory: GUID issuer, `tid`/`oid`/`xms_edov`) on loopback https, with the
//! organization's domain verified through a real DNS server: home-realm discovery from the sign-in
//! page, just-in-time provisioning, a passkey after SSO, and tokens that say how the person signed in;
//! then the nOAuth takeover: an IdP asserting an address it does not prove is refused.

mod common;

use common::{Deployment, DnsServer, NodeIdp, Server, SmtpCatcher, exchange_code, jwt_claims, location, pkce, query_param, walk_pages};
use reqwest::StatusCode;

const TID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
const CLIENT_SECRET: &str = "idp-client-secret-for-tests";

/// panva's oidc-provider at https://localhost:PORT/TID/v2.0 (tests/sso/idp.mjs).
fn start_idp(idp: &mut NodeIdp, redirect_uri: &str, users: serde_json::Value) {
    idp.start(
        "idp.mjs",
        &[
            ("TID", TID.to_owned()),
            ("CLIENT_ID", "latchkey".to_owned()),
            ("CLIENT_SECRET", CLIENT_SECRET.to_owned()),
            ("REDIRECT_URI", redirect_uri.to_owned()),
            ("USERS", users.to_string()),
        ],
    );
}

fn issuer(idp: &NodeIdp) -> String {
    idp.url(&format!("/{TID}/v2.0"))
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
    let mut idp = NodeIdp::prepare();
    let ca_file = idp.ca_file();
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
    start_idp(&mut idp, &format!("{base}/t/default/sso/callback"), users);

    // The administrator's part: organization, verified domain, Entra connection.
    server.cli(&["org", "create", "acme", "--name", "Acme"]);
    let added = server.cli(&["org", "domain", "add", "acme", "acme.test"]);
    let value = added.lines().last().expect("record").split('\t').nth(2).expect("value").to_owned();
    dns.set(&[("_latchkey-challenge.acme.test", &value)]).await;
    server.cli(&["org", "domain", "verify", "acme", "acme.test"]);
    let output = server.cli_output_with(
        &["org", "sso", "add-oidc", "acme", "--name", "Acme Entra ID", "--flavor", "entra", "--issuer", &issuer(&idp),
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
    let browser = idp.browser();
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
    assert!(at_idp.starts_with(&issuer(&idp)), "{at_idp}");
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
    let attacker = idp.browser();
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
