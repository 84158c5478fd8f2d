//! The store's contract, on the engine the suite runs on (SQLite, or PostgreSQL when
//! `LATCHKEY_TEST_POSTGRES_URL` is set; `scripts/test` runs both): what the repositories promise the
//! domain — one-time values consumed once however many connections race, attempt counters in the
//! database, ended sessions staying ended, and no tenant seeing another's rows.

mod common;

use latchkey::{
    crypto::MasterKey,
    organization, service_account,
    store::{
        self, DatabaseConnection, Scoped, access_tokens, approvals, audit_events, device_codes, authorizations, consents, email_codes,
        initial_access_tokens, mail_outbox, organizations, passkeys, recovery_codes, refresh_families, resources,
        scim, service_accounts, sessions, signing_keys, sso, status_lists, tenants, totp_authenticators, users,
    },
    tenant, user,
};
use latchkey_proto::{Acr, Amr};

/// Several pooled connections, so racing calls really run on different connections.
const POOL: u32 = 8;

struct Fixture {
    _deployment: common::Deployment,
    db: DatabaseConnection,
    tenant_id: String,
    other_tenant_id: String,
}

impl Fixture {
    async fn new() -> Self {
        let deployment = common::Deployment::new().await;
        let url = deployment.database_url.clone().expect("a database");
        let db = store::connect(&url, POOL).await.expect("connect");
        store::migrate(&db).await.expect("migrate");
        let master = MasterKey::generate();
        let tenant = tenant::create(&db, &master, "acme", "Acme", true).await.expect("tenant");
        let other = tenant::create(&db, &master, "globex", "Globex", true).await.expect("other tenant");
        Self { _deployment: deployment, db, tenant_id: tenant.id.clone(), other_tenant_id: other.id.clone() }
    }

    fn scope(&self) -> Scoped<'_> {
        Scoped::new(&self.db, &self.tenant_id)
    }

    fn other(&self) -> Scoped<'_> {
        Scoped::new(&self.db, &self.other_tenant_id)
    }

    async fn user(&self, email: &str) -> String {
        let email = user::Email::parse(email).expect("an address");
        user::find_or_create(self.scope(), &email).await.expect("user").id
    }
}

/// Nodes starting together (or an operator's command beside a starting server) migrate one at a time:
/// each gets a migrated database and none trips over another's half-applied migration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_migrating_a_fresh_database_at_once_all_start() {
    let deployment = common::Deployment::new().await;
    let url = deployment.database_url.clone().expect("a database");
    let mut pools = Vec::new();
    for _ in 0..4 {
        pools.push(store::connect(&url, 2).await.expect("connect"));
    }
    let results = futures_util::future::join_all(pools.iter().map(store::migrate)).await;
    for result in results {
        result.expect("every node's migration succeeds");
    }
    // The schema is whole: a tenant can be created and found.
    let master = MasterKey::generate();
    tenant::create(&pools[0], &master, "acme", "Acme", true).await.expect("tenant");
    assert!(tenant::find_by_slug(&pools[3], &master, "acme").await.expect("find").is_some());
}

fn code<'a>(flow_id: &'a str, email: &'a str, now: i64) -> email_codes::NewCode<'a> {
    email_codes::NewCode { flow_id, email, code_hash: vec![7; 32], created_at: now, expires_at: now + 600 }
}

#[tokio::test]
async fn an_email_code_is_consumed_once_however_many_connections_race() {
    let fixture = Fixture::new().await;
    let now = store::now();
    email_codes::replace(fixture.scope(), code("flow-race", "ada@example.com", now)).await.expect("store");
    let racers = (0..16).map(|_| email_codes::consume(fixture.scope(), "flow-race", now));
    let won: Vec<bool> = futures_util::future::join_all(racers).await.into_iter().map(|r| r.expect("consume")).collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    assert_eq!(email_codes::open_email(fixture.scope(), "flow-race", now).await.expect("read"), None);
}

#[tokio::test]
async fn attempts_are_counted_in_the_database_up_to_the_limit_even_when_racing() {
    let fixture = Fixture::new().await;
    let now = store::now();
    email_codes::replace(fixture.scope(), code("flow-count", "ada@example.com", now)).await.expect("store");
    let racers = (0..12).map(|_| email_codes::count_attempt(fixture.scope(), "flow-count", 5, now));
    let counted = futures_util::future::join_all(racers).await;
    let mut attempts: Vec<i32> = counted.into_iter().filter_map(|r| r.expect("count")).map(|c| c.attempts).collect();
    attempts.sort_unstable();
    assert_eq!(attempts.len(), 5, "exactly five checks are let through");
    assert_eq!(*attempts.last().expect("some"), 5, "each counted check sees at least its own count");
    assert!(email_codes::count_attempt(fixture.scope(), "flow-count", 5, now).await.expect("count").is_none());
}

#[tokio::test]
async fn a_new_code_ends_the_old_one_and_an_expired_code_is_not_open() {
    let fixture = Fixture::new().await;
    let now = store::now();
    email_codes::replace(fixture.scope(), code("flow-old", "ada@example.com", now)).await.expect("store");
    email_codes::replace(fixture.scope(), code("flow-new", "ada@example.com", now)).await.expect("store");
    assert_eq!(email_codes::open_email(fixture.scope(), "flow-old", now).await.expect("read"), None);
    assert!(email_codes::count_attempt(fixture.scope(), "flow-old", 5, now).await.expect("count").is_none());
    assert!(!email_codes::consume(fixture.scope(), "flow-old", now).await.expect("consume"), "ended when replaced");
    assert_eq!(email_codes::open_email(fixture.scope(), "flow-new", now).await.expect("read").as_deref(), Some("ada@example.com"));
    assert_eq!(email_codes::open_email(fixture.scope(), "flow-new", now + 600).await.expect("read"), None, "expired");
    assert!(email_codes::count_attempt(fixture.scope(), "flow-new", 5, now + 600).await.expect("count").is_none());
}

#[tokio::test]
async fn codes_are_invisible_to_another_tenant() {
    let fixture = Fixture::new().await;
    let now = store::now();
    email_codes::replace(fixture.scope(), code("flow-mine", "ada@example.com", now)).await.expect("store");
    assert_eq!(email_codes::open_email(fixture.other(), "flow-mine", now).await.expect("read"), None);
    assert!(email_codes::count_attempt(fixture.other(), "flow-mine", 5, now).await.expect("count").is_none());
    assert!(!email_codes::consume(fixture.other(), "flow-mine", now).await.expect("consume"));
    // The other tenant's attempt changed nothing here.
    assert!(email_codes::consume(fixture.scope(), "flow-mine", now).await.expect("consume"));
}

fn session<'a>(id: &'a str, user_id: &'a str, amr: &'a [Amr], now: i64) -> sessions::NewSession<'a> {
    sessions::NewSession {
        id,
        user_id,
        amr,
        acr: Acr::EmailCode,
        created_at: now,
        expires_at: now + 3600,
        ip: Some("192.0.2.1".into()),
        user_agent: None,
    }
}

#[tokio::test]
async fn a_session_is_ended_once_and_stays_ended() {
    let fixture = Fixture::new().await;
    let now = store::now();
    let ada = fixture.user("ada@example.com").await;
    let amr = vec![Amr::Otp];
    sessions::insert(fixture.scope(), session("s-race", &ada, &amr, now)).await.expect("insert");
    let stored = sessions::find_open(fixture.scope(), "s-race").await.expect("read").expect("open");
    assert_eq!((stored.user_id.as_str(), stored.acr, stored.amr.as_slice()), (ada.as_str(), Acr::EmailCode, amr.as_slice()));
    let racers = (0..16).map(|_| sessions::end(fixture.scope(), "s-race", None, now));
    let ended: Vec<bool> = futures_util::future::join_all(racers).await.into_iter().map(|r| r.expect("end")).collect();
    assert_eq!(ended.iter().filter(|e| **e).count(), 1, "{ended:?}");
    assert!(sessions::find_open(fixture.scope(), "s-race").await.expect("read").is_none());
    assert!(!sessions::is_live(fixture.scope(), "s-race", now, now - 60).await.expect("read"));
    // An ended session is not raised again.
    sessions::set_authentication(fixture.scope(), "s-race", &amr, Acr::Phr, now).await.expect("update");
    assert!(sessions::find_open(fixture.scope(), "s-race").await.expect("read").is_none());
}

