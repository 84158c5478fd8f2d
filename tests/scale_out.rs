//! Two stateless `latchkey serve` nodes on one database (PostgreSQL in CI's second run, a shared SQLite
//! file in the first): a flow may cross nodes, and one-time values are consumed exactly once even when
//! both nodes receive them at the same instant.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:9/cb";
const ROUNDS: usize = 50;

struct Cluster {
    smtp: SmtpCatcher,
    a: Server,
    b: Server,
    _deployment: Deployment,
    client_id: String,
    secret: String,
}

async fn cluster() -> Cluster {
    let smtp = SmtpCatcher::start().await;
    let deployment = Deployment::new().await;
    let a = Server::start(&deployment, &smtp, &[]).await;
    // Behind a load balancer both nodes answer for the same public URL, hence the same issuer.
    let b = Server::start(
        &deployment,
        &smtp,
        &[("LATCHKEY_PUBLIC_URL", a.base.as_str())],
    )
    .await;
    let (client_id, secret) = a.create_client(&[
        "--name",
        "App",
        "--confidential",
        "--redirect-uri",
        REDIRECT,
        "--first-party",
        "--introspect-all",
    ]);
    Cluster {
        smtp,
        a,
        b,
        _deployment: deployment,
        client_id,
        secret: secret.expect("secret"),
    }
}

impl Cluster {
    /// With a signed-in browser, a first-party authorization returns a code at once.
    async fn code(&self, browser: &reqwest::Client, pkce: &Pkce, first: bool) -> String {
        let url = format!(
            "{}?response_type=code&client_id={}&redirect_uri={REDIRECT}&scope=openid&code_challenge={}&code_challenge_method=S256",
            self.a.url("authorize"),
            self.client_id,
            pkce.challenge
        );
        let callback = if first {
            authorize_through_pages(&self.a, &self.smtp, browser, &url, "node@example.com").await
        } else {
            location(&browser.get(&url).send().await.expect("authorize"))
        };
        query_param(&callback, "code").expect("code")
    }

    async fn token(&self, node: &Server, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = api()
            .post(node.url("token"))
            .basic_auth(&self.client_id, Some(&self.secret))
            .form(form)
            .send()
            .await
            .expect("token");
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn active(&self, node: &Server, token: &str) -> bool {
        introspect(node, &self.client_id, &self.secret, token).await["active"] == true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authorize_on_one_node_exchange_on_the_other() {
    let c = cluster().await;
    let browser = browser();
    let pkce = pkce();
    let code = c.code(&browser, &pkce, true).await;
    let (status, tokens) = c
        .token(
            &c.b,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &pkce.verifier),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let (status, _) = c
        .token(
            &c.a,
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    tokens["refresh_token"].as_str().expect("rt"),
                ),
            ],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the family lives in the shared database"
    );
    assert_eq!(
        jwt_claims(tokens["access_token"].as_str().expect("at"))["iss"],
        c.a.issuer("default")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_refresh_token_on_both_nodes_wins_once_and_kills_the_family() {
    let c = cluster().await;
    let browser = browser();
    for round in 0..ROUNDS {
        let pkce = pkce();
        let code = c.code(&browser, &pkce, round == 0).await;
        let (_, tokens) = c
            .token(
                &c.a,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", &pkce.verifier),
                ],
            )
            .await;
        let refresh = tokens["refresh_token"].as_str().expect("rt").to_owned();
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ];
        // Twice to each node at the same instant: two on one node usually share one write
        // transaction there (`token_writes`), the other two race it in the database.
        let results = futures_util::future::join_all([&c.a, &c.a, &c.b, &c.b].map(|node| c.token(node, &form))).await;
        let (winners, losers): (Vec<&(StatusCode, Value)>, Vec<_>) =
            results.iter().partition(|(s, _)| *s == StatusCode::OK);
        let statuses: Vec<StatusCode> = results.iter().map(|(s, _)| *s).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one request may rotate the token ({statuses:?})");
        for loser in losers {
            assert_eq!(loser.1["error"], "invalid_grant");
        }
        // The loser saw a reuse: the family is revoked, so even the winner's new token is dead.
        let new_refresh = winners[0].1["refresh_token"].as_str().expect("rotated rt");
        let (status, _) = c
            .token(
                &c.b,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", new_refresh),
                ],
            )
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "round {round}: family must end revoked"
        );
        assert!(
            !c.active(&c.a, winners[0].1["access_token"].as_str().expect("at"))
                .await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_code_on_both_nodes_wins_once() {
    let c = cluster().await;
    let browser = browser();
    for round in 0..ROUNDS {
        let pkce = pkce();
        let code = c.code(&browser, &pkce, round == 0).await;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", pkce.verifier.as_str()),
        ];
        let (on_a, on_b) = tokio::join!(c.token(&c.a, &form), c.token(&c.b, &form));
        let oks = [&on_a, &on_b]
            .iter()
            .filter(|(s, _)| *s == StatusCode::OK)
            .count();
        assert_eq!(
            oks, 1,
            "round {round}: a code is exchanged exactly once ({:?} / {:?})",
            on_a.0, on_b.0
        );
        let winner = if on_a.0 == StatusCode::OK {
            &on_a.1
        } else {
            &on_b.1
        };
        // The replay revoked what the winning exchange issued.
        let refresh = winner["refresh_token"].as_str().expect("rt");
        let (status, _) = c
            .token(
                &c.a,
                &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
            )
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "round {round}: tokens from a replayed code are revoked"
        );
    }
}
