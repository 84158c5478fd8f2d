//! The permission API (`latchkey-permissions`) over HTTP: it trusts only access tokens from the issuers
//! it is configured with, verified offline against their JWKS; it answers RFC 6750 / RFC 9728 / RFC 9470
//! challenges; its decisions follow its rules, come with a receipt anyone can verify against its
//! published key, and each leaves an audit row.
//!
//! Two issuers are trusted: a real Latchkey tenant, and a forging issuer served by this test (its own
//! P-256 key, JWKS it can change), which lets each rejection be provoked precisely.

mod common;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use base64::Engine;
use common::*;
use latchkey::keys::{SigningKey, standalone_es256};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

const REDIRECT: &str = "http://127.0.0.1:9/cb";

const RULES: &str = r#"
[[rules]]
tool = "*"
action = "admin"
effect = "deny"

[[rules]]
tool = "files.read"
scopes = ["files:read"]
effect = "allow"

[[rules]]
tool = "files.delete"
scopes = ["files:write"]
effect = "step_up"
max_age = 300

[[rules]]
tool = "reports.run"
caller = "agent"
effect = "allow"
"#;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An OpenID issuer served by the test: discovery and a JWKS it may change, counting JWKS fetches.
struct ForgingIssuer {
    issuer: String,
    jwks: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<Mutex<usize>>,
    /// Requests of any kind (discovery and JWKS), answered or failed.
    requests: Arc<Mutex<usize>>,
    /// Answer every request with 503.
    failing: Arc<AtomicBool>,
}

impl ForgingIssuer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let issuer = format!("http://127.0.0.1:{}/t/forge", listener.local_addr().expect("addr").port());
        let jwks: Arc<Mutex<Vec<Value>>> = Arc::default();
        let fetches: Arc<Mutex<usize>> = Arc::default();
        let requests: Arc<Mutex<usize>> = Arc::default();
        let failing: Arc<AtomicBool> = Arc::default();
        let (keys, count, iss) = (jwks.clone(), fetches.clone(), issuer.clone());
        let (all, broken) = (requests.clone(), failing.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (keys, count, iss, all, broken) = (keys.clone(), count.clone(), iss.clone(), all.clone(), broken.clone());
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 4096];
                    let n = stream.read(&mut buffer).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buffer[..n]);
                    let path = request.split_whitespace().nth(1).unwrap_or("/");
                    *all.lock().expect("count") += 1;
                    if broken.load(Ordering::SeqCst) {
                        let _ = stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                        return;
                    }
                    let body = if path.ends_with("/.well-known/openid-configuration") {
                        json!({ "issuer": iss, "jwks_uri": format!("{iss}/jwks") }).to_string()
                    } else if path.ends_with("/jwks") {
                        *count.lock().expect("count") += 1;
                        json!({ "keys": *keys.lock().expect("keys") }).to_string()
                    } else {
                        "{}".to_owned()
                    };
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Self { issuer, jwks, fetches, requests, failing }
    }

    fn requests(&self) -> usize {
        *self.requests.lock().expect("count")
    }

    /// A new signing key; published in the JWKS when `publish`.
    fn key(&self, publish: bool) -> (SigningKey, Value) {
        let (key, jwk, _) = standalone_es256(None).expect("key");
        let jwk = serde_json::to_value(jwk).expect("jwk");
        if publish {
            self.publish(&jwk);
        }
        (key, jwk)
    }

    fn publish(&self, jwk: &Value) {
        self.jwks.lock().expect("keys").push(jwk.clone());
    }

    fn fetches(&self) -> usize {
        *self.fetches.lock().expect("count")
    }

    /// Access-token claims that pass, for `resource`; tests spoil one thing at a time.
    fn claims(&self, resource: &str) -> Value {
        let now = latchkey::store::now();
        json!({
            "iss": self.issuer, "sub": "user-1", "aud": resource, "client_id": "client-1",
            "scope": "files:read", "iat": now, "exp": now + 900, "jti": random_hex(8),
            "auth_time": now - 60, "acr": "urn:latchkey:acr:mfa", "caller": "person",
        })
    }
}

fn sign(key: &SigningKey, typ: &str, claims: &Value) -> String {
    latchkey::jwt::sign_with(key, typ, claims).expect("sign")
}

