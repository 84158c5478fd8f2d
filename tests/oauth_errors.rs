//! One test per error the authorization server must produce, each checked the way a client sees it.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:9/cb";

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
    let (client_id, secret) = server.create_client(&[
        "--name",
        "Test app",
        "--confidential",
        "--redirect-uri",
        REDIRECT,
        "--first-party",
        "--introspect-all",
    ]);
    Fixture {
        smtp,
        server,
        _deployment: deployment,
        client_id,
        secret: secret.expect("secret"),
    }
}

impl Fixture {
    fn authorize_url(&self, extra: &str) -> String {
        format!(
            "{}?response_type=code&client_id={}&redirect_uri={REDIRECT}&scope=openid&state=xyz{extra}",
            self.server.url("authorize"),
            self.client_id
        )
    }

    /// Signs in and returns an authorization code for the given PKCE challenge.
    async fn code(&self, browser: &reqwest::Client, pkce: &Pkce) -> String {
        let url = self.authorize_url(&format!(
            "&code_challenge={}&code_challenge_method=S256",
            pkce.challenge
        ));
        let callback =
            authorize_through_pages(&self.server, &self.smtp, browser, &url, "eve@example.com")
                .await;
        query_param(&callback, "code").expect("code")
    }

    async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = api()
            .post(self.server.url("token"))
            .basic_auth(&self.client_id, Some(&self.secret))
            .form(form)
            .send()
            .await
            .expect("token");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn exchange(&self, code: &str, verifier: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .await
    }
}

