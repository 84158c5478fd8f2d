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

fn users() -> serde_json::Value {
    serde_json::json!({
        "ana@acme.test": { "sub": "pairwise-ana", "oid": "00000000-0000-0000-0000-0000000000a1", "tid": TID,
                           "email": "ana@acme.test", "xms_edov": true, "name": "Ana Admin", "given_name": "Ana", "family_name": "Admin",
                           "amr": ["pwd", "mfa"] },
        // Provisioned over SCIM with `externalId` = her object id; Entra does not prove her address.
        "pat@acme.test": { "sub": "pairwise-pat", "oid": "00000000-0000-0000-0000-0000000000a2", "tid": TID,
                           "email": "pat@acme.test", "name": "Pat" },
        // nOAuth: this directory's user set her `email` to the victim's address; Entra does not prove it.
        "mallory@evil.test": { "sub": "pairwise-mallory", "oid": "00000000-0000-0000-0000-0000000000e1", "tid": TID,
                     "email": "victim@acme.test" },
    })
}

/// The IdP, the server, and the administrator's part done with the CLI: organization, verified
/// domain, Entra connection.
struct Wired {
    _dns: DnsServer,
    _deployment: Deployment,
    smtp: SmtpCatcher,
    idp: NodeIdp,
    server: Server,
    connection: String,
}

async fn wired(extra: &[(&str, &str)]) -> Wired {
    let mut dns = DnsServer::start("acme.test", &[]).await;
    let (deployment, smtp) = (Deployment::new().await, SmtpCatcher::start().await);
    let mut idp = NodeIdp::prepare();
    let (dns_address, ca_file) = (dns.address(), idp.ca_file());
    let mut env = vec![
        ("LATCHKEY_DNS_NAMESERVERS", dns_address.as_str()),
        ("LATCHKEY_SSO_ALLOW_LOOPBACK", "true"),
        ("LATCHKEY_SSO_EXTRA_ROOTS", ca_file.as_str()),
    ];
    env.extend_from_slice(extra);
    let server = Server::start(&deployment, &smtp, &env).await;
    let base = server.base.clone();
    start_idp(&mut idp, &format!("{base}/t/default/sso/callback"), users());
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
    Wired { _dns: dns, _deployment: deployment, smtp, idp, server, connection }
}

#[tokio::test]
async fn an_entra_directory_signs_its_people_in_and_cannot_take_over_an_address_it_does_not_prove() {
    let w = wired(&[]).await;
    let (server, smtp, idp, connection) = (&w.server, &w.smtp, &w.idp, &w.connection);

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

/// A person the organization's SCIM directory provisioned is linked by the IdP's immutable id (the
/// directory's `externalId` = Entra's object id), never by the address alone: the same unproven
/// address that SSO alone refuses signs in to the provisioned account; deprovisioned, it is refused.
#[tokio::test]
async fn a_person_provisioned_over_scim_signs_in_through_sso_linked_by_the_idp_id() {
    let w = wired(&[]).await;
    let (server, connection, idp) = (&w.server, &w.connection, &w.idp);
    let sso_sign_in = |email: &'static str| async move {
        let browser = idp.browser();
        let first = browser.get(server.url(&format!("sso/{connection}/start?login_hint={}", email.replace('@', "%40")))).send().await.expect("start");
        assert_eq!(first.status(), StatusCode::SEE_OTHER);
        let callback = through_idp(server, &browser, &location(&first)).await;
        let answer = browser.get(&callback).send().await.expect("callback");
        (answer.status(), answer.text().await.expect("body"))
    };
    // Not provisioned: Entra does not vouch for the address, so SSO alone makes no account.
    let (status, page) = sso_sign_in("pat@acme.test").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{}", common::page_text(&page));

    // Provisioned with her object id as externalId: an account of acme.
    let out = server.cli(&["org", "scim", "token", "acme"]);
    let base = out.lines().find_map(|l| l.strip_prefix("SCIM base URL (Entra: Tenant URL): ")).expect("base").to_owned();
    let token = out.lines().last().expect("token").trim().to_owned();
    let scim = |method: reqwest::Method, path: String, body: serde_json::Value| {
        let (token, base) = (token.clone(), base.clone());
        async move {
            let response = common::api().request(method, format!("{base}{path}")).bearer_auth(token).header("content-type", "application/scim+json").body(body.to_string()).send().await.expect("scim");
            (response.status(), response.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let (status, created) = scim(reqwest::Method::POST, "/Users".into(), serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "pat@acme.test",
        "externalId": "00000000-0000-0000-0000-0000000000a2",
        "emails": [{ "value": "pat@acme.test", "type": "work", "primary": true }],
        "active": true,
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, page) = sso_sign_in("pat@acme.test").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{}", common::page_text(&page));
    let signins: Vec<serde_json::Value> = server.audit_actions().into_iter().filter(|e| e["action"] == "signin.sso" && e["outcome"] == "success").collect();
    assert!(signins[0]["details"].as_str().expect("details").contains("\"account\":\"attached\""), "{signins:?}");

    // Deprovisioned: the IdP's sign-in is refused.
    let id = created["id"].as_str().expect("id");
    let (status, _) = scim(reqwest::Method::PATCH, format!("/Users/{id}"), serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "op": "replace", "path": "active", "value": false }],
    }))
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, page) = sso_sign_in("pat@acme.test").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("disabled"), "{}", common::page_text(&page));
}

