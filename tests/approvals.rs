//! OpenID CIBA (poll mode) with RFC 9396 authorization details, end to end over HTTP on the
//! configured engine: the backchannel endpoint's errors, the person's mail and page (another
//! person's session refused; approving needs a passkey assertion made for it), the token endpoint's
//! answers (`authorization_pending`, `slow_down`, `access_denied`, `expired_token`, reuse), a race of
//! two polls that yields one token, and the permission API's decision endpoint asking for an approval
//! and spending it once. The MCP client's side, with a real browser, is in tests/browser.rs.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CIBA: &str = "urn:openid:params:grant-type:ciba";

struct Setup {
    smtp: SmtpCatcher,
    server: Server,
    deployment: Deployment,
    ciba: (String, String),
    resource: String,
}

/// Latchkey with `tool_call` details accepted, a CIBA client, and `resource` registered when given.
async fn setup(resource: Option<&str>) -> Setup {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    // No tenant cache: the detail types set below are seen at once.
    let server = Server::start(&deployment, &smtp, &[("LATCHKEY_CACHE_TTL", "0")]).await;
    server.cli(&["tenant", "set", "default", "--authorization-details-types", "tool_call"]);
    let (id, secret) = server.create_client(&["--name", "Tool gate", "--confidential", "--grant-type", CIBA]);
    if let Some(resource) = resource {
        server.cli(&["resource", "create", "--uri", resource, "--name", "Tools", "--scope", "files:write"]);
    }
    Setup { smtp, server, deployment, ciba: (id, secret.expect("secret")), resource: resource.unwrap_or_default().to_owned() }
}