/// The authorization endpoint redirects this error back to the client, with state and iss.
async fn assert_redirected_error(f: &Fixture, url: &str, error: &str) {
    let response = browser().get(url).send().await.expect("authorize");
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{url}");
    let to = location(&response);
    assert!(to.starts_with(REDIRECT), "{to}");
    assert_eq!(query_param(&to, "error").as_deref(), Some(error), "{to}");
    assert_eq!(query_param(&to, "state").as_deref(), Some("xyz"));
    assert_eq!(
        query_param(&to, "iss").as_deref(),
        Some(f.server.issuer("default").as_str())
    );
    assert!(query_param(&to, "error_description").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkce_is_mandatory_and_s256_only() {
    let f = fixture(&[]).await;
    let pkce = pkce();
    assert_redirected_error(&f, &f.authorize_url(""), "invalid_request").await;
    assert_redirected_error(
        &f,
        &f.authorize_url(&format!(
            "&code_challenge={}&code_challenge_method=plain",
            pkce.verifier
        )),
        "invalid_request",
    )
    .await;
    assert_redirected_error(
        &f,
        &f.authorize_url(&format!("&code_challenge={}", pkce.challenge)),
        "invalid_request",
    )
    .await;
    assert_redirected_error(
        &f,
        &f.authorize_url("&code_challenge=short&code_challenge_method=S256"),
        "invalid_request",
    )
    .await;
    assert_redirected_error(
        &f,
        &f.authorize_url(&format!(
            "&code_challenge={}&code_challenge_method=S256&response_type=token",
            pkce.challenge
        ))
        .replace("response_type=code&", ""),
        "unsupported_response_type",
    )
    .await;
    assert_redirected_error(
        &f,
        &f.authorize_url(&format!(
            "&code_challenge={}&code_challenge_method=S256&prompt=none",
            pkce.challenge
        )),
        "login_required",
    )
    .await;
    assert_redirected_error(
        &f,
        &f.authorize_url(&format!(
            "&code_challenge={}&code_challenge_method=S256",
            pkce.challenge
        ))
        .replace("scope=openid", "scope=admin"),
        "invalid_scope",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_verifier_is_invalid_grant_and_burns_nothing() {
    let f = fixture(&[]).await;
    let browser = browser();
    let pkce = pkce();
    let code = f.code(&browser, &pkce).await;
    let other = common::pkce();
    let (status, body) = f.exchange(&code, &other.verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = f
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "missing verifier"
    );
    // The right verifier still works afterwards.
    let (status, body) = f.exchange(&code, &pkce.verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_redirect_uri_and_unknown_client_get_a_page_not_a_redirect() {
    let f = fixture(&[]).await;
    let pkce = pkce();
    let good = f.authorize_url(&format!(
        "&code_challenge={}&code_challenge_method=S256",
        pkce.challenge
    ));
    for bad in [
        good.replace(REDIRECT, "https://evil.example/cb"),
        good.replace(REDIRECT, "http://127.0.0.1:9/cb/extra"),
        good.replace(&f.client_id, "lk_unknown"),
        good.replace(&format!("client_id={}&", f.client_id), ""),
    ] {
        let response = browser().get(&bad).send().await.expect("authorize");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            response.headers().get("location").is_none(),
            "must never redirect: {bad}"
        );
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("ct")
                .starts_with("text/html")
        );
    }
    // A loopback redirect may use any port (RFC 8252 §7.3).
    let response = browser()
        .get(good.replace("127.0.0.1:9", "127.0.0.1:51234"))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).contains("/login?req="));

    // At the token endpoint, a redirect_uri different from the authorization request's is invalid_grant.
    let browser = browser();
    let code = f.code(&browser, &pkce).await;
    let (status, body) = f
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("code_verifier", &pkce.verifier),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_code_fails_and_revokes_what_it_issued() {
    let f = fixture(&[]).await;
    let browser = browser();
    let pkce = pkce();
    let code = f.code(&browser, &pkce).await;
    let (status, first) = f.exchange(&code, &pkce.verifier).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = f.exchange(&code, &pkce.verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // The first exchange's tokens are dead.
    let introspection = introspect(&f.server, &f.client_id, &f.secret, first["access_token"].as_str().expect("at")).await;
    assert_eq!(introspection["active"], false);
    let (status, _) = f
        .token(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                first["refresh_token"].as_str().expect("rt"),
            ),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        f.server
            .audit_actions()
            .iter()
            .any(|e| e["action"] == "authorization_code.replay")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_code_is_invalid_grant() {
    let f = fixture(&[("LATCHKEY_AUTHORIZATION_CODE_TTL", "1")]).await;
    let browser = browser();
    let pkce = pkce();
    let code = f.code(&browser, &pkce).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = f.exchange(&code, &pkce.verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_client_secret_is_invalid_client() {
    let f = fixture(&[]).await;
    let basic = api()
        .post(f.server.url("token"))
        .basic_auth(&f.client_id, Some("lk_cs_wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token");
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    assert!(
        basic.headers()["www-authenticate"]
            .to_str()
            .expect("header")
            .starts_with("Basic")
    );
    assert_eq!(
        basic.json::<Value>().await.expect("json")["error"],
        "invalid_client"
    );

    let post = api()
        .post(f.server.url("token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &f.client_id),
            ("client_secret", "lk_cs_wrong"),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(post.status(), StatusCode::UNAUTHORIZED);
    assert!(post.headers().get("www-authenticate").is_none());
    // A confidential client cannot fall back to no authentication.
    let none = api()
        .post(f.server.url("token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &f.client_id),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    // Two methods at once is a malformed request.
    let both = api()
        .post(f.server.url("token"))
        .basic_auth(&f.client_id, Some(&f.secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", f.secret.as_str()),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(both.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        both.json::<Value>().await.expect("json")["error"],
        "invalid_request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_refresh_token_revokes_only_its_family() {
    let f = fixture(&[]).await;
    let browser = browser();
    // Two grants for the same user and client: two families.
    let (a, b) = (pkce(), pkce());
    let code_a = f.code(&browser, &a).await;
    let code_b = f.code(&browser, &b).await;
    let (_, family_a) = f.exchange(&code_a, &a.verifier).await;
    let (_, family_b) = f.exchange(&code_b, &b.verifier).await;
    let rt_a = family_a["refresh_token"].as_str().expect("rt a");
    let (status, rotated) = f
        .token(&[("grant_type", "refresh_token"), ("refresh_token", rt_a)])
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = f
        .token(&[("grant_type", "refresh_token"), ("refresh_token", rt_a)])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, _) = f
        .token(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                rotated["refresh_token"].as_str().expect("rt"),
            ),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "family A is revoked");
    let (status, _) = f
        .token(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                family_b["refresh_token"].as_str().expect("rt b"),
            ),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "family B is untouched");
    // A refresh may narrow scope, never widen it.
    let (status, body) = f
        .token(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                family_b["refresh_token"].as_str().unwrap_or(""),
            ),
            ("scope", "openid email"),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixth_email_code_attempt_is_refused_even_when_right() {
    let f = fixture(&[]).await;
    let browser = browser();
    let login = browser
        .get(f.server.url("login"))
        .send()
        .await
        .expect("login")
        .text()
        .await
        .expect("page");
    let csrf = hidden_input(&login, "csrf").expect("csrf");
    let sent = browser
        .post(f.server.url("login"))
        .form(&[("csrf", csrf.as_str()), ("email", "mallory@example.com")])
        .send()
        .await
        .expect("send");
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    let right = f.smtp.code_for("mallory@example.com", 1).await;
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for attempt in 1..=5 {
        let response = browser
            .post(f.server.url("login/code"))
            .form(&[("csrf", csrf.as_str()), ("code", wrong)])
            .send()
            .await
            .expect("code");
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "attempt {attempt}"
        );
        let page = response.text().await.expect("page");
        assert!(page.contains("role=\"alert\""), "the error is announced");
    }
    let sixth = browser
        .post(f.server.url("login/code"))
        .form(&[("csrf", csrf.as_str()), ("code", right.as_str())])
        .send()
        .await
        .expect("code");
    assert_eq!(sixth.status(), StatusCode::BAD_REQUEST);
    assert!(sixth.text().await.expect("page").contains("new code"));
    // Nothing was signed in.
    let account = browser
        .get(f.server.url("account"))
        .send()
        .await
        .expect("account");
    assert_eq!(account.status(), StatusCode::SEE_OTHER);
    let failures = f
        .server
        .audit_actions()
        .iter()
        .filter(|e| e["action"] == "signin.code_failed")
        .count();
    assert_eq!(failures, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_code_invalidates_the_old_one_and_csrf_is_checked() {
    let f = fixture(&[]).await;
    let browser = browser();
    let login = browser
        .get(f.server.url("login"))
        .send()
        .await
        .expect("login")
        .text()
        .await
        .expect("page");
    let csrf = hidden_input(&login, "csrf").expect("csrf");
    // A form without the CSRF token changes nothing.
    let forged = browser
        .post(f.server.url("login"))
        .form(&[("email", "oscar@example.com")])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert!(f.smtp.mails_to("oscar@example.com").is_empty());

    for _ in 0..2 {
        let sent = browser
            .post(f.server.url("login"))
            .form(&[("csrf", csrf.as_str()), ("email", "Oscar@Example.com ")])
            .send()
            .await
            .expect("send");
        assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    }
    let first = f.smtp.code_for("oscar@example.com", 1).await;
    let second = f.smtp.code_for("oscar@example.com", 2).await;
    if first != second {
        let old = browser
            .post(f.server.url("login/code"))
            .form(&[("csrf", csrf.as_str()), ("code", first.as_str())])
            .send()
            .await
            .expect("code");
        assert_eq!(
            old.status(),
            StatusCode::BAD_REQUEST,
            "the first code was replaced"
        );
    }
    let ok = browser
        .post(f.server.url("login/code"))
        .form(&[("csrf", csrf.as_str()), ("code", second.as_str())])
        .send()
        .await
        .expect("code");
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    // Signed in, single-factor: the account page first asks for a passkey, which names the user.
    let account = browser
        .get(f.server.url("account"))
        .send()
        .await
        .expect("account");
    assert_eq!(account.status(), StatusCode::SEE_OTHER);
    let account = browser
        .get(absolute(&f.server, &location(&account)))
        .send()
        .await
        .expect("passkey page");
    assert_eq!(account.status(), StatusCode::OK);
    assert!(
        account
            .text()
            .await
            .expect("page")
            .contains("oscar@example.com")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tenant_is_404_everywhere() {
    let f = fixture(&[]).await;
    let base = &f.server.base;
    for path in [
        "/t/nope/.well-known/openid-configuration",
        "/t/nope/jwks",
        "/.well-known/oauth-authorization-server/t/nope",
        "/t/NOPE!/jwks",
    ] {
        let r = api()
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let token = api()
        .post(format!("{base}/t/nope/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("post");
    assert_eq!(token.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        token.json::<Value>().await.expect("json")["error"],
        "invalid_request"
    );
    let page = api()
        .get(format!("{base}/t/nope/login"))
        .send()
        .await
        .expect("get");
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    // Metadata at both RFC 8414 locations names the same issuer.
    let inserted: Value = api()
        .get(format!(
            "{base}/.well-known/oauth-authorization-server/t/default"
        ))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let suffixed: Value = api()
        .get(format!(
            "{base}/t/default/.well-known/oauth-authorization-server"
        ))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(inserted["issuer"], f.server.issuer("default"));
    assert_eq!(inserted, suffixed);
    assert_eq!(
        inserted["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        inserted["authorization_response_iss_parameter_supported"],
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated() {
    let f = fixture(&[]).await;
    f.server
        .cli(&["tenant", "create", "other", "--name", "Other Co"]);
    // A client of `default` does not exist in `other`.
    let response = api()
        .post(format!("{}/t/other/token", f.server.base))
        .basic_auth(&f.client_id, Some(&f.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // A token from `default` is not valid at `other` (different issuer and keys).
    let browser = browser();
    let pkce = pkce();
    let code = f.code(&browser, &pkce).await;
    let (_, tokens) = f.exchange(&code, &pkce.verifier).await;
    let at = tokens["access_token"].as_str().expect("at");
    let other = api()
        .get(format!("{}/t/other/userinfo", f.server.base))
        .bearer_auth(at)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
    let own = api()
        .get(f.server.url("userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(own.status(), StatusCode::OK);
    // Each tenant has its own keys.
    let jwks_default: Value = api()
        .get(f.server.url("jwks"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let jwks_other: Value = api()
        .get(format!("{}/t/other/jwks", f.server.base))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert_ne!(jwks_default["keys"][0]["kid"], jwks_other["keys"][0]["kid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_keeps_old_tokens_verifiable() {
    let f = fixture(&[("LATCHKEY_CACHE_TTL", "0")]).await;
    let browser = browser();
    let pkce = pkce();
    let code = f.code(&browser, &pkce).await;
    let (_, tokens) = f.exchange(&code, &pkce.verifier).await;
    let old_at = tokens["access_token"].as_str().expect("at").to_owned();
    let old_kid = jwt_header(&old_at)["kid"].as_str().expect("kid").to_owned();
    f.server.cli(&["keys", "rotate"]);
    let jwks: Value = api()
        .get(f.server.url("jwks"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert_eq!(
        kids.len(),
        4,
        "two current and two retired-but-published keys"
    );
    assert!(kids.contains(&old_kid.as_str()));
    let own = api()
        .get(f.server.url("userinfo"))
        .bearer_auth(&old_at)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(
        own.status(),
        StatusCode::OK,
        "tokens signed before rotation still verify"
    );
    let (_, refreshed) = f
        .token(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                tokens["refresh_token"].as_str().expect("rt"),
            ),
        ])
        .await;
    assert_ne!(
        jwt_header(refreshed["access_token"].as_str().expect("at"))["kid"],
        old_kid.as_str(),
        "new tokens use the new key"
    );
    assert!(
        f.server
            .audit_actions()
            .iter()
            .any(|e| e["action"] == "keys.rotate")
    );
}