#[tokio::test]
async fn only_the_owner_ends_a_session_and_ending_all_returns_each_id() {
    let fixture = Fixture::new().await;
    let now = store::now();
    let ada = fixture.user("ada@example.com").await;
    let bob = fixture.user("bob@example.com").await;
    let amr = vec![Amr::Otp];
    for id in ["a1", "a2", "a3"] {
        sessions::insert(fixture.scope(), session(id, &ada, &amr, now)).await.expect("insert");
    }
    sessions::insert(fixture.scope(), session("b1", &bob, &amr, now)).await.expect("insert");
    assert!(!sessions::end(fixture.scope(), "a1", Some(&bob), now).await.expect("end"), "not bob's");
    assert!(sessions::end(fixture.scope(), "a1", Some(&ada), now).await.expect("end"));
    let mut ended = sessions::end_all_for_user(fixture.scope(), &ada, now).await.expect("end all");
    ended.sort();
    assert_eq!(ended, ["a2", "a3"], "the already-ended one is not ended again");
    assert!(sessions::live_for_user(fixture.scope(), &ada, now, now - 60).await.expect("list").is_empty());
    let bobs = sessions::live_for_user(fixture.scope(), &bob, now, now - 60).await.expect("list");
    assert_eq!(bobs.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["b1"]);
}

#[tokio::test]
async fn a_session_is_live_only_before_its_expiry_and_idle_limit() {
    let fixture = Fixture::new().await;
    let now = store::now();
    let ada = fixture.user("ada@example.com").await;
    let amr = vec![Amr::Otp];
    sessions::insert(fixture.scope(), session("s-time", &ada, &amr, now)).await.expect("insert");
    assert!(sessions::is_live(fixture.scope(), "s-time", now, now - 60).await.expect("read"));
    assert!(!sessions::is_live(fixture.scope(), "s-time", now + 3600, now - 60).await.expect("read"), "absolute expiry");
    assert!(!sessions::is_live(fixture.scope(), "s-time", now, now).await.expect("read"), "not seen since");
    sessions::touch(fixture.scope(), "s-time", now + 100).await.expect("touch");
    assert!(sessions::is_live(fixture.scope(), "s-time", now + 100, now + 50).await.expect("read"));
    let raised = [Amr::Hwk, Amr::User, Amr::Mfa];
    sessions::set_authentication(fixture.scope(), "s-time", &raised, Acr::Phr, now + 100).await.expect("update");
    let stored = sessions::find_open(fixture.scope(), "s-time").await.expect("read").expect("open");
    assert_eq!((stored.acr, stored.auth_time, stored.amr.as_slice()), (Acr::Phr, now + 100, raised.as_slice()));
}

#[tokio::test]
async fn sessions_are_invisible_to_another_tenant() {
    let fixture = Fixture::new().await;
    let now = store::now();
    let ada = fixture.user("ada@example.com").await;
    let amr = vec![Amr::Otp];
    sessions::insert(fixture.scope(), session("s-mine", &ada, &amr, now)).await.expect("insert");
    assert!(sessions::find_open(fixture.other(), "s-mine").await.expect("read").is_none());
    assert!(!sessions::is_live(fixture.other(), "s-mine", now, now - 60).await.expect("read"));
    assert!(!sessions::end(fixture.other(), "s-mine", None, now).await.expect("end"));
    assert!(sessions::end_all_for_user(fixture.other(), &ada, now).await.expect("end all").is_empty());
    sessions::set_authentication(fixture.other(), "s-mine", &amr, Acr::Phr, now).await.expect("update");
    let stored = sessions::find_open(fixture.scope(), "s-mine").await.expect("read").expect("still open");
    assert_eq!(stored.acr, Acr::EmailCode, "the other tenant's update reached nothing");
}

#[tokio::test]
async fn a_recovery_code_is_used_once_however_many_connections_race() {
    let fixture = Fixture::new().await;
    let now = store::now();
    let ada = fixture.user("ada@example.com").await;
    let hashes: Vec<String> = (0..10).map(|i| format!("hash-{i}")).collect();
    recovery_codes::replace_set(fixture.scope(), &ada, hashes, now).await.expect("store");
    let racers = (0..16).map(|_| recovery_codes::use_once(fixture.scope(), &ada, "hash-3", now));
    let won: Vec<bool> = futures_util::future::join_all(racers).await.into_iter().map(|r| r.expect("use")).collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    assert_eq!(recovery_codes::count(fixture.scope(), &ada, true).await.expect("count"), 9);
    assert_eq!(recovery_codes::count(fixture.scope(), &ada, false).await.expect("count"), 10);
    assert!(!recovery_codes::use_once(fixture.other(), &ada, "hash-4", now).await.expect("use"), "another tenant's scope");
    // A new set replaces the old one entirely, used codes included.
    recovery_codes::replace_set(fixture.scope(), &ada, vec!["fresh".into()], now).await.expect("store");
    assert!(!recovery_codes::use_once(fixture.scope(), &ada, "hash-4", now).await.expect("use"));
    assert_eq!(recovery_codes::count(fixture.scope(), &ada, false).await.expect("count"), 1);
}

#[tokio::test]
async fn racing_second_factor_guesses_check_at_most_five_codes_and_one_locks() {
    use latchkey::lockout::{self, Factor, Outcome};
    use std::sync::atomic::{AtomicUsize, Ordering};

    let fixture = Fixture::new().await;
    let now = store::now();
    let ada = fixture.user("ada@example.com").await;
    let checked = AtomicUsize::new(0);
    let guesses = (0..20).map(|_| {
        lockout::guarded(fixture.scope(), &ada, Factor::Totp, 900, now, async {
            checked.fetch_add(1, Ordering::SeqCst);
            Ok(false)
        })
    });
    let outcomes: Vec<Outcome> = futures_util::future::join_all(guesses).await.into_iter().map(|r| r.expect("guess")).collect();
    assert_eq!(checked.load(Ordering::SeqCst), lockout::MAX_ATTEMPTS as usize, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| matches!(o, Outcome::JustLocked { .. })).count(), 1, "{outcomes:?}");
    // Counted per tenant: the same user id elsewhere is not locked.
    let elsewhere = lockout::guarded(fixture.other(), &ada, Factor::Totp, 900, now, async { Ok(true) }).await.expect("guess");
    assert_eq!(elsewhere, Outcome::Accepted);
    let here = lockout::guarded(fixture.scope(), &ada, Factor::Totp, 900, now, async { Ok(true) }).await.expect("guess");
    assert_eq!(here, Outcome::Locked { until: now + 900 });
}