/// A token with a hand-made header (for algorithms our signer refuses to produce) and signature.
fn handmade(header: Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

fn assert_invalid_token(case: &str, (status, challenge, body): &(StatusCode, String, Value), reason: &str) {
    assert_eq!(*status, StatusCode::UNAUTHORIZED, "{case}: {body}");
    assert!(challenge.starts_with("Bearer resource_metadata=\"http://127.0.0.1:"), "{case}: {challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{case}: {challenge}");
    assert_eq!(body["error"], "invalid_token", "{case}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains(reason), "{case}: expected “{reason}” in “{description}”");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_well_formed_tokens_from_trusted_issuers_for_this_resource_pass() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    let forge = ForgingIssuer::start().await;
    let permissions = PermissionApi::start(&[server.issuer("default"), forge.issuer.clone()], RULES).await;
    let resource = permissions.resource.clone();
    let (key, jwk) = forge.key(true);
    let kid = jwk["kid"].as_str().expect("kid").to_owned();

    // The control: a well-formed token passes (and the first one fetches the forging issuer's JWKS once).
    let good = sign(&key, "at+jwt", &forge.claims(&resource));
    let (status, _, body) = permissions.decide(Some(&good), "files.read", "call").await;
    assert_eq!((status, body["decision"].as_str()), (StatusCode::OK, Some("allow")), "{body}");
    assert_eq!(forge.fetches(), 1);

    let now = latchkey::store::now();
    let spoiled = |change: &dyn Fn(&mut Value)| {
        let mut claims = forge.claims(&resource);
        change(&mut claims);
        claims
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("expired beyond the leeway", sign(&key, "at+jwt", &spoiled(&|c| c["exp"] = json!(now - 120))), "expired"),
        ("not yet valid", sign(&key, "at+jwt", &spoiled(&|c| c["nbf"] = json!(now + 300))), "not yet valid"),
        ("for another resource", sign(&key, "at+jwt", &spoiled(&|c| c["aud"] = json!("https://other.example.com/mcp"))), "not for this resource"),
        ("no audience", sign(&key, "at+jwt", &spoiled(&|c| { c.as_object_mut().expect("object").remove("aud"); })), "required claim"),
        ("from an untrusted issuer", sign(&key, "at+jwt", &spoiled(&|c| c["iss"] = json!("https://evil.example.com/t/default"))), "untrusted issuer"),
        // latchkey_proto::AccessClaims is the contract: no guessing a person from an agent.
        ("no caller", sign(&key, "at+jwt", &spoiled(&|c| { c.as_object_mut().expect("object").remove("caller"); })), "contract"),
        ("an acr Latchkey never issues", sign(&key, "at+jwt", &spoiled(&|c| c["acr"] = json!("urn:example:gold"))), "contract"),
        ("an ID token (typ JWT)", sign(&key, "JWT", &forge.claims(&resource)), "typ must be at+jwt"),
        ("signed by a key the issuer never published", sign(&forge.key(false).0, "at+jwt", &forge.claims(&resource)), "unknown key"),
        (
            "a trusted issuer's name on a forged key",
            sign(&forge.key(false).0, "at+jwt", &spoiled(&|c| c["iss"] = json!(server.issuer("default")))),
            "unknown key",
        ),
        (
            "alg none",
            handmade(json!({ "alg": "none", "typ": "at+jwt", "kid": kid }), &forge.claims(&resource), |_| Vec::new()),
            "algorithm not accepted",
        ),
        (
            "HS256 keyed with the public key",
            handmade(json!({ "alg": "HS256", "typ": "at+jwt", "kid": kid }), &forge.claims(&resource), |input| {
                use hmac::Mac;
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(jwk.to_string().as_bytes()).expect("hmac");
                mac.update(input);
                mac.finalize().into_bytes().to_vec()
            }),
            "algorithm not accepted",
        ),
        (
            "RS256 claimed for an EC key",
            handmade(json!({ "alg": "RS256", "typ": "at+jwt", "kid": kid }), &forge.claims(&resource), |_| vec![0; 256]),
            "does not match the key",
        ),
        ("garbage", "not.a.token".to_owned(), "malformed"),
    ];
    for (case, token, reason) in &cases {
        assert_invalid_token(case, &permissions.decide(Some(token), "files.read", "call").await, reason);
    }

    // A tampered payload breaks the signature; so does another key's signature under our kid.
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = b64(spoiled(&|c| c["scope"] = json!("files:read files:write")).to_string().as_bytes());
    assert_invalid_token("tampered", &permissions.decide(Some(&parts.join(".")), "files.read", "call").await, "bad signature");
    let stranger = sign(&forge.key(false).0, "at+jwt", &forge.claims(&resource));
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[2] = stranger.split('.').nth(2).expect("signature").to_owned();
    assert_invalid_token("another key's signature", &permissions.decide(Some(&parts.join(".")), "files.read", "call").await, "bad signature");

    // Unknown kids trigger at most one JWKS refetch per interval (2 s here), however many arrive;
    // a key published later is picked up once the interval has passed.
    let fetches = forge.fetches();
    for _ in 0..10 {
        let token = sign(&forge.key(false).0, "at+jwt", &forge.claims(&resource));
        assert_invalid_token("unknown kid burst", &permissions.decide(Some(&token), "files.read", "call").await, "unknown key");
    }
    assert!(forge.fetches() - fetches <= 1, "{} refetches for a burst of unknown kids", forge.fetches() - fetches);
    let (rotated, _) = forge.key(true);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let token = sign(&rotated, "at+jwt", &forge.claims(&resource));
    let (status, _, body) = permissions.decide(Some(&token), "files.read", "call").await;
    assert_eq!(status, StatusCode::OK, "a newly published key is fetched: {body}");

    // Real Latchkey tokens: another tenant's, and an ID token, are refused; a token for this resource passes.
    server.cli(&["tenant", "create", "other"]);
    for tenant in ["default", "other"] {
        server.cli(&["resource", "create", "--tenant", tenant, "--uri", &resource, "--scope", "files:read"]);
    }
    let client_credentials = |tenant: &'static str| {
        let (server, resource) = (&server, resource.clone());
        async move {
            let out = server.cli(&["client", "create", "--json", "--tenant", tenant, "--name", "Bot", "--confidential", "--grant-type", "client_credentials", "--scope", "files:read"]);
            let client: Value = serde_json::from_str(out.trim()).expect("client json");
            let response = api()
                .post(format!("{}/token", server.issuer(tenant)))
                .basic_auth(client["client_id"].as_str().expect("id"), client["client_secret"].as_str())
                .form(&[("grant_type", "client_credentials"), ("resource", &resource), ("scope", "files:read")])
                .send()
                .await
                .expect("token");
            let body: Value = response.json().await.expect("json");
            body["access_token"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned()
        }
    };
    let other_tenant = client_credentials("other").await;
    assert_invalid_token("another tenant's token", &permissions.decide(Some(&other_tenant), "files.read", "call").await, "untrusted issuer");
    let ours = client_credentials("default").await;
    let (status, _, body) = permissions.decide(Some(&ours), "files.read", "call").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (client_id, secret) = server.create_client(&["--name", "App", "--confidential", "--first-party", "--redirect-uri", REDIRECT]);
    let pkce = pkce();
    let authorize = format!(
        "{}?response_type=code&client_id={client_id}&redirect_uri={REDIRECT}&scope=openid%20files:read&resource={}&code_challenge={}&code_challenge_method=S256&nonce=n",
        server.url("authorize"),
        urlencode(&resource),
        pkce.challenge
    );
    let callback = authorize_through_pages(&server, &smtp, &browser(), &authorize, "reader@example.com").await;
    let code = query_param(&callback, "code").expect("code");
    let (_, tokens) = exchange_code(&server, &client_id, &secret.expect("secret"), &code, REDIRECT, &pkce.verifier).await;
    let id_token = tokens["id_token"].as_str().expect("id token");
    assert_invalid_token("Latchkey ID token", &permissions.decide(Some(id_token), "files.read", "call").await, "typ must be at+jwt");
    let access_token = tokens["access_token"].as_str().expect("access token");
    let (status, _, body) = permissions.decide(Some(access_token), "files.read", "call").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Only verified callers reach the rules, so only their decisions are audited.
    let rows = permissions.audit_rows().await;
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().all(|(_, tool, _, decision)| tool == "files.read" && decision == "allow"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_follow_the_rules_with_challenges_and_verifiable_receipts() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let server = Server::start(&deployment, &smtp, &[]).await;
    let permissions = PermissionApi::start(&[server.issuer("default")], RULES).await;
    let resource = permissions.resource.clone();
    server.cli(&["resource", "create", "--uri", &resource, "--name", "Files", "--scope", "files:read", "--scope", "files:write"]);

    // RFC 9728 metadata, at the root and path-suffixed for /mcp, names exactly the URL clients use.
    for path in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"] {
        let metadata: Value = api().get(permissions.url(path)).send().await.expect("metadata").json().await.expect("json");
        assert_eq!(metadata["resource"], resource.as_str(), "{path}");
        assert_eq!(metadata["authorization_servers"], json!([server.issuer("default")]));
        assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));
        assert_eq!(metadata["resource_signing_alg_values_supported"], json!(["EdDSA"]), "what receipts are signed with");
    }

    // No token: 401 pointing at the metadata, with the scopes, and no error code (RFC 6750 §3.1).
    let (status, challenge, _) = permissions.decide(None, "files.read", "call").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge,
        format!("Bearer resource_metadata=\"{}\", scope=\"files:read files:write\"", permissions.url("/.well-known/oauth-protected-resource/mcp"))
    );

    // A person signed in with an email code and a new passkey (acr mfa), holding files:read only.
    let (client_id, secret) = server.create_client(&["--name", "App", "--confidential", "--first-party", "--redirect-uri", REDIRECT]);
    let secret = secret.expect("secret");
    let browser = browser();
    let email = "owner@example.com";
    let token_for = |scope: &'static str, extra: &'static str| {
        let (server, smtp, browser, client_id, secret, resource) = (&server, &smtp, &browser, client_id.clone(), secret.clone(), resource.clone());
        async move {
            let pkce = pkce();
            let authorize = format!(
                "{}?response_type=code&client_id={client_id}&redirect_uri={REDIRECT}&scope={}&resource={}&code_challenge={}&code_challenge_method=S256{extra}",
                server.url("authorize"),
                urlencode(scope),
                urlencode(&resource),
                pkce.challenge
            );
            let callback = authorize_through_pages(server, smtp, browser, &authorize, email).await;
            let code = query_param(&callback, "code").unwrap_or_else(|| panic!("{callback}"));
            let (status, tokens) = exchange_code(server, &client_id, &secret, &code, REDIRECT, &pkce.verifier).await;
            assert_eq!(status, StatusCode::OK, "{tokens}");
            tokens["access_token"].as_str().expect("access token").to_owned()
        }
    };
    let reader = token_for("files:read", "").await;
    let (status, _, allowed) = permissions.decide(Some(&reader), "files.read", "call").await;
    assert_eq!((status, allowed["decision"].as_str()), (StatusCode::OK, Some("allow")), "{allowed}");

    // The receipt verifies against the permission API's published key and says what was decided.
    let jwks: jsonwebtoken::jwk::JwkSet = api().get(permissions.url("/.well-known/jwks.json")).send().await.expect("jwks").json().await.expect("json");
    let receipt = allowed["receipt"].as_str().expect("receipt");
    assert_eq!((jwt_header(receipt)["typ"].as_str(), jwt_header(receipt)["alg"].as_str()), (Some("decision+jwt"), Some("EdDSA")));
    let kid = jwt_header(receipt)["kid"].as_str().expect("kid").to_owned();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(&kid).expect("receipt key published")).expect("key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_required_spec_claims(&["iss"]);
    validation.set_issuer(&[&resource]);
    let verified = jsonwebtoken::decode::<Value>(receipt, &key, &validation).expect("receipt verifies").claims;
    let reader_claims = jwt_claims(&reader);
    assert_eq!(verified["sub"], reader_claims["sub"]);
    assert_eq!(verified["token_jti"], reader_claims["jti"]);
    assert_eq!((verified["tool"].as_str(), verified["decision"].as_str()), (Some("files.read"), Some("allow")));
    let mut forged = receipt.split('.').map(str::to_owned).collect::<Vec<_>>();
    forged[1] = b64(json!({ "iss": resource, "decision": "allow", "tool": "files.delete" }).to_string().as_bytes());
    assert!(jsonwebtoken::decode::<Value>(&forged.join("."), &key, &validation).is_err(), "an edited receipt does not verify");

    // A scope the rule needs and the token lacks: 403 insufficient_scope naming it.
    let (status, challenge, body) = permissions.decide(Some(&reader), "files.delete", "call").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(challenge.contains("error=\"insufficient_scope\", scope=\"files:write\""), "{challenge}");
    assert_eq!(body["decision"], "deny");

    // With the scope, the delete needs a fresh passkey: RFC 9470 challenge ...
    let writer = token_for("files:read files:write", "").await;
    let (status, challenge, body) = permissions.decide(Some(&writer), "files.delete", "call").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        challenge.contains("error=\"insufficient_user_authentication\"") && challenge.contains("acr_values=\"phr\", max_age=\"300\""),
        "{challenge}"
    );
    assert_eq!(body["decision"], "step_up");
    // ... which the client meets by asking Latchkey for exactly that: the user confirms with a passkey.
    let stepped_up = token_for("files:read files:write", "&acr_values=phr&max_age=300").await;
    assert_eq!(jwt_claims(&stepped_up)["acr"], "phr");
    let (status, _, body) = permissions.decide(Some(&stepped_up), "files.delete", "call").await;
    assert_eq!((status, body["decision"].as_str()), (StatusCode::OK, Some("allow")), "{body}");

    // A denying rule, and no rule at all.
    let (status, _, body) = permissions.decide(Some(&stepped_up), "files.read", "admin").await;
    assert_eq!((status, body["decision"].as_str()), (StatusCode::FORBIDDEN, Some("deny")), "{body}");
    let (status, _, body) = permissions.decide(Some(&stepped_up), "billing.export", "call").await;
    assert_eq!((status, body["reason"].as_str()), (StatusCode::FORBIDDEN, Some("no rule allows this call")));

    // An agent (client credentials: the client is the subject) may run reports, never the step-up
    // delete (even holding its scope), and cannot be asked to step up.
    let (bot, bot_secret) = server.create_client(&["--name", "Reporter", "--confidential", "--grant-type", "client_credentials", "--scope", "files:write"]);
    let (_, body) = token_request(&server, &bot, &bot_secret.expect("secret"), &[("grant_type", "client_credentials"), ("resource", &resource), ("scope", "files:write")]).await;
    let agent = body["access_token"].as_str().expect("agent token").to_owned();
    let (status, _, body) = permissions.decide(Some(&agent), "reports.run", "call").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = permissions.decide(Some(&agent), "files.delete", "call").await;
    assert_eq!((status, body["decision"].as_str()), (StatusCode::FORBIDDEN, Some("deny")), "{body}");
    let (status, _, body) = permissions.decide(Some(&reader), "reports.run", "call").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a person is not the agent the rule names: {body}");

    // Malformed decision requests are 400s, not decisions.
    let response = api().post(permissions.url("/v1/decisions")).bearer_auth(&reader).body("{").send().await.expect("post");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Every decision left one audit row, in order.
    let decisions: Vec<String> = permissions.audit_rows().await.into_iter().map(|(_, tool, action, d)| format!("{tool}/{action}:{d}")).collect();
    assert_eq!(
        decisions,
        [
            "files.read/call:allow",
            "files.delete/call:deny",
            "files.delete/call:step_up",
            "files.delete/call:allow",
            "files.read/admin:deny",
            "billing.export/call:deny",
            "reports.run/call:allow",
            "files.delete/call:deny",
            "reports.run/call:deny",
        ]
    );
}

