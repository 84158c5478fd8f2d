//! The whole lifecycle over real HTTP with the `openidconnect` crate as the relying party:
//! discovery → authorize → email code (real SMTP) → consent → token → ID token verified against the JWKS
//! → userinfo → refresh rotation → reuse revokes the family → revocation → introspection.

mod common;

use common::*;
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, RefreshToken, Scope, TokenResponse,
    core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata},
};
use reqwest::StatusCode;

const REDIRECT: &str = "http://127.0.0.1:9/callback";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relying_party_full_lifecycle() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    let (client_id, secret) = server.create_client(&[
        "--name",
        "Acme Notes",
        "--confidential",
        "--redirect-uri",
        REDIRECT,
    ]);
    let (rs_id, rs_secret) = server.create_client(&[
        "--name",
        "Resource server",
        "--confidential",
        "--grant-type",
        "client_credentials",
        "--scope",
        "api",
        "--introspect-all",
    ]);
    let rs_secret = rs_secret.expect("resource server secret");

    // Discovery and JWKS, as a standard RP does them.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let issuer = server.issuer("default");
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(issuer.clone()).expect("issuer"),
        &http,
    )
    .await
    .expect("discovery");
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.clone()),
        secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).expect("redirect"));

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, state, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = browser();
    let email = "ada@example.com";
    let callback =
        authorize_through_pages(&server, &smtp, &browser, authorize_url.as_str(), email).await;
    assert!(callback.starts_with(REDIRECT), "{callback}");
    assert_eq!(
        query_param(&callback, "state").as_deref(),
        Some(state.secret().as_str())
    );
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some(issuer.as_str()),
        "RFC 9207 iss"
    );
    let code = query_param(&callback, "code").expect("code");

    // The mail really went through SMTP, and the code is not stored in clear anywhere we can see.
    assert_eq!(smtp.mails_to(email).len(), 1);

    let tokens = rp
        .exchange_code(AuthorizationCode::new(code.clone()))
        .expect("token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("id token");
    let claims = id_token
        .claims(&rp.id_token_verifier(), &nonce)
        .expect("ID token verifies against the JWKS");
    assert_eq!(claims.issuer().as_str(), issuer);
    assert_eq!(claims.email().map(|e| e.as_str()), Some(email));
    assert!(claims.auth_time().is_some());
    let expected_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().expect("alg"),
        id_token.signing_key(&rp.id_token_verifier()).expect("key"),
    )
    .expect("hash");
    assert_eq!(claims.access_token_hash(), Some(&expected_hash), "at_hash");

    // The access token is an RFC 9068 JWT, ES256 by default.
    let access_token = tokens.access_token().secret().clone();
    let header = jwt_header(&access_token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    let at = jwt_claims(&access_token);
    assert_eq!(at["iss"], issuer);
    assert_eq!(at["client_id"], client_id);
    assert_eq!(at["sub"], claims.subject().as_str());
    // First sign-in: email code, then the mandatory passkey enrollment (a device-bound software key).
    assert_eq!(at["amr"], serde_json::json!(["otp", "hwk", "user", "mfa"]));
    assert_eq!(at["acr"], "urn:latchkey:acr:mfa");
    assert!(
        at["exp"].as_i64().expect("exp") - at["iat"].as_i64().expect("iat") == 900,
        "15-minute tokens"
    );
    for claim in ["aud", "jti", "scope", "auth_time", "acr"] {
        assert!(!at[claim].is_null(), "access token lacks {claim}");
    }

    // UserInfo with GET and POST.
    let api = api();
    let info: serde_json::Value = api
        .get(server.url("userinfo"))
        .bearer_auth(&access_token)
        .send()
        .await
        .expect("userinfo")
        .json()
        .await
        .expect("json");
    assert_eq!(info["sub"], claims.subject().as_str());
    assert_eq!(info["email"], email);
    let info_post = api
        .post(server.url("userinfo"))
        .form(&[("access_token", access_token.as_str())])
        .send()
        .await
        .expect("userinfo");
    assert_eq!(info_post.status(), StatusCode::OK);

    // Refresh rotates the token.
    let first_refresh = tokens.refresh_token().expect("refresh token").clone();
    assert!(first_refresh.secret().starts_with("lk_rt_"));
    let refreshed = rp
        .exchange_refresh_token(&first_refresh)
        .expect("endpoint")
        .request_async(&http)
        .await
        .expect("refresh");
    let second_refresh = refreshed
        .refresh_token()
        .expect("rotated refresh token")
        .clone();
    assert_ne!(first_refresh.secret(), second_refresh.secret());
    let refreshed_access = refreshed.access_token().secret().clone();

    let introspect = |token: String| {
        let api = api.clone();
        let url = server.url("introspect");
        let (id, secret) = (rs_id.clone(), rs_secret.clone());
        async move {
            let r = api
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&[("token", token)])
                .send()
                .await
                .expect("introspect");
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<serde_json::Value>().await.expect("json")
        }
    };
    assert_eq!(introspect(refreshed_access.clone()).await["active"], true);
    assert_eq!(
        introspect(second_refresh.secret().clone()).await["active"],
        true
    );
    assert_eq!(
        introspect(first_refresh.secret().clone()).await["active"],
        false,
        "rotated token is inactive"
    );

    // Presenting the rotated token again revokes the whole family.
    let reuse = rp
        .exchange_refresh_token(&first_refresh)
        .expect("endpoint")
        .request_async(&http)
        .await;
    assert!(reuse.is_err(), "reused refresh token must fail");
    let after_reuse = rp
        .exchange_refresh_token(&second_refresh)
        .expect("endpoint")
        .request_async(&http)
        .await;
    assert!(
        after_reuse.is_err(),
        "the family is revoked: the newest token fails too"
    );
    assert_eq!(
        introspect(refreshed_access.clone()).await["active"],
        false,
        "family's access tokens are inactive"
    );
    assert_eq!(introspect(access_token.clone()).await["active"], false);
    let userinfo_after = api
        .get(server.url("userinfo"))
        .bearer_auth(&refreshed_access)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(userinfo_after.status(), StatusCode::UNAUTHORIZED);
    assert!(
        userinfo_after.headers()["www-authenticate"]
            .to_str()
            .expect("header")
            .contains("invalid_token")
    );

    // A new authorization (the session is still live, consent remembered: no pages this time).
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, _, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let response = browser
        .get(authorize_url.as_str())
        .send()
        .await
        .expect("authorize");
    let callback = location(&response);
    assert!(
        callback.starts_with(REDIRECT),
        "silent re-authorization: {callback}"
    );
    let tokens = rp
        .exchange_code(AuthorizationCode::new(
            query_param(&callback, "code").expect("code"),
        ))
        .expect("endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("exchange");
    tokens
        .id_token()
        .expect("id token")
        .claims(&rp.id_token_verifier(), &nonce)
        .expect("verifies");
    assert_eq!(smtp.mails_to(email).len(), 1, "no second email code needed");

    // RFC 7009 revocation of the refresh token ends that family only.
    let refresh = tokens.refresh_token().expect("refresh").secret().clone();
    let access = tokens.access_token().secret().clone();
    let revoke = api
        .post(server.url("revoke"))
        .basic_auth(&client_id, secret.as_deref())
        .form(&[
            ("token", refresh.as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoke.status(), StatusCode::OK);
    assert_eq!(introspect(refresh.clone()).await["active"], false);
    assert_eq!(introspect(access.clone()).await["active"], false);
    let again = rp
        .exchange_refresh_token(&RefreshToken::new(refresh))
        .expect("endpoint")
        .request_async(&http)
        .await;
    assert!(again.is_err());
    // Revoking an unknown token is not an error (RFC 7009 §2.2).
    let unknown = api
        .post(server.url("revoke"))
        .basic_auth(&client_id, secret.as_deref())
        .form(&[("token", "not-a-token")])
        .send()
        .await
        .expect("revoke");
    assert_eq!(unknown.status(), StatusCode::OK);

    // The audit trail saw it all.
    let actions: Vec<String> = server
        .audit_actions()
        .iter()
        .map(|e| e["action"].as_str().unwrap_or("").to_owned())
        .collect();
    for expected in [
        "signin.code_sent",
        "signin.email_code",
        "consent.grant",
        "token.authorization_code",
        "token.refresh",
        "refresh_token.reuse",
        "token.revoke",
        "client.create",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "audit lacks {expected}: {actions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_and_rp_logout() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    let api = api();

    // client_credentials with ES256 and with RS256 access tokens.
    for alg in ["ES256", "RS256"] {
        let (id, secret) = server.create_client(&[
            "--name",
            "Worker",
            "--confidential",
            "--grant-type",
            "client_credentials",
            "--scope",
            "reports:read",
            "--access-token-alg",
            alg,
        ]);
        let response = api
            .post(server.url("token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", secret.as_deref().unwrap_or("")),
            ])
            .send()
            .await
            .expect("token");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: serde_json::Value = response.json().await.expect("json");
        let token = body["access_token"].as_str().expect("access token");
        assert_eq!(jwt_header(token)["alg"], alg);
        assert_eq!(jwt_claims(token)["sub"], id, "the client is the subject");
        assert_eq!(body["scope"], "reports:read");
        assert!(body.get("refresh_token").is_none());
    }

    // RP-initiated logout with a registered post-logout redirect and an id_token_hint.
    let (client_id, _) = server.create_client(&[
        "--name",
        "SPA",
        "--redirect-uri",
        REDIRECT,
        "--post-logout-redirect-uri",
        "http://127.0.0.1:9/bye",
        "--first-party",
    ]);
    let browser = browser();
    let pkce = pkce();
    let authorize = format!(
        "{}?response_type=code&client_id={client_id}&redirect_uri={REDIRECT}&scope=openid&code_challenge={}&code_challenge_method=S256&state=s1&nonce=n1",
        server.url("authorize"),
        pkce.challenge
    );
    let callback =
        authorize_through_pages(&server, &smtp, &browser, &authorize, "grace@example.com").await;
    let code = query_param(&callback, "code").expect("code (first-party: no consent page)");
    let tokens: serde_json::Value = api
        .post(server.url("token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let id_token = tokens["id_token"].as_str().expect("id_token");
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();

    let logout = browser
        .get(format!(
            "{}?id_token_hint={id_token}&post_logout_redirect_uri=http://127.0.0.1:9/bye&state=bye1",
            server.url("logout")
        ))
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&logout), "http://127.0.0.1:9/bye?state=bye1");
    // Signing out ended the session's refresh-token family.
    let refresh_after = api
        .post(server.url("token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .expect("refresh");
    assert_eq!(refresh_after.status(), StatusCode::BAD_REQUEST);
    // And the browser is signed out: the next authorization asks for sign-in again.
    let again = browser.get(&authorize).send().await.expect("authorize");
    assert!(location(&again).contains("/login?req="));
    // An unregistered post-logout redirect is refused with a page, not followed.
    let bad = browser
        .get(format!(
            "{}?id_token_hint={id_token}&post_logout_redirect_uri=https://evil.example/",
            server.url("logout")
        ))
        .send()
        .await
        .expect("logout");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    // Without an ID token hint, a post-logout redirect is never followed (RP-Initiated Logout §3).
    let unproven = browser
        .get(format!(
            "{}?client_id={client_id}&post_logout_redirect_uri=http://127.0.0.1:9/bye",
            server.url("logout")
        ))
        .send()
        .await
        .expect("logout");
    assert_eq!(unproven.status(), StatusCode::OK, "signed out, and stays here");
}

/// Introspections arriving together share one revocation read (`oauth::revocation_check`); each must
/// still get the answer for its own token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_introspections_each_see_their_own_revocation() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    let (id, secret) = server.create_client(&[
        "--name", "Resource server", "--confidential", "--grant-type", "client_credentials", "--scope", "reports:read",
        "--introspect-all",
    ]);
    let secret = secret.expect("secret");
    let mut tokens = Vec::new();
    for _ in 0..24 {
        let (status, body) = token_request(&server, &id, &secret, &[("grant_type", "client_credentials")]).await;
        assert_eq!(status, StatusCode::OK);
        tokens.push(body["access_token"].as_str().expect("access token").to_owned());
    }
    let revoked = |i: usize| i % 3 == 1;
    for (i, token) in tokens.iter().enumerate().filter(|(i, _)| revoked(*i)) {
        let response = api()
            .post(server.url("revoke"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .expect("revoke");
        assert_eq!(response.status(), StatusCode::OK, "revoke token {i}");
    }
    for round in 0..5 {
        let answers = futures_util::future::join_all(
            tokens.iter().map(|token| async { introspect(&server, &id, &secret, token).await["active"] == true }),
        )
        .await;
        for (i, active) in answers.into_iter().enumerate() {
            assert_eq!(active, !revoked(i), "round {round}: token {i}");
        }
    }
}