#[tokio::test]
async fn an_authenticator_app_step_is_spent_once_and_never_an_older_one() {
    let fixture = Fixture::new().await;
    let now = store::now();
    let ada = fixture.user("ada@example.com").await;
    totp_authenticators::insert_pending(fixture.scope(), "app-1", &ada, vec![1, 2, 3], now).await.expect("insert");
    assert!(!totp_authenticators::spend_step(fixture.scope(), "app-1", 100).await.expect("spend"), "not confirmed yet");
    let confirmers = (0..8).map(|_| totp_authenticators::confirm(fixture.scope(), "app-1", 100, now));
    let confirmed: Vec<bool> = futures_util::future::join_all(confirmers).await.into_iter().map(|r| r.expect("confirm")).collect();
    assert_eq!(confirmed.iter().filter(|c| **c).count(), 1, "{confirmed:?}");
    assert!(!totp_authenticators::spend_step(fixture.scope(), "app-1", 100).await.expect("spend"), "the confirming code is spent");
    let spenders = (0..8).map(|_| totp_authenticators::spend_step(fixture.scope(), "app-1", 101));
    let spent: Vec<bool> = futures_util::future::join_all(spenders).await.into_iter().map(|r| r.expect("spend")).collect();
    assert_eq!(spent.iter().filter(|s| **s).count(), 1, "{spent:?}");
    assert!(!totp_authenticators::spend_step(fixture.scope(), "app-1", 99).await.expect("spend"), "an older step");
    assert!(!totp_authenticators::spend_step(fixture.other(), "app-1", 102).await.expect("spend"), "another tenant");
    assert!(totp_authenticators::find(fixture.other(), &ada).await.expect("find").is_none());
    let stored = totp_authenticators::find(fixture.scope(), &ada).await.expect("find").expect("stored");
    assert_eq!((stored.sealed_secret, stored.confirmed_at), (vec![1, 2, 3], Some(now)));
    assert!(!totp_authenticators::remove(fixture.other(), &ada).await.expect("remove"));
    assert!(totp_authenticators::remove(fixture.scope(), &ada).await.expect("remove"));
}

#[tokio::test]
async fn consent_is_kept_per_client_and_resource_and_per_tenant() {
    let fixture = Fixture::new().await;
    let now = store::now();
    let ada = fixture.user("ada@example.com").await;
    let scopes = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
    consents::insert(fixture.scope(), "c1", &ada, "app", "", &scopes(&["openid"]), now).await.expect("insert");
    consents::insert(fixture.scope(), "c2", &ada, "app", "https://files.example", &scopes(&["files:read"]), now + 1).await.expect("insert");
    let own = consents::find(fixture.scope(), &ada, "app", "").await.expect("find").expect("own endpoints");
    assert_eq!(own.scopes, ["openid"]);
    consents::set_scopes(fixture.scope(), &ada, "app", "", &scopes(&["openid", "email"]), now + 2).await.expect("update");
    let files = consents::find(fixture.scope(), &ada, "app", "https://files.example").await.expect("find").expect("resource");
    assert_eq!(files.scopes, ["files:read"], "another resource's approval is untouched");
    let listed: Vec<(String, String)> =
        consents::for_user(fixture.scope(), &ada).await.expect("list").into_iter().map(|c| (c.resource, c.scopes.join(" "))).collect();
    assert_eq!(listed, [("".to_owned(), "openid email".to_owned()), ("https://files.example".to_owned(), "files:read".to_owned())]);
    assert!(consents::find(fixture.other(), &ada, "app", "").await.expect("find").is_none());
    assert!(!consents::delete_for_client(fixture.other(), &ada, "app").await.expect("delete"));
    assert!(consents::delete_for_client(fixture.scope(), &ada, "app").await.expect("delete"));
    assert!(consents::for_user(fixture.scope(), &ada).await.expect("list").is_empty(), "every resource's approval goes");
}

#[tokio::test]
async fn racing_first_sign_ins_create_one_person_and_agree_on_one_passkey_handle() {
    let fixture = Fixture::new().await;
    let now = store::now();
    let ids: Vec<String> = (0..8).map(|i| format!("id-{i}")).collect();
    let creators = ids.iter().map(|id| users::find_or_insert(fixture.scope(), id, "ada@example.com", now));
    let created: Vec<String> = futures_util::future::join_all(creators).await.into_iter().map(|r| r.expect("create").id).collect();
    assert!(created.iter().all(|id| *id == created[0]), "{created:?}");
    let handles = ["h-1", "h-2", "h-3"].map(|h| users::set_passkey_handle_once(fixture.scope(), &created[0], h));
    for result in futures_util::future::join_all(handles).await {
        result.expect("set handle");
    }
    let handle = users::find(fixture.scope(), &created[0]).await.expect("find").expect("user").passkey_handle.expect("a handle");
    assert!(["h-1", "h-2", "h-3"].contains(&handle.as_str()));
    users::set_passkey_handle_once(fixture.scope(), &created[0], "h-late").await.expect("set handle");
    assert_eq!(users::find_by_passkey_handle(fixture.scope(), &handle).await.expect("find").map(|u| u.id), Some(created[0].clone()));
    // The same address in another tenant is another person.
    let elsewhere = users::find_or_insert(fixture.other(), "id-other", "ada@example.com", now).await.expect("create");
    assert_eq!(elsewhere.id, "id-other");
    assert!(users::find(fixture.other(), &created[0]).await.expect("find").is_none());
    assert!(users::find_by_passkey_handle(fixture.other(), &handle).await.expect("find").is_none());
}

#[tokio::test]
async fn a_webauthn_ceremony_is_taken_once_by_its_own_kind_before_it_expires() {
    let fixture = Fixture::new().await;
    let now = store::now();
    let ceremony = |id: &str, expires_at: i64| passkeys::NewCeremony {
        id_hash: id.to_owned(),
        kind: "authentication",
        user_id: None,
        session_id: Some("s-1"),
        state: "{}".into(),
        created_at: now,
        expires_at,
    };
    passkeys::insert_ceremony(fixture.scope(), ceremony("c-race", now + 300)).await.expect("insert");
    assert!(passkeys::take_ceremony(fixture.scope(), "c-race", "registration", now).await.expect("take").is_none(), "another kind");
    assert!(passkeys::take_ceremony(fixture.other(), "c-race", "authentication", now).await.expect("take").is_none(), "another tenant");
    let takers = (0..16).map(|_| passkeys::take_ceremony(fixture.scope(), "c-race", "authentication", now));
    let taken: Vec<_> = futures_util::future::join_all(takers).await.into_iter().map(|r| r.expect("take")).collect();
    let winners: Vec<_> = taken.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1);
    assert_eq!(winners[0].session_id.as_deref(), Some("s-1"));
    passkeys::insert_ceremony(fixture.scope(), ceremony("c-old", now + 300)).await.expect("insert");
    assert!(passkeys::take_ceremony(fixture.scope(), "c-old", "authentication", now + 300).await.expect("take").is_none(), "expired");
}

#[tokio::test]
async fn an_sso_request_is_taken_once_only_by_its_browser_before_it_expires() {
    let fixture = Fixture::new().await;
    let now = store::now();
    let request = |id: &str, tenant_id: &str, expires_at: i64| sso::RequestRow {
        id: id.to_owned(),
        tenant_id: tenant_id.to_owned(),
        connection_id: "sso_1".into(),
        binding_hash: "browser".into(),
        sealed_verifier: Some("v".into()),
        nonce_hash: Some("n".into()),
        pending_request_id: Some("req-1".into()),
        tested_by: None,
        created_at: now,
        expires_at,
        consumed_at: None,
    };
    sso::insert_request(fixture.scope(), request("r-race", &fixture.tenant_id, now + 600)).await.expect("insert");
    // Another browser (binding) or tenant gets nothing and consumes nothing.
    assert!(sso::take_request(fixture.scope(), "r-race", "other-browser", now).await.expect("take").is_none());
    assert!(sso::take_request(fixture.other(), "r-race", "browser", now).await.expect("take").is_none());
    let takers = (0..16).map(|_| sso::take_request(fixture.scope(), "r-race", "browser", now));
    let taken: Vec<_> = futures_util::future::join_all(takers).await.into_iter().map(|r| r.expect("take")).collect();
    let winners: Vec<_> = taken.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "of racing callbacks, one wins");
    assert_eq!(winners[0].pending_request_id.as_deref(), Some("req-1"));
    sso::insert_request(fixture.scope(), request("r-old", &fixture.tenant_id, now + 600)).await.expect("insert");
    assert!(sso::take_request(fixture.scope(), "r-old", "browser", now + 600).await.expect("take").is_none(), "expired");
}