/// Tokens naming unknown keys cannot make the permission API hammer an issuer: a burst of them shares
/// one JWKS fetch, and an issuer that fails is asked again only after the refetch interval (2 s here),
/// then twice that, and so on, counted from each attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_keys_and_a_failing_issuer_do_not_hammer_it() {
    let forge = ForgingIssuer::start().await;
    let (key, _) = forge.key(true);
    let permissions = PermissionApi::start(std::slice::from_ref(&forge.issuer), RULES).await;
    let resource = permissions.resource.clone();
    let (status, _, _) = permissions.decide(Some(&sign(&key, "at+jwt", &forge.claims(&resource))), "files.read", "call").await;
    assert_eq!((status, forge.fetches()), (StatusCode::OK, 1));

    // Forty tokens at once, each with its own unknown kid: one fetch among them.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let before = forge.fetches();
    let tokens: Vec<String> = (0..40).map(|_| sign(&forge.key(false).0, "at+jwt", &forge.claims(&resource))).collect();
    let answers = futures_util::future::join_all(tokens.iter().map(|t| permissions.decide(Some(t), "files.read", "call"))).await;
    assert!(answers.iter().all(|(status, _, _)| *status == StatusCode::UNAUTHORIZED));
    assert_eq!(forge.fetches() - before, 1, "one fetch in flight per issuer");

    // The issuer starts failing: over 6.5 s of unknown kids every 100 ms, it is asked at t≈0 (a
    // failure: the next attempt waits 4 s) and t≈4 s (then 8 s): two attempts, not sixty-five.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    forge.failing.store(true, Ordering::SeqCst);
    let before = forge.requests();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(6500) {
        let token = sign(&forge.key(false).0, "at+jwt", &forge.claims(&resource));
        let (status, _, _) = permissions.decide(Some(&token), "files.read", "call").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let attempts = forge.requests() - before;
    assert!((1..=3).contains(&attempts), "{attempts} requests to a failing issuer in 6.5 s");
    // A known key still verifies offline while the issuer is down.
    let (status, _, _) = permissions.decide(Some(&sign(&key, "at+jwt", &forge.claims(&resource))), "files.read", "call").await;
    assert_eq!(status, StatusCode::OK);
}