/// Signs `email` in through an authorization code flow (email code, passkey, consent): the
/// browser's session and the person's `sub`.
async fn person(s: &Setup, email: &str) -> (reqwest::Client, String) {
    let redirect = "http://127.0.0.1:9/cb";
    let (client_id, secret) = s.server.create_client(&["--name", "App", "--confidential", "--redirect-uri", redirect]);
    let secret = secret.expect("secret");
    let pkce = pkce();
    let url = format!(
        "{}?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid&state=s&code_challenge={}&code_challenge_method=S256",
        s.server.url("authorize"),
        urlencode(redirect),
        pkce.challenge
    );
    let browser = browser();
    let callback = authorize_through_pages(&s.server, &s.smtp, &browser, &url, email).await;
    let code = query_param(&callback, "code").expect("code");
    let (status, tokens) = exchange_code(&s.server, &client_id, &secret, &code, redirect, &pkce.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let sub = jwt_claims(tokens["id_token"].as_str().expect("id token"))["sub"].as_str().expect("sub").to_owned();
    (browser, sub)
}

async fn backchannel(s: &Setup, (id, secret): (&str, &str), form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = api().post(s.server.url("bc-authorize")).basic_auth(id, Some(secret)).form(form).send().await.expect("bc-authorize");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn poll(s: &Setup, auth_req_id: &str) -> (StatusCode, Value) {
    poll_at(s, &s.server, auth_req_id).await
}

async fn poll_at(s: &Setup, node: &Server, auth_req_id: &str) -> (StatusCode, Value) {
    token_request(node, &s.ciba.0, &s.ciba.1, &[("grant_type", CIBA), ("auth_req_id", auth_req_id)]).await
}

fn details(s: &Setup, digest: &str) -> String {
    json!([{ "type": "tool_call", "tool": "files.delete", "action": "call", "arguments_digest": digest,
             "locations": [s.resource], "summary": "Delete 214 files in /billing" }])
    .to_string()
}

/// The person answers on the page: `approve` (a passkey assertion when asked) or deny.
async fn answer(s: &Setup, browser: &reqwest::Client, email: &str, uri: &str, decision: &str) {
    let page = browser.get(uri).send().await.expect("page").text().await.expect("html");
    let csrf = hidden_input(&page, "csrf").expect("csrf");
    let response = browser.post(uri).form(&[("csrf", csrf.as_str()), ("decision", decision)]).send().await.expect("answer");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let mut next = absolute(&s.server, &location(&response));
    if next.contains("/passkey?") {
        assert_eq!(decision, "approve", "only approving asks for a passkey");
        let page = browser.get(&next).send().await.expect("passkey page").text().await.expect("html");
        let back = absolute(&s.server, &passkey_step(&s.server, browser, &page, email).await);
        assert_eq!(back, uri, "the passkey page returns to the approval");
        let page = browser.get(uri).send().await.expect("page").text().await.expect("html");
        let csrf = hidden_input(&page, "csrf").expect("csrf");
        let response = browser.post(uri).form(&[("csrf", csrf.as_str()), ("decision", decision)]).send().await.expect("answer");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        next = absolute(&s.server, &location(&response));
    }
    assert!(next.ends_with("?done=1"), "{next}");
}

#[tokio::test]
async fn a_person_approves_with_a_passkey_and_the_client_gets_one_token_that_says_what_was_approved() {
    let s = setup(Some("https://tools.example/mcp")).await;
    let ada = "ada-ciba@example.com";
    let (ada_browser, ada_sub) = person(&s, ada).await;
    let (bob_browser, _) = person(&s, "bob-ciba@example.com").await;
    let ciba = (s.ciba.0.as_str(), s.ciba.1.as_str());
    let details = details(&s, "sha256:abc");
    let request = |binding: &'static str, expiry: &'static str| {
        vec![
            ("scope", "openid".to_owned()),
            ("login_hint", ada_sub.clone()),
            ("binding_message", binding.to_owned()),
            ("resource", s.resource.clone()),
            ("authorization_details", details.clone()),
            ("requested_expiry", expiry.to_owned()),
        ]
    };
    let send = |fields: Vec<(&'static str, String)>| {
        let s = &s;
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            backchannel(s, ciba, &pairs).await
        }
    };

    // Each error is the spec's, and nothing is asked of anyone.
    let mut unknown = request("X1", "300");
    unknown[1].1 = "no-such-user".into();
    assert_eq!(send(unknown).await.1["error"], "unknown_user_id");
    let (plain_id, plain_secret) = s.server.create_client(&["--name", "No CIBA", "--confidential", "--redirect-uri", "http://127.0.0.1:9/cb"]);
    let fields = request("X1", "300");
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = backchannel(&s, (&plain_id, plain_secret.as_deref().expect("secret")), &pairs).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unauthorized_client")));
    let (status, body) = backchannel(&s, (ciba.0, "wrong"), &pairs).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    for (field, value, error) in [
        ("scope", "files:write", "invalid_request"),
        ("binding_message", "\u{202e}gnp.exe", "invalid_binding_message"),
        ("authorization_details", r#"[{"type":"payment","amount":1}]"#, "invalid_authorization_details"),
        ("requested_expiry", "100000", "invalid_request"),
    ] {
        let mut fields = request("X1", "300");
        fields.iter_mut().filter(|(k, _)| *k == field).for_each(|(_, v)| *v = value.to_owned());
        let (status, body) = send(fields).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some(error)), "{field}: {body}");
    }
    let mut with_code = request("X1", "300");
    with_code.push(("user_code", "1234".into()));
    assert_eq!(send(with_code).await.1["error"], "invalid_request");
    assert_eq!(s.smtp.mails_to(ada).iter().filter(|m| m.data.contains("/approvals/")).count(), 0, "no error asked anyone");

    // A request: the answer, the mail, and an identical request joining the same approval.
    let (status, started) = send(request("FILES 7Q2", "300")).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert_eq!(started["interval"], 5);
    assert!(started["expires_in"].as_i64().is_some_and(|e| (295..=300).contains(&e)));
    let uri = started["approval_uri"].as_str().expect("approval_uri").to_owned();
    let first = started["auth_req_id"].as_str().expect("auth_req_id").to_owned();
    let mail = s.smtp.mail_containing(ada, &uri).await;
    assert!(mail.data.contains("Delete 214 files in /billing") && mail.data.contains("FILES 7Q2"), "{}", mail.data);
    assert!(!mail.data.contains(&first), "the mail carries the page, never the client's auth_req_id");
    let account = ada_browser.get(s.server.url("account")).send().await.expect("account").text().await.expect("html");
    assert!(account.contains(&uri) && account.contains("Waiting for your approval"), "the account page lists it");
    let (_, joined) = send(request("FILES 7Q2", "300")).await;
    assert_eq!(joined["approval_id"], started["approval_id"], "an identical request joins the open approval");
    assert_ne!(joined["auth_req_id"], started["auth_req_id"]);

    // Waiting: pending, then too fast.
    assert_eq!(poll(&s, &first).await.1["error"], "authorization_pending");
    assert_eq!(poll(&s, &first).await.1["error"], "slow_down");
    assert_eq!(poll(&s, "not-an-id").await.1["error"], "invalid_grant");

    // Another person's session may neither see nor answer it.
    let response = bob_browser.get(&uri).send().await.expect("page");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.expect("html").contains("for someone else"));
    let ada_page = ada_browser.get(&uri).send().await.expect("page").text().await.expect("html");
    let bob_account = bob_browser.get(s.server.url("account")).send().await.expect("account").text().await.expect("html");
    let csrf = hidden_input(&bob_account, "csrf").expect("bob's csrf");
    let response = bob_browser.post(&uri).form(&[("csrf", csrf.as_str()), ("decision", "approve")]).send().await.expect("post");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(poll(&s, joined["auth_req_id"].as_str().expect("id")).await.1["error"], "authorization_pending");

    // Ada's page says what is asked, in words; her yes needs a passkey assertion made for it.
    let text = page_text(&ada_page);
    assert!(text.contains("Tool gate") && text.contains("FILES 7Q2") && text.contains("Delete 214 files in /billing") && text.contains("files.delete"), "{text}");
    answer(&s, &ada_browser, ada, &uri, "approve").await;
    assert!(page_text(&ada_browser.get(&uri).send().await.expect("page").text().await.expect("html")).contains("approved"));

    // Two polls race on two nodes of one deployment (two handles of the approval, as two replicas of
    // the client would hold): one token.
    let (_, third) = send(request("FILES 7Q2", "300")).await;
    let node2 = Server::start(&s.deployment, &s.smtp, &[("LATCHKEY_CACHE_TTL", "0")]).await;
    let (a, b) = tokio::join!(
        poll(&s, joined["auth_req_id"].as_str().expect("id")),
        poll_at(&s, &node2, third["auth_req_id"].as_str().expect("id"))
    );
    let (winner, loser) = if a.0 == StatusCode::OK { (a, b) } else { (b, a) };
    assert_eq!(winner.0, StatusCode::OK, "{:?}", winner.1);
    assert_eq!((loser.0, loser.1["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{}", loser.1);
    let token = &winner.1;
    assert!(token.get("refresh_token").is_none(), "an approval is for one thing: no refresh token");
    let claims = jwt_claims(token["access_token"].as_str().expect("access token"));
    assert_eq!(claims["aud"], s.resource.as_str());
    assert_eq!(claims["sub"], ada_sub.as_str());
    assert_eq!(claims["acr"], "phr");
    assert_eq!(claims["authorization_details"], serde_json::from_str::<Value>(&details).expect("json"));
    let (iat, auth_time) = (claims["iat"].as_i64().expect("iat"), claims["auth_time"].as_i64().expect("auth_time"));
    assert!(auth_time <= iat && iat - auth_time < 60, "auth_time is the assertion that approved, moments ago");
    assert_eq!(jwt_claims(token["id_token"].as_str().expect("id token"))["sub"], ada_sub.as_str());
    // Reuse of any handle: used.
    assert_eq!(poll(&s, &first).await.1["error"], "invalid_grant");
    // A new identical request after the token was issued is a new approval: the old yes is spent.
    let (_, again) = send(request("FILES 7Q2", "300")).await;
    assert_ne!(again["approval_id"], started["approval_id"]);

    // Deny is one click; the client hears access_denied, every time until it expires.
    // Here from the mail on a device not signed in: sign-in (email code, passkey) returns to the page.
    let (_, denied) = send(request("DENY ME", "300")).await;
    let denied_uri = denied["approval_uri"].as_str().expect("uri");
    let elsewhere = browser();
    let (landed, page) = walk_pages(&s.server, &s.smtp, &elsewhere, denied_uri, ada, |page| page.contains("data-approval=")).await;
    assert_eq!(landed, denied_uri, "signing in comes back to the approval");
    assert!(page.expect("page").contains("DENY ME"));
    answer(&s, &elsewhere, ada, denied_uri, "deny").await;
    assert_eq!(poll(&s, denied["auth_req_id"].as_str().expect("id")).await.1["error"], "access_denied");

    // Expiry.
    let (_, short) = send(request("SHORT", "1")).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(poll(&s, short["auth_req_id"].as_str().expect("id")).await.1["error"], "expired_token");

    // Every outcome is in the audit log.
    let actions: Vec<String> = s.server.audit_actions().iter().filter_map(|e| e["action"].as_str().map(str::to_owned)).collect();
    for action in ["approval.requested", "approval.other_account", "approval.approved", "approval.denied", "approval.expired", "token.ciba"] {
        assert!(actions.iter().any(|a| a == action), "{action} audited: {actions:?}");
    }
}

#[tokio::test]
async fn discovery_advertises_ciba_poll_mode_and_the_tenants_detail_types() {
    let s = setup(None).await;
    let document: Value = reqwest::get(format!("{}/.well-known/openid-configuration", s.server.issuer("default")))
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(document["backchannel_authentication_endpoint"], s.server.url("bc-authorize"));
    assert_eq!(document["backchannel_token_delivery_modes_supported"], json!(["poll"]));
    assert_eq!(document["backchannel_user_code_parameter_supported"], false);
    assert_eq!(document["authorization_details_types_supported"], json!(["tool_call"]));
    assert!(document["grant_types_supported"].as_array().expect("grants").contains(&json!(CIBA)));
    // Self-registration cannot take the grant: an operator decides who may ask people.
    let registered = api()
        .post(s.server.url("register"))
        .json(&json!({ "redirect_uris": ["http://127.0.0.1:9/cb"], "grant_types": [CIBA], "token_endpoint_auth_method": "client_secret_basic" }))
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), StatusCode::BAD_REQUEST);
}