#[tokio::test]
async fn an_sso_identity_and_an_account_are_linked_once() {
    let fixture = Fixture::new().await;
    let (ana, bob) = (fixture.user("ana@acme.test").await, fixture.user("bob@acme.test").await);
    let identity = |id: &str, subject: &str, user_id: &str| sso::IdentityRow {
        id: id.to_owned(),
        tenant_id: String::new(),
        connection_id: "sso_1".into(),
        subject: subject.to_owned(),
        user_id: user_id.to_owned(),
        created_at: 0,
        last_used_at: 0,
    };
    // Racing first sign-ins of one subject: one link.
    let linkers = (0..8).map(|i| sso::insert_identity(fixture.scope(), identity(&format!("i{i}"), "entra:t:o1", &ana)));
    let linked = futures_util::future::join_all(linkers).await.into_iter().map(|r| r.expect("link")).filter(|won| *won).count();
    assert_eq!(linked, 1);
    // One way in per account: ana cannot be linked to a second subject; another subject links bob.
    assert!(!sso::insert_identity(fixture.scope(), identity("i-second", "entra:t:o2", &ana)).await.expect("link"));
    assert!(sso::insert_identity(fixture.scope(), identity("i-bob", "entra:t:o2", &bob)).await.expect("link"));
    assert_eq!(sso::identity(fixture.scope(), "sso_1", "entra:t:o1").await.expect("find").map(|r| r.user_id), Some(ana.clone()));
    assert!(sso::identity(fixture.other(), "sso_1", "entra:t:o1").await.expect("find").is_none(), "another tenant");
}

#[tokio::test]
async fn a_saml_assertion_is_accepted_once_however_many_nodes_race() {
    let fixture = Fixture::new().await;
    let record = |id: &str| sso::AssertionRow {
        id: id.to_owned(),
        tenant_id: String::new(),
        connection_id: "sso_1".into(),
        expires_at: store::now() + 300,
    };
    let racers = (0..16).map(|_| sso::record_assertion(fixture.scope(), record("a-race")));
    let won = futures_util::future::join_all(racers).await.into_iter().map(|r| r.expect("record")).filter(|won| *won).count();
    assert_eq!(won, 1, "of racing posts of one assertion, one is accepted");
    assert!(!sso::record_assertion(fixture.scope(), record("a-race")).await.expect("record"), "a later replay");
    assert!(sso::record_assertion(fixture.scope(), record("a-other")).await.expect("record"));
}

fn directory_user(name: &str) -> scim::UserWrite {
    scim::UserWrite {
        user_name: name.to_owned(),
        user_name_key: name.to_lowercase(),
        external_id: None,
        display_name_key: None,
        active: true,
        document: "{}".into(),
        emails: vec![name.to_lowercase()],
    }
}