#[tokio::test]
async fn continue_with_google_signs_people_in_under_the_same_linking_rules() {
    let w = wired(&[]).await;
    let server = &w.server;
    // A Google-compatible provider (oidc-provider again, with Google's claims: sub, email,
    // email_verified), trusted through the same test CA.
    let mut google = w.idp.alongside();
    let people = serde_json::json!({
        "gus@gmail.test": { "sub": "g-gus", "email": "gus@gmail.test", "email_verified": true, "name": "Gus", "amr": ["pwd"] },
        "unproven@gmail.test": { "sub": "g-unproven", "email": "unproven@gmail.test", "email_verified": false },
        // acme.test is verified by the acme organization, which signs its people in through Entra.
        "ana@acme.test": { "sub": "g-ana", "email": "ana@acme.test", "email_verified": true },
    });
    start_idp(&mut google, &format!("{}/t/default/sso/callback", server.base), people);
    let output = server.cli_output_with(
        &["tenant", "social", "add", "google", "--client-id", "latchkey", "--client-secret-env", "IDP_SECRET", "--issuer", &issuer(&google)],
        &[("IDP_SECRET", CLIENT_SECRET)],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let connection = String::from_utf8_lossy(&output.stdout).split_whitespace().nth(3).expect("connection id").to_owned();

    // The sign-in page offers it beside the email field.
    let page = reqwest::get(server.url("login")).await.expect("login").text().await.expect("page");
    assert!(page.contains("Continue with Google") && page.contains(&format!("/sso/{connection}/start")), "{page}");

    let social = |hint: &str| {
        let browser = google.browser();
        let start = server.url(&format!("sso/{connection}/start?login_hint={}", common::urlencode(hint)));
        async move {
            let first = browser.get(&start).send().await.expect("start");
            assert_eq!(first.status(), StatusCode::SEE_OTHER);
            let callback = through_idp(server, &browser, &location(&first)).await;
            (browser, callback)
        }
    };
    // A new person: an account just in time, the passkey, signed in; a member of nothing.
    let (browser, callback) = social("gus@gmail.test").await;
    let (done, _) = walk_pages(server, &w.smtp, &browser, &callback, "gus@gmail.test", |page| page.contains("Sign out")).await;
    assert!(done.ends_with("/account"), "{done}");
    let outside = server.cli_output(&["org", "member", "acme", "--email", "gus@gmail.test", "--remove"]);
    assert!(!outside.status.success(), "a social sign-in makes nobody a member");
    // An address Google does not vouch for, and an organization's address: refused, nothing made.
    for (hint, why) in [("unproven@gmail.test", "did not confirm that this email address is yours"), ("ana@acme.test", "signs its people in through its own sign-in")] {
        let (browser, callback) = social(hint).await;
        let refused = browser.get(&callback).send().await.expect("callback");
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{hint}");
        assert!(common::page_text(&refused.text().await.expect("page")).contains(why), "{hint}");
        let account = browser.get(server.url("account")).send().await.expect("account");
        assert!(location(&account).ends_with("/login"), "{hint}: no session");
    }
    let listed = server.cli(&["tenant", "social", "list"]);
    assert!(listed.contains(&connection) && listed.contains("Google"), "{listed}");
    server.cli(&["tenant", "social", "remove", &connection]);
    let page = reqwest::get(server.url("login")).await.expect("login").text().await.expect("page");
    assert!(!page.contains("Continue with Google"));
}

#[tokio::test]
async fn a_connection_authenticates_at_the_token_endpoint_with_a_key_latchkey_holds() {
    let w = wired(&[]).await;
    let server = &w.server;
    // A second directory whose app registration knows Latchkey by a key, not a secret.
    let mut idp = w.idp.alongside();
    let issuer = issuer(&idp);
    let output = server.cli_output(&[
        "org", "sso", "add-oidc", "acme", "--name", "Acme (key)", "--flavor", "entra", "--issuer", &issuer, "--client-id", "latchkey",
        "--client-auth", "private-key-jwt",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    let connection = said.split_whitespace().nth(3).expect("connection id").to_owned();
    assert!(said.contains("-----BEGIN CERTIFICATE-----"), "the certificate to upload: {said}");
    let jwks_url = server.url(&format!("sso/{connection}/jwks"));
    assert!(said.contains(&jwks_url), "{said}");
    let jwks: serde_json::Value = reqwest::get(&jwks_url).await.expect("jwks").json().await.expect("json");
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert!(jwks["keys"][0].get("d").is_none(), "public parts only");
    // The IdP (oidc-provider) verifies the assertions against that JWKS with its own JOSE library.
    idp.start(
        "idp.mjs",
        &[
            ("TID", TID.to_owned()),
            ("CLIENT_ID", "latchkey".to_owned()),
            ("CLIENT_SECRET", "unused-by-this-client".to_owned()),
            ("REDIRECT_URI", format!("{}/t/default/sso/callback", server.base)),
            ("USERS", users().to_string()),
            ("CLIENT_JWKS", jwks.to_string()),
        ],
    );
    let browser = idp.browser();
    let first = browser.get(server.url(&format!("sso/{connection}/start?login_hint=ana%40acme.test"))).send().await.expect("start");
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let callback = through_idp(server, &browser, &location(&first)).await;
    let (done, _) = walk_pages(server, &w.smtp, &browser, &callback, "ana@acme.test", |page| page.contains("Sign out")).await;
    assert!(done.ends_with("/account"), "signed in through the key-authenticated exchange: {done}");

    // A connection whose key the IdP does not know: the exchange is refused, nobody signed in.
    let output = server.cli_output(&[
        "org", "sso", "add-oidc", "acme", "--name", "Acme (other key)", "--flavor", "entra", "--issuer", &issuer, "--client-id", "latchkey",
        "--client-auth", "private-key-jwt",
    ]);
    let other = String::from_utf8_lossy(&output.stdout).split_whitespace().nth(3).expect("connection id").to_owned();
    let stranger = idp.browser();
    let first = stranger.get(server.url(&format!("sso/{other}/start?login_hint=ana%40acme.test"))).send().await.expect("start");
    let callback = through_idp(server, &stranger, &location(&first)).await;
    let refused = stranger.get(&callback).send().await.expect("callback");
    assert_eq!(refused.status(), StatusCode::BAD_GATEWAY);
    assert!(common::page_text(&refused.text().await.expect("page")).contains("invalid_client"));
    let account = stranger.get(server.url("account")).send().await.expect("account");
    assert!(location(&account).ends_with("/login"));
}

#[tokio::test]
async fn entras_multi_tenant_document_is_held_to_each_tokens_own_directory() {
    let w = wired(&[]).await;
    let server = &w.server;
    let common = w.idp.url("/organizations/v2.0");
    let add = |name: &str, tenants: &[&str]| {
        let mut args = vec!["org", "sso", "add-oidc", "acme", "--name", name, "--flavor", "entra", "--issuer", common.as_str(), "--client-id", "latchkey", "--client-secret-env", "IDP_SECRET"];
        for tenant in tenants {
            args.extend(["--allowed-tenant", tenant]);
        }
        let output = server.cli_output_with(&args, &[("IDP_SECRET", CLIENT_SECRET)]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).split_whitespace().nth(3).expect("connection id").to_owned()
    };
    let start = |connection: &str| {
        let browser = w.idp.browser();
        let url = server.url(&format!("sso/{connection}/start?login_hint=ana%40acme.test"));
        async move {
            let first = browser.get(&url).send().await.expect("start");
            (browser, first)
        }
    };
    // The template ("https://…/{tenantid}/v2.0") with the directory on the list: the token's iss is the
    // template with its own tid substituted, so it signs in.
    let listed = add("Acme (multi-tenant)", &[TID]);
    let (browser, first) = start(&listed).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let callback = through_idp(server, &browser, &location(&first)).await;
    let (done, _) = walk_pages(server, &w.smtp, &browser, &callback, "ana@acme.test", |page| page.contains("Sign out")).await;
    assert!(done.ends_with("/account"), "{done}");
    // Another directory's list: the same token is refused for its tid.
    let other = add("Acme (another directory)", &["72f988bf-86f1-41af-91ab-2d7cd011db47"]);
    let (browser, first) = start(&other).await;
    let callback = through_idp(server, &browser, &location(&first)).await;
    let refused = browser.get(&callback).send().await.expect("callback");
    assert_eq!(refused.status(), StatusCode::BAD_GATEWAY);
    assert!(common::page_text(&refused.text().await.expect("page")).contains(TID), "names the directory refused");
    assert!(location(&browser.get(server.url("account")).send().await.expect("account")).ends_with("/login"));
    // No list: the template is never an issuer, so the sign-in does not even start.
    let unlisted = add("Acme (no list)", &[]);
    let (_, first) = start(&unlisted).await;
    assert_eq!(first.status(), StatusCode::BAD_GATEWAY);
}

/// The server CPU of the OIDC callback (not run by the test suite):
///
///   cargo build --release -p latchkey
///   LATCHKEY_TEST_SERVER_BINARY=target/release/latchkey LATCHKEY_TEST_SERVER_CPU=0 \
///     cargo test --test sso_oidc -- --ignored --nocapture
///
/// `BENCH_SIGNINS` sign-ins are walked through the IdP up to the redirect back (one browser each);
/// then all callbacks are made, 8 at a time: the request taken, the code exchanged at the IdP's token
/// endpoint (https, client secret, PKCE), the ID token verified (RS256 against the cached JWKS), the
/// account found, a session made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; see the comment"]
async fn oidc_callback_cpu() {
    use futures_util::{StreamExt, stream};
    let n: usize = std::env::var("BENCH_SIGNINS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let w = wired(&[("LATCHKEY_WORKERS", "1"), ("LATCHKEY_RATE_SSO_PER_IP_PER_MINUTE", "1000000")]).await;
    let start = w.server.url(&format!("sso/{}/start?login_hint=ana%40acme.test", w.connection));
    let walk = || async {
        let browser = w.idp.browser();
        let first = browser.get(&start).send().await.expect("start");
        let callback = through_idp(&w.server, &browser, &location(&first)).await;
        (browser, callback)
    };
    // The first makes the account (just in time); the measured ones sign it in.
    let (browser, callback) = walk().await;
    assert_eq!(browser.get(&callback).send().await.expect("callback").status(), StatusCode::SEE_OTHER);
    let pid = w.server.pid();
    // In rounds: oidc-provider's in-memory store keeps about a thousand entries (codes, sessions,
    // grants), so a round's codes must all still be there when it is measured.
    let rounds = n.div_ceil(100);
    let (mut ticks, mut elapsed) = (0, std::time::Duration::ZERO);
    for _ in 0..rounds {
        let mut prepared = Vec::new();
        for _ in 0..100 {
            prepared.push(walk().await);
        }
        let before = common::cpu_ticks(pid);
        let started = std::time::Instant::now();
        let statuses: Vec<StatusCode> = stream::iter(prepared.iter())
            .map(|(browser, callback)| async move {
                // A pooled connection the server closed while idle fails before sending: send again.
                match browser.get(callback).send().await {
                    Ok(r) => r.status(),
                    Err(_) => browser.get(callback).send().await.expect("callback").status(),
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        elapsed += started.elapsed();
        ticks += common::cpu_ticks(pid) - before;
        let failed: Vec<_> = w.server.audit_actions().into_iter().filter(|e| e["action"] == "signin.sso" && e["outcome"] != "success").collect();
        assert!(statuses.iter().all(|s| *s == StatusCode::SEE_OTHER), "{} refused: {:?}", failed.len(), failed.first());
    }
    let n = rounds * 100;
    println!(
        "BENCH OIDC callback: {n} sign-ins, server CPU {:.3} ms each ({ticks} ticks), {:.0}/s wall",
        ticks as f64 * 10.0 / n as f64,
        n as f64 / elapsed.as_secs_f64()
    );
}
