//! Client mistakes get a 4xx with a clear error and never a 5xx or a crash: malformed forms, oversized
//! parameters, duplicates, bytes that are not UTF-8, wrong content types.

mod common;

use common::*;
use reqwest::{Method, StatusCode};

/// One malformed request: method, path, content type, body, expected status (0: any 4xx).
type Case<'a> = (Method, String, Option<&'a str>, Vec<u8>, u16);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_never_cause_server_errors() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    let (client_id, secret) = server.create_client(&[
        "--name",
        "App",
        "--confidential",
        "--redirect-uri",
        "http://127.0.0.1:9/cb",
    ]);
    let secret = secret.expect("secret");
    let form = "application/x-www-form-urlencoded";
    let huge = "a".repeat(70 * 1024);
    let long_value = format!("grant_type=client_credentials&scope={}", "s".repeat(9000));
    let authorize =
        format!("response_type=code&client_id={client_id}&redirect_uri=http://127.0.0.1:9/cb");

    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "token".into(),
            Some(form),
            b"grant_type=client_credentials&grant_type=refresh_token".to_vec(),
            400,
        ),
        (
            Method::POST,
            "token".into(),
            Some(form),
            b"grant_type=%ff%fe&client_id=x".to_vec(),
            400,
        ),
        (
            Method::POST,
            "token".into(),
            Some(form),
            vec![0xff, 0xfe, b'=', 0x80],
            400,
        ),
        (
            Method::POST,
            "token".into(),
            Some("application/json"),
            br#"{"grant_type":"client_credentials"}"#.to_vec(),
            400,
        ),
        (
            Method::POST,
            "token".into(),
            None,
            b"grant_type=client_credentials".to_vec(),
            400,
        ),
        (Method::POST, "token".into(), Some(form), Vec::new(), 0),
        (
            Method::POST,
            "token".into(),
            Some(form),
            long_value.clone().into_bytes(),
            400,
        ),
        (
            Method::POST,
            "token".into(),
            Some(form),
            huge.clone().into_bytes(),
            413,
        ),
        (
            Method::POST,
            "token".into(),
            Some(form),
            b"%%%&&&===".to_vec(),
            0,
        ),
        (Method::GET, "token".into(), None, Vec::new(), 0),
        (
            Method::POST,
            "revoke".into(),
            Some("text/plain"),
            b"token=x".to_vec(),
            400,
        ),
        (
            Method::POST,
            "introspect".into(),
            Some(form),
            b"client_id=x".to_vec(),
            401,
        ),
        (
            Method::POST,
            "userinfo".into(),
            Some(form),
            b"access_token=a&access_token=b".to_vec(),
            400,
        ),
        (
            Method::GET,
            format!("authorize?{authorize}&state=a&state=b"),
            None,
            Vec::new(),
            400,
        ),
        (
            Method::GET,
            format!("authorize?{authorize}&state=%ff"),
            None,
            Vec::new(),
            400,
        ),
        (
            Method::GET,
            format!("authorize?{authorize}&nonce={}", "n".repeat(9000)),
            None,
            Vec::new(),
            400,
        ),
        (Method::GET, "authorize".into(), None, Vec::new(), 400),
        (
            Method::GET,
            "authorize?client_id=%00%01".into(),
            None,
            Vec::new(),
            400,
        ),
        (
            Method::POST,
            "authorize".into(),
            Some("application/json"),
            b"{}".to_vec(),
            400,
        ),
        (
            Method::GET,
            "authorize/resume?req=does-not-exist".into(),
            None,
            Vec::new(),
            400,
        ),
        (
            Method::GET,
            "authorize/resume?req=%ff".into(),
            None,
            Vec::new(),
            400,
        ),
        (
            Method::POST,
            "login".into(),
            Some(form),
            b"email=a@b.c".to_vec(),
            400,
        ),
        (
            Method::POST,
            "login".into(),
            Some("multipart/form-data"),
            b"--x--".to_vec(),
            400,
        ),
        (
            Method::POST,
            "login/code".into(),
            Some(form),
            vec![0xc3, 0x28],
            400,
        ),
        (
            Method::POST,
            "consent".into(),
            Some(form),
            b"decision=allow".to_vec(),
            400,
        ),
        (
            Method::GET,
            "consent?req=nope".into(),
            None,
            Vec::new(),
            400,
        ),
        (
            Method::GET,
            "logout?id_token_hint=not.a.jwt".into(),
            None,
            Vec::new(),
            400,
        ),
        (
            Method::POST,
            "logout".into(),
            Some(form),
            b"id_token_hint=x".to_vec(),
            400,
        ),
        (Method::DELETE, "jwks".into(), None, Vec::new(), 0),
        (Method::GET, "no/such/page".into(), None, Vec::new(), 404),
        // SSO: the SAML ACS and metadata, the OIDC callback and client keys, the administration.
        (Method::POST, "sso/saml/sso_nothing/acs".into(), Some(form), b"SAMLResponse=bm90IHhtbA%3D%3D".to_vec(), 400),
        (Method::POST, "sso/saml/sso_nothing/acs".into(), Some(form), b"SAMLResponse=%%%".to_vec(), 400),
        (Method::POST, "sso/saml/sso_nothing/acs".into(), Some(form), b"RelayState=x".to_vec(), 400),
        (Method::POST, "sso/saml/sso_nothing/acs".into(), Some("application/json"), b"{}".to_vec(), 400),
        (Method::POST, "sso/saml/sso_nothing/acs".into(), Some(form), format!("SAMLResponse={}", "A".repeat(300 * 1024)).into_bytes(), 413),
        (Method::POST, "sso/saml/..%2F..%2Fetc/acs".into(), Some(form), b"SAMLResponse=eA%3D%3D".to_vec(), 0),
        (Method::GET, "sso/saml/sso_nothing/metadata".into(), None, Vec::new(), 404),
        (Method::GET, "sso/sso_nothing/jwks".into(), None, Vec::new(), 404),
        (Method::GET, "sso/sso_nothing/start".into(), None, Vec::new(), 404),
        (Method::GET, "sso/callback?state=x&code=y".into(), None, Vec::new(), 400),
        (Method::GET, "sso/callback?error=%ff".into(), None, Vec::new(), 400),
        (Method::POST, "org/nothing/admin".into(), Some(form), b"op=add-domain".to_vec(), 0),
    ];
    let http = api();
    for (method, path, content_type, body, expected) in cases {
        let mut request = http.request(method.clone(), server.url(&path)).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let status = request.send().await.expect("request").status().as_u16();
        assert!(
            (400..500).contains(&status),
            "{method} {path:.80}: got {status}"
        );
        if expected != 0 {
            assert_eq!(status, expected, "{method} {path:.80}");
        }
    }

    // Bad credentials and tokens in headers.
    // "Basic " + base64("a%00b:secret"): a NUL in the client id after form-decoding.
    for header in [
        "Basic !!!notbase64",
        "Basic Zm9v",
        "Bearer",
        "Digest abc",
        "Basic ",
        "Basic YSUwMGI6c2VjcmV0",
    ] {
        let status = http
            .post(server.url("token"))
            .header("authorization", header)
            .header("content-type", form)
            .body("grant_type=client_credentials")
            .send()
            .await
            .expect("token")
            .status()
            .as_u16();
        assert!((400..500).contains(&status), "{header}: {status}");
    }
    for token in ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."] {
        let response = http
            .get(server.url("userinfo"))
            .bearer_auth(token)
            .send()
            .await
            .expect("userinfo");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token}");
    }
    let bare = http
        .get(server.url("userinfo"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        bare.headers()["www-authenticate"],
        "Bearer realm=\"latchkey\""
    );

    // A client_credentials token lacks openid: userinfo says insufficient_scope.
    let (worker, worker_secret) = server.create_client(&[
        "--name",
        "W",
        "--confidential",
        "--grant-type",
        "client_credentials",
        "--scope",
        "jobs",
    ]);
    let token: serde_json::Value = http
        .post(server.url("token"))
        .basic_auth(&worker, worker_secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let response = http
        .get(server.url("userinfo"))
        .bearer_auth(token["access_token"].as_str().expect("at"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .expect("h")
            .contains("insufficient_scope")
    );

    // Errors never echo the secret back.
    let wrong = http
        .post(server.url("token"))
        .basic_auth(&client_id, Some(format!("{secret}x")))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token");
    assert!(!wrong.text().await.expect("body").contains(&secret));

    // The server is still up.
    let health = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), StatusCode::OK);
}