/// Racing directory writes: one userName per directory whatever the case; one directory user per
/// account, the losers stored without it; members added concurrently all kept; a write at a stale
/// version changes nothing.
#[tokio::test]
async fn directory_users_are_unique_by_name_and_account_and_members_are_never_lost() {
    let fixture = Fixture::new().await;
    let scope = fixture.scope();
    let org = organization::create(scope, "acme", "Acme").await.expect("organization");
    let racers = (0..8).map(|n| {
        let link = scim::AccountLink { id: "acct-1", new_email: Some("ada@acme.test"), profile: None, membership: Some(("mem-1", org.id.as_str())) };
        let id = format!("su-{n}");
        async move { scim::insert_user(scope, "dir-1", &id, directory_user(if n % 2 == 0 { "Ada" } else { "ADA" }), store::now(), Some(link)).await }
    });
    let outcomes: Vec<_> = futures_util::future::join_all(racers).await.into_iter().map(|r| r.expect("insert")).collect();
    let stored: Vec<_> = outcomes.iter().filter(|(w, _)| *w == scim::Written::Done(1)).collect();
    assert_eq!(stored.len(), 1, "one userName per directory, any case: {outcomes:?}");
    assert_eq!(stored[0].1.as_deref(), Some("acct-1"));
    // Two directory users of different names racing for one account: one links, the other is stored alone.
    let racers = ["Bea", "Bee"].map(|name| {
        let link = scim::AccountLink { id: "acct-2", new_email: Some("bea@acme.test"), profile: None, membership: None };
        async move { scim::insert_user(scope, "dir-1", &format!("su-{name}"), directory_user(name), store::now(), Some(link)).await.expect("insert") }
    });
    let outcomes = futures_util::future::join_all(racers).await;
    assert!(outcomes.iter().all(|(w, _)| *w == scim::Written::Done(1)), "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|(_, account)| account.is_some()).count(), 1, "{outcomes:?}");
    assert_eq!(organizations::member(scope, "acct-1").await.expect("member").map(|m| m.organization_id), Some(org.id.clone()));

    // Members added by racing writers are all kept.
    let group = scim::GroupWrite { display_name: "All".into(), display_name_key: "all".into(), external_id: None, document: "{}".into() };
    scim::insert_group(scope, "dir-1", "g-1", group, &[], store::now()).await.expect("group");
    let adds = (0..16).map(|n| async move {
        let changes = scim::MemberChanges { add: vec![format!("m-{n}")], ..Default::default() };
        scim::update_group(scope, "dir-1", "g-1", None, &changes, store::now()).await.expect("add")
    });
    futures_util::future::join_all(adds).await;
    assert_eq!(scim::members_of(scope, &["g-1"]).await.expect("members").len(), 16);
    let version = scim::find_group(scope, "dir-1", "g-1").await.expect("group").expect("there").version;
    assert_eq!(version, 17, "every change bumped the version once");
    let stale = scim::GroupWrite { display_name: "Renamed".into(), display_name_key: "renamed".into(), external_id: None, document: "{}".into() };
    assert_eq!(scim::update_group(scope, "dir-1", "g-1", Some((1, stale)), &scim::MemberChanges::default(), store::now()).await.expect("write"), scim::Written::Stale);
    // Another tenant sees none of it.
    assert!(scim::find_group(fixture.other(), "dir-1", "g-1").await.expect("read").is_none());
}

#[tokio::test]
async fn an_authorization_code_is_consumed_once_and_remembers_the_family_it_started() {
    let fixture = Fixture::new().await;
    let now = store::now();
    let ada = fixture.user("ada@example.com").await;
    let row = authorizations::CodeRow {
        code_hash: "code-hash".into(),
        tenant_id: fixture.tenant_id.clone(),
        client_id: "app".into(),
        user_id: ada.clone(),
        session_id: "s-1".into(),
        redirect_uri: "https://app.example/cb".into(),
        scope: "openid".into(),
        nonce: None,
        code_challenge: "x".repeat(43),
        auth_time: now,
        amr: "[\"otp\"]".into(),
        acr: "phr".into(),
        created_at: now,
        expires_at: now + 60,
        consumed_at: None,
        family_id: None,
        resource: None,
        id_token_claims: None,
    };
    authorizations::insert_code(fixture.scope(), row).await.expect("insert");
    assert!(authorizations::find_code(fixture.other(), "code-hash").await.expect("find").is_none(), "another tenant");
    assert!(!authorizations::consume_code(fixture.other(), "code-hash", "fam-x", now).await.expect("consume"));
    let families: Vec<String> = (0..16).map(|i| format!("fam-{i}")).collect();
    let consumers = families.iter().map(|family| authorizations::consume_code(fixture.scope(), "code-hash", family, now));
    let won: Vec<bool> = futures_util::future::join_all(consumers).await.into_iter().map(|r| r.expect("consume")).collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let winner = &families[won.iter().position(|w| *w).expect("a winner")];
    let stored = authorizations::find_code(fixture.scope(), "code-hash").await.expect("find").expect("kept");
    assert_eq!((stored.consumed_at, stored.family_id.as_deref()), (Some(now), Some(winner.as_str())));
}

#[tokio::test]
async fn a_pending_authorization_request_is_found_until_it_expires_and_only_in_its_tenant() {
    let fixture = Fixture::new().await;
    let now = store::now();
    authorizations::insert_request(fixture.scope(), "req-1", "app", "{}".into(), now, now + 600).await.expect("insert");
    let found = authorizations::find_request(fixture.scope(), "req-1", now).await.expect("find").expect("pending");
    assert_eq!((found.params.as_str(), found.created_at), ("{}", now));
    assert!(authorizations::find_request(fixture.scope(), "req-1", now + 600).await.expect("find").is_none(), "expired");
    assert!(authorizations::find_request(fixture.other(), "req-1", now).await.expect("find").is_none(), "another tenant");
    authorizations::delete_request(fixture.other(), "req-1").await.expect("delete");
    assert!(authorizations::find_request(fixture.scope(), "req-1", now).await.expect("find").is_some(), "untouched by another tenant");
    authorizations::delete_request(fixture.scope(), "req-1").await.expect("delete");
    assert!(authorizations::find_request(fixture.scope(), "req-1", now).await.expect("find").is_none());
}

#[tokio::test]
async fn resources_are_found_by_their_exact_spelling_and_only_in_their_tenant() {
    let fixture = Fixture::new().await;
    let now = store::now();
    let files = latchkey::oauth::resource::Resource {
        uri: "https://files.example/mcp".into(),
        name: "Files".into(),
        scopes: vec!["files:read".into(), "files:write".into()],
        step_up: true,
        accepts_agents: false,
        default_scopes: Some(vec!["files:read".into()]),
    };
    resources::insert(fixture.scope(), "r-1", &files, now).await.expect("insert");
    let found = resources::find_exact(fixture.scope(), "https://files.example/mcp").await.expect("find").expect("registered");
    assert_eq!((found.scopes, found.default_scopes, found.step_up), (files.scopes.clone(), files.default_scopes.clone(), true));
    assert!(resources::find_exact(fixture.scope(), "https://FILES.example/mcp").await.expect("find").is_none(), "exact only");
    assert!(resources::find_exact(fixture.other(), "https://files.example/mcp").await.expect("find").is_none());
    assert!(resources::all(fixture.other()).await.expect("list").is_empty());
    assert!(resources::insert(fixture.scope(), "r-2", &files, now).await.is_err(), "one row per URI in a tenant");
    resources::insert(fixture.other(), "r-3", &files, now).await.expect("the same URI in another tenant");
    assert!(!resources::delete(fixture.other(), "https://files.example/mcp/").await.expect("delete"));
    assert!(resources::delete(fixture.other(), "https://files.example/mcp").await.expect("delete"));
    assert_eq!(resources::all(fixture.scope()).await.expect("list").len(), 1, "untouched by the other tenant's delete");
}

#[tokio::test]
async fn a_person_is_in_one_organization_of_a_tenant_and_the_token_join_finds_it() {
    let fixture = Fixture::new().await;
    let now = store::now();
    let ada = fixture.user("ada@example.com").await;
    let acme = organizations::insert(fixture.scope(), "org-1", "acme", "Acme", now).await.expect("insert");
    let initech = organizations::insert(fixture.scope(), "org-2", "initech", "Initech", now).await.expect("insert");
    assert!(organizations::insert(fixture.scope(), "org-3", "acme", "Acme again", now).await.is_err(), "one slug per tenant");
    let roles = vec!["admin".to_owned()];
    organizations::insert_member(fixture.scope(), "m-1", &acme.id, &ada, &roles, now).await.expect("member");
    assert!(organizations::insert_member(fixture.scope(), "m-2", &initech.id, &ada, &roles, now).await.is_err(), "one organization per person");
    let membership = organizations::membership_of(fixture.scope(), &ada).await.expect("read").expect("a member");
    assert_eq!((membership.organization.as_str(), membership.roles.as_slice()), ("acme", roles.as_slice()));
    organizations::set_roles(fixture.scope(), &ada, &["viewer".to_owned()]).await.expect("roles");
    assert_eq!(organizations::membership_of(fixture.scope(), &ada).await.expect("read").expect("member").roles, ["viewer"]);
    assert!(organizations::membership_of(fixture.other(), &ada).await.expect("read").is_none(), "another tenant");
    assert!(organizations::find_by_slug(fixture.other(), "acme").await.expect("find").is_none());
    assert!(!organizations::delete_member(fixture.scope(), &initech.id, &ada).await.expect("delete"), "not in that one");
    assert!(organizations::delete_member(fixture.scope(), &acme.id, &ada).await.expect("delete"));
    assert!(organizations::membership_of(fixture.scope(), &ada).await.expect("read").is_none());
}

#[tokio::test]
async fn a_tenant_slug_is_taken_once_and_settings_change_only_the_named_tenant() {
    let fixture = Fixture::new().await;
    let acme = tenants::find_by_slug(&fixture.db, "acme").await.expect("find").expect("created by the fixture");
    let copy = tenants::TenantRow { id: "another-id".into(), ..acme.clone() };
    assert!(tenants::insert(&fixture.db, copy).await.is_err(), "one tenant per slug");
    assert!(tenants::set(&fixture.db, "acme", tenants::Setting::RequireTotp(true)).await.expect("set"));
    assert!(!tenants::set(&fixture.db, "nobody", tenants::Setting::RequireTotp(true)).await.expect("set"), "no such tenant");
    let after: Vec<(String, bool)> = tenants::all(&fixture.db).await.expect("list").into_iter().map(|t| (t.slug, t.require_totp)).collect();
    assert_eq!(after, [("acme".to_owned(), true), ("globex".to_owned(), false)]);
}

#[tokio::test]
async fn a_retired_signing_key_stays_published_for_its_window_and_then_goes() {
    let fixture = Fixture::new().await;
    let now = store::now();
    // The fixture's tenants were created with their first keys (one per algorithm).
    let first: Vec<String> = signing_keys::published(fixture.scope(), now).await.expect("keys").into_iter().map(|k| k.kid).collect();
    assert_eq!(first.len(), 2, "{first:?}");
    let new = signing_keys::NewKey { kid: "kid-new", alg: "ES256", sealed_private_key: vec![1], public_jwk: "{}".into(), created_at: now + 1 };
    signing_keys::retire_current(fixture.scope(), now, now + 100).await.expect("retire");
    signing_keys::insert(fixture.scope(), new).await.expect("insert");
    let during: Vec<_> = signing_keys::published(fixture.scope(), now + 50).await.expect("keys");
    assert_eq!(during.len(), 3, "the retired keys are still published");
    assert_eq!(during[0].kid, "kid-new", "newest first");
    assert!(during[1..].iter().all(|k| k.retired_at == Some(now) && k.publish_until == Some(now + 100)));
    let after: Vec<String> = signing_keys::published(fixture.scope(), now + 100).await.expect("keys").into_iter().map(|k| k.kid).collect();
    assert_eq!(after, ["kid-new"]);
    // The other tenant's keys were not touched.
    let other = signing_keys::published(fixture.other(), now + 100).await.expect("keys");
    assert_eq!(other.len(), 2);
    assert!(other.iter().all(|k| k.retired_at.is_none()));
}

fn family<'a>(client_id: &'a str, user_id: &'a str, session_id: Option<&'a str>) -> refresh_families::NewFamily<'a> {
    refresh_families::NewFamily {
        client_id,
        user_id,
        session_id,
        scopes: &[],
        auth_time: 0,
        amr: &[],
        acr: Acr::Phr,
        resource: None,
    }
}