/// The kill switch reaches a resource server that validates offline (draft-ietf-oauth-status-list):
/// every access token of a grant names the grant's entry in its issuer's signed token status list.
/// While the grant stands, a burst of decisions costs Latchkey no fetch per call (its own metrics
/// count the list's requests); once the grant is revoked — here a refresh token presented twice, as
/// a thief's replay would — the permission API refuses its tokens within its refresh interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_is_refused_offline_within_the_status_list_interval() {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let metrics_listen = format!("127.0.0.1:{}", free_port());
    let server = Server::start(&deployment, &smtp, &[("LATCHKEY_METRICS_LISTEN", &metrics_listen)]).await;
    let permissions = PermissionApi::start(&[server.issuer("default")], &format!("status_list_refresh_seconds = 1\n{RULES}")).await;
    let resource = permissions.resource.clone();
    server.cli(&["resource", "create", "--uri", &resource, "--name", "Files", "--scope", "files:read"]);
    let (client_id, secret) = server.create_client(&["--name", "App", "--confidential", "--first-party", "--redirect-uri", REDIRECT]);
    let secret = secret.expect("secret");
    let pkce = pkce();
    let authorize = format!(
        "{}?response_type=code&client_id={client_id}&redirect_uri={REDIRECT}&scope={}&resource={}&code_challenge={}&code_challenge_method=S256",
        server.url("authorize"),
        urlencode("files:read offline_access"),
        urlencode(&resource),
        pkce.challenge
    );
    let callback = authorize_through_pages(&server, &smtp, &browser(), &authorize, "reader@example.com").await;
    let code = query_param(&callback, "code").unwrap_or_else(|| panic!("{callback}"));
    let (status, tokens) = exchange_code(&server, &client_id, &secret, &code, REDIRECT, &pkce.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().expect("access token").to_owned();
    let refresh = tokens["refresh_token"].as_str().expect("refresh token").to_owned();
    let list_uri = format!("{}/statuslists/0", server.issuer("default"));
    let status_claim = &jwt_claims(&access)["status"]["status_list"];
    assert_eq!(status_claim["uri"], list_uri.as_str(), "{status_claim}");
    let idx = status_claim["idx"].as_u64().expect("an index");

    // The list as Latchkey publishes it: a JWT of typ statuslist+jwt, signed with a key of the JWKS,
    // whose entry for this grant is not set.
    let published = |expected: u8| {
        let (server, list_uri) = (&server, list_uri.clone());
        async move {
            let response = api().get(&list_uri).send().await.expect("status list");
            assert_eq!(response.headers()["content-type"], "application/statuslist+jwt");
            let token = response.text().await.expect("jwt");
            assert_eq!(jwt_header(&token)["typ"], "statuslist+jwt");
            let jwks: jsonwebtoken::jwk::JwkSet =
                api().get(server.url("jwks")).send().await.expect("jwks").json().await.expect("json");
            let kid = jwt_header(&token)["kid"].as_str().expect("kid").to_owned();
            let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(&kid).expect("published key")).expect("key");
            let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
            validation.validate_aud = false;
            validation.set_required_spec_claims(&["exp", "sub"]);
            let claims = jsonwebtoken::decode::<latchkey_proto::status_list::StatusListClaims>(&token, &key, &validation)
                .expect("signed by the issuer")
                .claims;
            assert_eq!(claims.sub, list_uri);
            let bytes = latchkey_proto::status_list::decode(&claims.status_list, 1 << 20).expect("decodes");
            assert_eq!(latchkey_proto::status_list::entry(&bytes, idx), Some(expected), "entry {idx}");
            // Room for grants made while a reader holds this list: their entries are inside it.
            assert!(bytes.len() as u64 * 8 >= idx + 65_536, "{} entries published for entry {idx}", bytes.len() * 8);
        }
    };
    published(0).await;

    let fetches = || {
        let metrics_listen = metrics_listen.clone();
        async move {
            let text = api().get(format!("http://{metrics_listen}/metrics")).send().await.expect("scrape").text().await.expect("text");
            text.lines()
                .filter(|l| l.starts_with(r#"latchkey_http_requests_total{method="GET",route="/t/{tenant}/statuslists/{id}""#))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        }
    };
    let before = fetches().await;
    for _ in 0..30 {
        let (status, _, body) = permissions.decide(Some(&access), "files.read", "call").await;
        assert_eq!((status, body["decision"].as_str()), (StatusCode::OK, Some("allow")), "{body}");
    }
    let during = fetches().await - before;
    assert!(during <= 3.0, "30 decisions in well under 3 s fetched the list {during} times: it is read from memory");

    // A grant made after the permission API fetched the list finds its entry in it (Latchkey
    // publishes room for new grants): allowed at once.
    let pkce2 = common::pkce();
    let authorize2 = authorize.replace(&pkce.challenge, &pkce2.challenge);
    let callback = authorize_through_pages(&server, &smtp, &browser(), &authorize2, "reader@example.com").await;
    let code = query_param(&callback, "code").unwrap_or_else(|| panic!("{callback}"));
    let (status, second) = exchange_code(&server, &client_id, &secret, &code, REDIRECT, &pkce2.verifier).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let second_access = second["access_token"].as_str().expect("access token");
    assert!(jwt_claims(second_access)["status"]["status_list"]["idx"].as_u64() > Some(idx), "a new grant, a new entry");
    let (status, _, body) = permissions.decide(Some(second_access), "files.read", "call").await;
    assert_eq!((status, body["decision"].as_str()), (StatusCode::OK, Some("allow")), "a new grant is not refused: {body}");

    // A refresh token presented twice revokes its grant (RFC 9700 §4.14.2): every token of it, the
    // one refreshed in between too.
    let form = |token: &str| vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", token.to_owned())];
    let refreshed = api().post(server.url("token")).basic_auth(&client_id, Some(&secret)).form(&form(&refresh)).send().await.expect("refresh");
    let refreshed: Value = refreshed.json().await.expect("json");
    let newer = refreshed["access_token"].as_str().expect("refreshed access token").to_owned();
    assert_eq!(jwt_claims(&newer)["status"]["status_list"]["idx"].as_u64(), Some(idx), "the grant's entry, whatever the token");
    let replayed = api().post(server.url("token")).basic_auth(&client_id, Some(&secret)).form(&form(&refresh)).send().await.expect("replay");
    assert_eq!(replayed.status(), StatusCode::BAD_REQUEST);
    let revoked_at = std::time::Instant::now();
    let refused = loop {
        let outcome = permissions.decide(Some(&access), "files.read", "call").await;
        if outcome.0 == StatusCode::UNAUTHORIZED {
            break outcome;
        }
        assert_eq!(outcome.0, StatusCode::OK, "{}", outcome.2);
        assert!(revoked_at.elapsed() < Duration::from_secs(15), "still allowed {:?} after the revocation", revoked_at.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let took = revoked_at.elapsed();
    published(1).await;
    assert_invalid_token("revoked grant", &refused, "revoked");
    assert_invalid_token("its refreshed token", &permissions.decide(Some(&newer), "files.read", "call").await, "revoked");
    // The list is served for up to 5 s, then read within the 1 s interval.
    assert!(took < Duration::from_secs(8), "refused {took:?} after the revocation");
}
