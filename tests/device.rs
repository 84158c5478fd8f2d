//! The device authorization grant (RFC 8628) over HTTP on the configured engine: the endpoint's
//! answers and errors, the person's pages (code entry, sign-in, an explicit Allow or Deny), the
//! token endpoint's polling answers, a race of two polls on two nodes yielding one token set, expiry,
//! and a brute-force run of wrong user codes stopped in the database. A real client library and a
//! real browser drive it in tests/browser.rs.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn device_authorization(server: &Server, client_id: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = vec![("client_id", client_id)];
    form.extend_from_slice(extra);
    let response = api().post(server.url("device_authorization")).form(&form).send().await.expect("device authorization");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn poll(server: &Server, client_id: &str, device_code: &str) -> (StatusCode, Value) {
    let response = api()
        .post(server.url("token"))
        .form(&[("grant_type", DEVICE), ("device_code", device_code), ("client_id", client_id)])
        .send()
        .await
        .expect("token request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The person types `user_code` at `/device`: the status, and where it led (or the page).
async fn enter(server: &Server, browser: &reqwest::Client, user_code: &str) -> (StatusCode, String) {
    let page = browser.get(server.url("device")).send().await.expect("device page").text().await.expect("html");
    let csrf = hidden_input(&page, "csrf").expect("csrf");
    let response = browser.post(server.url("device")).form(&[("csrf", csrf.as_str()), ("user_code", user_code)]).send().await.expect("enter");
    let status = response.status();
    if status == StatusCode::SEE_OTHER {
        return (status, absolute(server, &location(&response)));
    }
    (status, response.text().await.expect("html"))
}

/// The person answers on the confirmation page at `url`.
async fn answer(browser: &reqwest::Client, url: &str, decision: &str) -> String {
    let page = browser.get(url).send().await.expect("confirm page").text().await.expect("html");
    let csrf = hidden_input(&page, "csrf").expect("csrf");
    let response = browser.post(url).form(&[("csrf", csrf.as_str()), ("decision", decision)]).send().await.expect("answer");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    browser.get(url).send().await.expect("after").text().await.expect("html")
}

#[tokio::test]
async fn a_device_gets_tokens_once_its_person_allows_it_and_each_error_is_the_specs() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    let (cli, _) = server.create_client(&["--name", "Deploy CLI", "--grant-type", DEVICE, "--grant-type", "refresh_token"]);
    let (web, _) = server.create_client(&["--name", "Web app", "--redirect-uri", "http://127.0.0.1:9/cb"]);

    // Discovery and the endpoint's answers.
    let discovery: Value = reqwest::get(format!("{}/.well-known/openid-configuration", server.issuer("default"))).await.expect("discovery").json().await.expect("json");
    assert_eq!(discovery["device_authorization_endpoint"], server.url("device_authorization"));
    assert!(discovery["grant_types_supported"].as_array().expect("grants").iter().any(|g| g == DEVICE));
    let (status, body) = device_authorization(&server, &web, &[("scope", "openid")]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unauthorized_client")));
    let (status, started) = device_authorization(&server, &cli, &[("scope", "openid offline_access")]).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let user_code = started["user_code"].as_str().expect("user_code").to_owned();
    assert!(user_code.len() == 9 && user_code.as_bytes()[4] == b'-', "XXXX-XXXX: {user_code}");
    assert!(user_code.bytes().filter(|b| *b != b'-').all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b)), "{user_code}");
    assert_eq!(started["verification_uri"], server.url("device"));
    assert_eq!(started["verification_uri_complete"], format!("{}?user_code={user_code}", server.url("device")));
    assert_eq!((started["expires_in"].as_i64(), started["interval"].as_i64()), (Some(600), Some(5)));
    let device_code = started["device_code"].as_str().expect("device_code").to_owned();
    assert!(device_code.len() >= 43, "high entropy");

    // Waiting, then too fast.
    assert_eq!(poll(&server, &cli, &device_code).await.1["error"], "authorization_pending");
    assert_eq!(poll(&server, &cli, &device_code).await.1["error"], "slow_down");
    assert_eq!(poll(&server, &cli, "not-a-device-code").await.1["error"], "invalid_grant");
    assert_eq!(poll(&server, &web, &device_code).await.1["error"], "unauthorized_client");

    // The person: the link fills the code in; entering it while signed out leads to sign-in, and
    // back to the confirmation page, which names the client and what it asks; nothing is allowed
    // without a click.
    let person = "dev-person@example.com";
    let browser = browser();
    let filled = browser.get(started["verification_uri_complete"].as_str().expect("uri")).send().await.expect("page").text().await.expect("html");
    assert!(filled.contains(&format!("value=\"{user_code}\"")), "the code is filled in");
    let (status, confirm_url) = enter(&server, &browser, &user_code.to_lowercase()).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{confirm_url}");
    assert!(confirm_url.contains("/device/dev_"), "{confirm_url}");
    let (landed, page) = walk_pages(&server, &smtp, &browser, &confirm_url, person, |page| page.contains("id=\"device\"")).await;
    assert_eq!(landed, confirm_url, "sign-in comes back to the confirmation");
    let text = page_text(&page.expect("page"));
    assert!(text.contains("Allow Deploy CLI on your device?") && text.contains("offline_access"), "{text}");
    assert_eq!(poll(&server, &cli, &device_code).await.1["error"], "slow_down", "still nothing allowed (and still too fast)");
    let after = answer(&browser, &confirm_url, "allow").await;
    assert!(page_text(&after).contains("Device connected"));

    // Two polls race on two nodes: one token set.
    let node2 = Server::start(&deployment, &smtp, &[]).await;
    let (a, b) = tokio::join!(poll(&server, &cli, &device_code), poll(&node2, &cli, &device_code));
    let (won, lost) = if a.0 == StatusCode::OK { (a, b) } else { (b, a) };
    assert_eq!(won.0, StatusCode::OK, "{}", won.1);
    assert_eq!(lost.1["error"], "invalid_grant", "{}", lost.1);
    let tokens = won.1;
    let id_token = jwt_claims(tokens["id_token"].as_str().expect("id token"));
    assert_eq!(id_token["aud"], cli.as_str());
    assert!(id_token["auth_time"].as_i64().is_some() && id_token["amr"].as_array().is_some_and(|a| !a.is_empty()));
    assert_eq!(id_token["acr"], "urn:latchkey:acr:mfa", "the session's level: a passkey enrolled after an email code");
    assert_eq!(poll(&server, &cli, &device_code).await.1["error"], "invalid_grant", "a device code yields tokens once");
    // The same tokens as the code flow: a refresh family.
    let refreshed = api()
        .post(server.url("token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().expect("refresh token")), ("client_id", cli.as_str())])
        .send()
        .await
        .expect("refresh");
    assert_eq!(refreshed.status(), StatusCode::OK);

    // Deny: one click, the device hears access_denied.
    let (_, second) = device_authorization(&server, &cli, &[("scope", "openid")]).await;
    let (_, second_url) = enter(&server, &browser, second["user_code"].as_str().expect("code")).await;
    assert!(page_text(&answer(&browser, &second_url, "deny").await).contains("You denied Deploy CLI"));
    assert_eq!(poll(&server, &cli, second["device_code"].as_str().expect("code")).await.1["error"], "access_denied");
    // A used code says so, without telling whether other codes exist.
    let (status, page) = enter(&server, &browser, second["user_code"].as_str().expect("code")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page_text(&page).contains("not one waiting to be used"));

    // Brute force: wrong codes are counted in the database per address and session (the used code
    // above was the first); the fifth locks, and then even the right code is not looked at.
    let (_, third) = device_authorization(&server, &cli, &[("scope", "openid")]).await;
    let mut statuses = Vec::new();
    for guess in ["BCDF-GHJK", "BCDF-GHJL", "BCDF-GHJM", "BCDF-GHJN"] {
        statuses.push(enter(&server, &browser, guess).await.0);
    }
    assert_eq!(statuses, [StatusCode::BAD_REQUEST, StatusCode::BAD_REQUEST, StatusCode::BAD_REQUEST, StatusCode::TOO_MANY_REQUESTS]);
    let (status, page) = enter(&server, &browser, third["user_code"].as_str().expect("code")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{}", page_text(&page));
    // Another browser at the same address is locked out too: the count is per address as well.
    let (status, _) = enter(&server, &reqwest::Client::builder().cookie_store(true).build().expect("client"), third["user_code"].as_str().expect("code")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    let actions: Vec<String> = server.audit_actions().iter().filter_map(|e| e["action"].as_str().map(str::to_owned)).collect();
    for action in ["device.requested", "device.approved", "device.denied", "device.wrong_user_code", "token.device_code"] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
}

#[tokio::test]
async fn an_unanswered_device_code_expires() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[("LATCHKEY_DEVICE_CODE_TTL", "1")]).await;
    let (cli, _) = server.create_client(&["--name", "CLI", "--grant-type", DEVICE]);
    let (_, started) = device_authorization(&server, &cli, &[("scope", "openid")]).await;
    assert_eq!(started["expires_in"], 1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(poll(&server, &cli, started["device_code"].as_str().expect("code")).await.1["error"], "expired_token");
}

/// A native client registers itself for the grant (RFC 7591) and uses it; the confirmation page says
/// it registered itself.
#[tokio::test]
async fn a_self_registered_native_client_may_use_the_device_flow() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    let registered = api()
        .post(server.url("register"))
        .json(&serde_json::json!({
            "client_name": "Terminal agent", "grant_types": [DEVICE, "refresh_token"], "token_endpoint_auth_method": "none",
            "client_uri": "https://agent.example.com",
        }))
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), StatusCode::CREATED);
    let registered: Value = registered.json().await.expect("json");
    let client_id = registered["client_id"].as_str().expect("client_id");
    let (status, started) = device_authorization(&server, client_id, &[("scope", "openid")]).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let browser = browser();
    let (_, confirm_url) = enter(&server, &browser, started["user_code"].as_str().expect("code")).await;
    let (_, page) = walk_pages(&server, &smtp, &browser, &confirm_url, "native@example.com", |page| page.contains("id=\"device\"")).await;
    let text = page_text(&page.expect("page"));
    assert!(text.contains("registered itself") && text.contains("agent.example.com"), "{text}");
}