fn refresh_token(hash: &str, family_id: &str, now: i64) -> refresh_families::NewRefreshToken {
    refresh_families::NewRefreshToken { token_hash: hash.into(), family_id: family_id.into(), prefix: "lk_rt_ab".into(), created_at: now }
}

fn write(tenant_id: &str, spends: Option<&str>, issues: Option<refresh_families::NewRefreshToken>) -> refresh_families::TokenWrite {
    refresh_families::TokenWrite { tenant_id: tenant_id.into(), spends: spends.map(str::to_owned), issues }
}

#[tokio::test]
async fn a_refresh_token_is_spent_once_however_many_batches_race_and_only_the_winner_issues() {
    let fixture = Fixture::new().await;
    let now = store::now();
    let ada = fixture.user("ada@example.com").await;
    refresh_families::insert(fixture.scope(), "fam-1", family("c", &ada, None), now, now + 3600).await.expect("family");
    let stored = refresh_families::write_batch(&fixture.db, vec![write(&fixture.tenant_id, None, Some(refresh_token("h0", "fam-1", now)))], now)
        .await
        .expect("issue");
    assert_eq!(stored, [true]);
    let racers = (0..8).map(|n| {
        let next = refresh_token(&format!("h1-{n}"), "fam-1", now);
        refresh_families::write_batch(&fixture.db, vec![write(&fixture.tenant_id, Some("h0"), Some(next))], now)
    });
    let won: Vec<bool> = futures_util::future::join_all(racers).await.into_iter().map(|r| r.expect("rotate")[0]).collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    for (n, won) in won.iter().enumerate() {
        let issued = refresh_families::find_token(fixture.scope(), &format!("h1-{n}")).await.expect("read");
        assert_eq!(issued.is_some(), *won, "only the winner's new token is stored");
    }
    let spent = refresh_families::find_token(fixture.scope(), "h0").await.expect("read").expect("kept for reuse detection");
    assert!(spent.rotated);
    assert_eq!((spent.family.id.as_str(), spent.user.id.as_str()), ("fam-1", ada.as_str()));
    assert!(spent.membership.is_none());

    // One batch presenting the same token twice: the first write wins.
    let winner = won.iter().position(|w| *w).expect("a winner");
    let live = format!("h1-{winner}");
    let twice = vec![
        write(&fixture.tenant_id, Some(&live), Some(refresh_token("h2-a", "fam-1", now))),
        write(&fixture.tenant_id, Some(&live), Some(refresh_token("h2-b", "fam-1", now))),
    ];
    assert_eq!(refresh_families::write_batch(&fixture.db, twice, now).await.expect("rotate"), [true, false]);

    // Another tenant neither finds nor spends it.
    assert!(refresh_families::find_token(fixture.other(), "h2-a").await.expect("read").is_none());
    let foreign = vec![write(&fixture.other_tenant_id, Some("h2-a"), None)];
    assert_eq!(refresh_families::write_batch(&fixture.db, foreign, now).await.expect("spend"), [false]);
    assert!(!refresh_families::find_token(fixture.scope(), "h2-a").await.expect("read").expect("stored").rotated);
}

#[tokio::test]
async fn a_family_is_revoked_once_and_revoking_what_someone_holds_counts_each_family_once() {
    let fixture = Fixture::new().await;
    let now = store::now();
    let ada = fixture.user("ada@example.com").await;
    let bob = fixture.user("bob@example.com").await;
    refresh_families::insert(fixture.scope(), "ada-c1", family("c1", &ada, Some("s1")), now, now + 3600).await.expect("family");
    refresh_families::insert(fixture.scope(), "ada-c2", family("c2", &ada, None), now, now + 3600).await.expect("family");
    refresh_families::insert(fixture.scope(), "bob-c1", family("c1", &bob, None), now, now + 3600).await.expect("family");
    refresh_families::insert(fixture.scope(), "bob-old", family("c2", &bob, None), now - 7200, now - 1).await.expect("family");
    let counts = refresh_families::live_count_by_client(fixture.scope(), &ada, now).await.expect("count");
    assert_eq!(counts.into_iter().collect::<Vec<_>>(), [("c1".to_owned(), 1), ("c2".to_owned(), 1)]);
    let bob_counts = refresh_families::live_count_by_client(fixture.scope(), &bob, now).await.expect("count");
    assert_eq!(bob_counts.into_iter().collect::<Vec<_>>(), [("c1".to_owned(), 1)], "past its absolute lifetime");

    let holding = refresh_families::Holding::User { user_id: &ada, client_id: None };
    let racers = (0..6).map(|_| refresh_families::revoke_held(fixture.scope(), holding, "signed_out_everywhere", now));
    let revoked: usize = futures_util::future::join_all(racers).await.into_iter().map(|r| r.expect("revoke")).sum();
    assert_eq!(revoked, 2, "each of ada's families is counted by one caller");
    assert!(refresh_families::find(fixture.scope(), "ada-c1").await.expect("read").expect("kept").revoked);
    assert!(refresh_families::live_count_by_client(fixture.scope(), &ada, now).await.expect("count").is_empty());
    assert!(!refresh_families::find(fixture.scope(), "bob-c1").await.expect("read").expect("kept").revoked, "bob's untouched");

    // Another tenant can revoke nothing here.
    let foreign = refresh_families::Holding::Client("c1");
    assert_eq!(refresh_families::revoke_held(fixture.other(), foreign, "client_deleted", now).await.expect("revoke"), 0);
    assert!(!refresh_families::revoke(fixture.other(), "bob-c1", "x", now).await.expect("revoke"));
    assert!(refresh_families::find(fixture.other(), "bob-c1").await.expect("read").is_none());
    assert_eq!(refresh_families::revoke_held(fixture.scope(), foreign, "client_deleted", now).await.expect("revoke"), 1);
    assert!(!refresh_families::revoke(fixture.scope(), "bob-c1", "again", now).await.expect("revoke"), "revoked once");
}

#[tokio::test]
async fn an_access_token_revocation_is_recorded_once_and_dead_families_are_named() {
    let fixture = Fixture::new().await;
    let now = store::now();
    let ada = fixture.user("ada@example.com").await;
    refresh_families::insert(fixture.scope(), "live", family("c", &ada, None), now, now + 3600).await.expect("family");
    refresh_families::insert(fixture.scope(), "dead", family("c", &ada, None), now, now + 3600).await.expect("family");
    assert!(refresh_families::revoke(fixture.scope(), "dead", "test", now).await.expect("revoke"));
    // Concurrent revocations of a token that has no row yet: every one reports success.
    let racers = (0..8).map(|_| access_tokens::revoke(fixture.scope(), "jti-1", "c", now + 900, now));
    for result in futures_util::future::join_all(racers).await {
        result.expect("a concurrent revocation is a success");
    }
    let found = access_tokens::revoked_among(
        fixture.scope(),
        ["jti-1", "jti-unknown"].into(),
        ["live", "dead", "never-existed"].into(),
    )
    .await
    .expect("read");
    assert_eq!(found.jtis.into_iter().collect::<Vec<_>>(), ["jti-1"]);
    let mut dead: Vec<String> = found.dead_families.into_iter().collect();
    dead.sort();
    assert_eq!(dead, ["dead", "never-existed"], "a family nothing knows counts as dead");
    let elsewhere = access_tokens::revoked_among(fixture.other(), ["jti-1"].into(), ["live"].into()).await.expect("read");
    assert!(elsewhere.jtis.is_empty(), "another tenant's revocation is not this tenant's");
    assert_eq!(elsewhere.dead_families.into_iter().collect::<Vec<_>>(), ["live"], "nor is its family");
}