async fn decision(url: String, token: String, body: Value) -> (StatusCode, Value) {
    let response = api().post(url).bearer_auth(token).json(&body).send().await.expect("decide");
    (response.status(), response.json::<Value>().await.expect("json"))
}

/// The decision endpoint as an operator's backend uses it: `approve` rules and a step-up rule's
/// fallback for a client that cannot re-authorize ask the person; the retried call goes through
/// once — on whichever replica it reaches — with a receipt naming the approval; another call, or a
/// second use, does not.
#[tokio::test]
async fn the_permission_api_asks_for_an_approval_and_spends_it_once() {
    let mut s = setup(None).await;
    let ada = "ada-decisions@example.com";
    let issuer = s.server.issuer("default");
    let rules = format!(
        r#"
[[rules]]
tool = "billing.refund"
effect = "approve"

[[rules]]
tool = "files.delete"
effect = "step_up"
max_age = 1
fallback = "approve"

[approvals]
expires_in = 120
[[approvals.clients]]
issuer = "{issuer}"
client_id = "{}"
client_secret = "{}"
"#,
        s.ciba.0, s.ciba.1
    );
    let permissions = PermissionApi::start(&[issuer.clone()], &rules).await;
    s.resource = permissions.resource.clone();
    s.server.cli(&["resource", "create", "--uri", &permissions.resource, "--name", "Gate"]);
    let (browser, _) = person(&s, ada).await;
    // A token for the permission API's resource, from the same person's session.
    let redirect = "http://127.0.0.1:9/cb";
    let (client_id, secret) = s.server.create_client(&["--name", "Backend", "--confidential", "--redirect-uri", redirect]);
    let pkce = pkce();
    let url = format!(
        "{}?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid&resource={}&state=s&code_challenge={}&code_challenge_method=S256",
        s.server.url("authorize"),
        urlencode(redirect),
        urlencode(&permissions.resource),
        pkce.challenge
    );
    let callback = authorize_through_pages(&s.server, &s.smtp, &browser, &url, ada).await;
    let (_, tokens) = exchange_code(&s.server, &client_id, secret.as_deref().expect("secret"), &query_param(&callback, "code").expect("code"), redirect, &pkce.verifier).await;
    let token = tokens["access_token"].as_str().expect("access token").to_owned();
    let decide = |body: Value| decision(permissions.url("/v1/decisions"), token.clone(), body);
    let refund = json!({ "tool": "billing.refund", "arguments_digest": "sha256:order-17", "summary": "Refund order 17 (EUR 40)" });
    let (status, pending) = decide(refund.clone()).await;
    assert_eq!((status, pending["decision"].as_str()), (StatusCode::FORBIDDEN, Some("pending_approval")), "{pending}");
    let uri = pending["approval"]["url"].as_str().expect("approval url").to_owned();
    assert!(uri.starts_with(&issuer), "{uri}");
    // Until the person answers, the same call stays pending, at the same approval.
    let (_, still) = decide(refund.clone()).await;
    assert_eq!(still["approval"]["id"], pending["approval"]["id"]);
    answer(&s, &browser, ada, &uri, "approve").await;
    // Another call (other arguments) is not what was approved.
    let (status, other) = decide(json!({ "tool": "billing.refund", "arguments_digest": "sha256:order-18" })).await;
    assert_eq!((status, other["decision"].as_str()), (StatusCode::FORBIDDEN, Some("pending_approval")));
    assert_ne!(other["approval"]["id"], pending["approval"]["id"]);
    // The approved call goes through once — on another replica (no state shared between the two:
    // the retry finds the answer at Latchkey) — and its receipt names the approval.
    let replica = PermissionApi::start_replica(&[issuer.clone()], &rules, Some(&permissions.resource)).await;
    let (status, allowed) = decision(replica.url("/v1/decisions"), token.clone(), refund.clone()).await;
    assert_eq!((status, allowed["decision"].as_str()), (StatusCode::OK, Some("allow")), "{allowed}");
    assert_eq!(jwt_claims(allowed["receipt"].as_str().expect("receipt"))["approval"], pending["approval"]["id"]);
    let (status, again) = decide(refund).await;
    assert_eq!((status, again["decision"].as_str()), (StatusCode::FORBIDDEN, Some("pending_approval")), "a second use asks again");
    assert_ne!(again["approval"]["id"], pending["approval"]["id"]);

    // A step-up rule: the challenge for a client that can re-authorize, an approval for one that cannot.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let delete = json!({ "tool": "files.delete", "arguments_digest": "sha256:plan" });
    let (status, _) = decide(delete.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the RFC 9470 challenge");
    let mut cannot = delete;
    cannot["can_reauthorize"] = json!(false);
    let (status, fallback) = decide(cannot).await;
    assert_eq!((status, fallback["decision"].as_str()), (StatusCode::FORBIDDEN, Some("pending_approval")), "{fallback}");
}