#[tokio::test]
async fn a_queued_message_is_claimed_by_one_worker_until_its_lease_runs_out() {
    let fixture = Fixture::new().await;
    let now = store::now();
    mail_outbox::insert(fixture.scope(), "mail-1", vec![1, 2, 3], now, now + 3600).await.expect("enqueue");
    assert!(mail_outbox::due(fixture.other(), now, 20).await.expect("due").is_empty(), "another tenant's queue");
    let racers = (0..8).map(|_| mail_outbox::claim(fixture.scope(), "mail-1", now, now + 60));
    let won: Vec<bool> = futures_util::future::join_all(racers).await.into_iter().map(|r| r.expect("claim")).collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    assert!(mail_outbox::due(fixture.scope(), now + 60, 20).await.expect("due").is_empty(), "leased");
    let again = mail_outbox::due(fixture.scope(), now + 61, 20).await.expect("due");
    assert_eq!(again.iter().map(|m| (m.id.as_str(), m.attempts, m.sealed.as_slice())).collect::<Vec<_>>(), [("mail-1", 1, &[1u8, 2, 3][..])]);
    mail_outbox::retry_at(fixture.scope(), "mail-1", now + 300, "smtp said no").await.expect("retry");
    assert!(mail_outbox::due(fixture.scope(), now + 299, 20).await.expect("due").is_empty(), "backing off");
    assert!(mail_outbox::claim(fixture.scope(), "mail-1", now + 300, now + 360).await.expect("claim"));
    mail_outbox::give_up(fixture.scope(), "mail-1", "bounced", now + 300).await.expect("give up");
    assert!(mail_outbox::due(fixture.scope(), now + 100_000, 20).await.expect("due").is_empty(), "never again");
    assert!(!mail_outbox::claim(fixture.scope(), "mail-1", now + 100_000, now + 100_060).await.expect("claim"));
}

#[tokio::test]
async fn racing_agent_token_creators_never_hold_more_than_three_and_disabling_revokes_them() {
    let fixture = Fixture::new().await;
    let org = organization::create(fixture.scope(), "acme-corp", "Acme Corp").await.expect("organization");
    let scopes = vec!["tools:call".to_owned()];
    let (account, _secret) = service_account::create(fixture.scope(), &org, "ci-bot", &scopes, &[]).await.expect("account");
    let names: Vec<String> = (0..8).map(|n| format!("t{n}")).collect();
    let racers = names.iter().map(|name| service_account::create_agent_token(fixture.scope(), &account, name, None, 3600));
    let results = futures_util::future::join_all(racers).await;
    let created: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(created.len(), service_account::MAX_ACTIVE_AGENT_TOKENS, "{:?}", results.iter().map(|r| r.is_ok()).collect::<Vec<_>>());
    assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| matches!(e, service_account::ServiceAccountError::TooManyTokens)));
    let mut slots = service_accounts::taken_slots(fixture.scope(), &account.id).await.expect("slots");
    slots.sort_unstable();
    assert_eq!(slots, [1, 2, 3]);
    assert!(service_accounts::taken_slots(fixture.other(), &account.id).await.expect("slots").is_empty());

    let (first, token) = created[0];
    let now = store::now();
    let hash = latchkey::crypto::sha256_hex(token.expose());
    assert_eq!(service_accounts::find_live_token(fixture.scope(), &hash, now).await.expect("find").map(|t| t.id), Some(first.id.clone()));
    assert!(service_accounts::find_live_token(fixture.other(), &hash, now).await.expect("find").is_none());
    assert!(service_accounts::revoke_token(fixture.scope(), &account.id, &first.id, now).await.expect("revoke"));
    assert!(!service_accounts::revoke_token(fixture.scope(), &account.id, &first.id, now).await.expect("revoke"), "once");
    assert!(service_accounts::find_live_token(fixture.scope(), &hash, now).await.expect("find").is_none());
    service_account::create_agent_token(fixture.scope(), &account, "replacement", None, 3600).await.expect("a slot came free");

    assert_eq!(service_accounts::disable(fixture.other(), &account.id, now).await.expect("disable"), None, "not that tenant's");
    assert_eq!(service_accounts::disable(fixture.scope(), &account.id, now).await.expect("disable"), Some(3));
    assert_eq!(service_accounts::disable(fixture.scope(), &account.id, now).await.expect("disable"), None, "already disabled");
    assert!(service_accounts::taken_slots(fixture.scope(), &account.id).await.expect("slots").is_empty());
}

#[tokio::test]
async fn an_initial_access_token_is_valid_until_it_expires_and_only_in_its_tenant() {
    let fixture = Fixture::new().await;
    let now = store::now();
    initial_access_tokens::insert(fixture.scope(), "iat-hash".into(), "lk_iat_ab".into(), now, now + 60).await.expect("insert");
    assert!(initial_access_tokens::is_valid(fixture.scope(), "iat-hash", now + 59).await.expect("read"));
    assert!(!initial_access_tokens::is_valid(fixture.scope(), "iat-hash", now + 60).await.expect("read"), "expired");
    assert!(!initial_access_tokens::is_valid(fixture.other(), "iat-hash", now).await.expect("read"), "another tenant");
}

#[tokio::test]
async fn audit_retention_forgets_only_the_named_tenants_old_events() {
    let fixture = Fixture::new().await;
    let event = |tenant_id: Option<&str>, occurred_at: i64| audit_events::NewEvent {
        tenant_id: tenant_id.map(str::to_owned),
        occurred_at,
        actor: "operator".into(),
        action: "test".into(),
        target: None,
        outcome: "success",
        ip: None,
        user_agent: None,
        details: None,
    };
    let (acme, globex) = (Some(fixture.tenant_id.as_str()), Some(fixture.other_tenant_id.as_str()));
    let events = (0..5).map(|n| event(acme, 100 + n)).chain([event(acme, 500), event(globex, 100), event(None, 100)]).collect();
    audit_events::insert_many(&fixture.db, events).await.expect("insert");
    let before = audit_events::recent(&fixture.db, 100).await.expect("read").len();
    // Batches of two: the loop must go on until a short batch.
    assert_eq!(audit_events::forget_before(&fixture.db, acme, 200, 2).await.expect("forget"), 5);
    let left: Vec<(Option<String>, i64)> =
        audit_events::recent(&fixture.db, 100).await.expect("read").into_iter().map(|e| (e.tenant_id, e.occurred_at)).collect();
    assert_eq!(left.len(), before - 5);
    assert!(left.contains(&(Some(fixture.tenant_id.clone()), 500)));
    assert!(left.contains(&(Some(fixture.other_tenant_id.clone()), 100)), "another tenant's old event stays");
    assert!(left.contains(&(None, 100)), "an operator event stays");
    assert_eq!(audit_events::forget_before(&fixture.db, None, 200, 2).await.expect("forget"), 1);
}

fn approval_row(id: &str, key: &str, user_id: &str, now: i64) -> approvals::ApprovalRow {
    approvals::ApprovalRow {
        id: id.to_owned(),
        tenant_id: String::new(),
        client_id: "gate".into(),
        user_id: user_id.to_owned(),
        open_key: Some(key.to_owned()),
        scope: "openid".into(),
        resource: None,
        binding_message: None,
        authorization_details: "[]".into(),
        status: approvals::PENDING.into(),
        created_at: now,
        expires_at: now + 300,
        decided_at: None,
        auth_time: None,
        amr: None,
        session_id: None,
        redeemed_at: None,
        handles: 0,
    }
}

fn handle(id: &str, now: i64) -> approvals::CibaRequestRow {
    approvals::CibaRequestRow {
        id: id.to_owned(),
        tenant_id: String::new(),
        approval_id: String::new(),
        client_id: "gate".into(),
        poll_interval: 5,
        last_polled_at: None,
        created_at: now,
        expires_at: 0,
    }
}

/// Nodes opening the same approval at once make one (the others join it); it is answered once, by
/// its own person only; an approved one is redeemed once however many handles race; another tenant
/// sees none of it.
#[tokio::test]
async fn an_approval_is_opened_once_answered_once_and_redeemed_once() {
    use approvals::{Answer, Opened, Poll};
    let fixture = Fixture::new().await;
    let now = store::now();
    let ada = fixture.user("ada-approvals@example.com").await;
    let caps = approvals::Caps { per_client: 100, per_user: 100 };
    let openers = (0..8).map(|i| {
        let caps = &caps;
        let fixture = &fixture;
        let ada = ada.clone();
        async move {
            approvals::open_or_join(fixture.scope(), approval_row(&format!("apr_{i}"), "same-key", &ada, now), handle(&format!("h{i}"), now), caps, now).await
        }
    });
    let opened = futures_util::future::join_all(openers).await;
    let new: Vec<String> = opened.iter().filter_map(|o| match o.as_ref().expect("open") {
        Opened::New(row) => Some(row.id.clone()),
        _ => None,
    }).collect();
    assert_eq!(new.len(), 1, "one approval for one key");
    assert!(opened.iter().all(|o| matches!(o.as_ref().expect("open"), Opened::New(_) | Opened::Joined(_))));
    let id = new[0].clone();
    assert!(approvals::find(fixture.other(), &id).await.expect("read").is_none(), "invisible to another tenant");

    let approve = || Answer::Approve { auth_time: now, amr: "[]".into(), session_id: "s" };
    assert!(!approvals::answer(fixture.scope(), &id, "someone-else", approve(), now).await.expect("answer"), "only its person");
    assert!(approvals::answer(fixture.scope(), &id, &ada, approve(), now).await.expect("answer"));
    assert!(!approvals::answer(fixture.scope(), &id, &ada, Answer::Deny, now).await.expect("answer"), "answered once");

    let handles: Vec<String> = (0..8).map(|i| format!("h{i}")).collect();
    let polls = handles.iter().map(|h| approvals::poll(fixture.scope(), h, "gate", now));
    let results = futures_util::future::join_all(polls).await;
    let redeemed = results.iter().filter(|r| matches!(r.as_ref().expect("poll"), Poll::Approved(_))).count();
    assert_eq!(redeemed, 1, "{results:?}");
    assert!(results.iter().all(|r| matches!(r.as_ref().expect("poll"), Poll::Approved(_) | Poll::Redeemed)));
    assert!(matches!(approvals::poll(fixture.scope(), "h0", "another-client", now).await.expect("poll"), Poll::Unknown));
    // Redeemed, the key is free: the same request opens a new approval.
    let again = approvals::open_or_join(fixture.scope(), approval_row("apr_again", "same-key", &ada, now), handle("h-again", now), &caps, now).await;
    assert!(matches!(again.expect("open"), Opened::New(_)));
}

/// A device request is answered once while pending; an allowed one is redeemed once however many
/// polls race; another client, or another tenant, finds nothing.
#[tokio::test]
async fn a_device_request_is_answered_once_and_redeemed_once() {
    use device_codes::{Answer, Poll};
    let fixture = Fixture::new().await;
    let now = store::now();
    let row = device_codes::DeviceRow {
        id: "device-hash".into(),
        tenant_id: String::new(),
        public_id: "dev_1".into(),
        user_code_hash: "user-code-hash".into(),
        client_id: "cli".into(),
        scope: "openid".into(),
        resource: None,
        status: device_codes::PENDING.into(),
        user_id: None,
        session_id: None,
        auth_time: None,
        amr: None,
        acr: None,
        poll_interval: 5,
        last_polled_at: None,
        created_at: now,
        expires_at: now + 600,
        decided_at: None,
        redeemed_at: None,
    };
    assert!(device_codes::insert(fixture.scope(), row.clone()).await.expect("insert"));
    assert!(!device_codes::insert(fixture.scope(), device_codes::DeviceRow { id: "other".into(), public_id: "dev_2".into(), ..row }).await.expect("insert"), "one request per user code");
    assert!(device_codes::pending_by_user_code(fixture.other(), "user-code-hash", now).await.expect("read").is_none());
    assert!(matches!(device_codes::poll(fixture.scope(), "device-hash", "cli", now).await.expect("poll"), Poll::Pending));
    assert!(matches!(device_codes::poll(fixture.scope(), "device-hash", "cli", now).await.expect("poll"), Poll::SlowDown));
    let allow = || Answer::Approve { user_id: "u", session_id: "s", auth_time: now, amr: "[]".into(), acr: "urn:latchkey:acr:mfa" };
    let answers = (0..4).map(|_| device_codes::answer(fixture.scope(), "dev_1", allow(), now));
    let recorded = futures_util::future::join_all(answers).await.into_iter().filter(|r| *r.as_ref().expect("answer")).count();
    assert_eq!(recorded, 1, "answered once");
    assert!(!device_codes::answer(fixture.scope(), "dev_1", Answer::Deny, now).await.expect("answer"));
    let polls = (0..8).map(|_| device_codes::poll(fixture.scope(), "device-hash", "cli", now));
    let results = futures_util::future::join_all(polls).await;
    assert_eq!(results.iter().filter(|r| matches!(r.as_ref().expect("poll"), Poll::Approved(_))).count(), 1, "{results:?}");
    assert!(results.iter().all(|r| matches!(r.as_ref().expect("poll"), Poll::Approved(_) | Poll::Redeemed)));
    assert!(matches!(device_codes::poll(fixture.scope(), "device-hash", "other-client", now).await.expect("poll"), Poll::Unknown));
    assert!(matches!(device_codes::poll(fixture.other(), "device-hash", "cli", now).await.expect("poll"), Poll::Unknown));
}

/// Token status list entries: families made at once on racing connections each get an entry of
/// their own — the counter is incremented and read back in one statement, the tenant's first entry
/// included —; another tenant's list counts on its own; the set entries are the revoked families'.
#[tokio::test]
async fn status_list_entries_are_handed_out_once_however_many_connections_race() {
    let fixture = Fixture::new().await;
    let racers = (0..16).map(|_| status_lists::allocate(fixture.scope()));
    let mut handed: Vec<u64> = futures_util::future::join_all(racers).await.into_iter().map(|r| r.expect("allocate")).collect();
    handed.sort_unstable();
    assert_eq!(handed, (0..16).collect::<Vec<u64>>(), "each entry once");
    assert_eq!(status_lists::allocate(fixture.other()).await.expect("other tenant"), 0, "another tenant's list counts on its own");

    let ada = fixture.user("ada@example.com").await;
    let now = store::now();
    let kept = refresh_families::insert(fixture.scope(), "kept", family("c", &ada, None), now, now + 3600).await.expect("family");
    let revoked = refresh_families::insert(fixture.scope(), "revoked", family("c", &ada, None), now, now + 3600).await.expect("family");
    assert_eq!((kept, revoked), (16, 17), "a family takes the next entry");
    assert!(refresh_families::revoke(fixture.scope(), "revoked", "test", now).await.expect("revoke"));
    assert_eq!(status_lists::entries(fixture.scope()).await.expect("entries"), (18, vec![17]));
    assert_eq!(status_lists::entries(fixture.other()).await.expect("entries"), (1, vec![]), "nothing of the other tenant's");
}
