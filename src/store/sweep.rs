//! Deleting expired rows, tenant by tenant, in batches of [`BATCH`] rows (each its own short
//! statement), and the lease that lets one node of several run a job. What counts as expired is the
//! domain's (`crate::sweep::cutoffs`); this module only knows which column each cutoff applies to.

use entity::{
    access_token, approval, authorization_code, ciba_request, device_authorization, authorization_request, client, client_origin, email_code, factor_lockout, initial_access_token,
    mail_queue, maintenance_lease, refresh_family, refresh_token, session, sso_assertion, sso_request, webauthn_ceremony,
};
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, QueryTrait};

use super::{Scoped, StoreResult};

/// Rows per delete statement.
pub const BATCH: u64 = 1000;

/// How many rows each kind lost in one run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept(pub Vec<(&'static str, u64)>);

impl Swept {
    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }
}

/// The instants before which each kind of row is dead (all Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cutoffs {
    /// Pending requests, ceremonies, email codes, sessions and initial access tokens that expired.
    pub now: i64,
    /// A session not seen since then is idle.
    pub session_seen_before: i64,
    pub code_expired_before: i64,
    pub refresh_token_created_before: i64,
    /// A family revoked, or past its absolute lifetime, before then.
    pub family_ended_before: i64,
    pub family_used_before: i64,
    pub access_token_expired_before: i64,
    pub unused_registration_created_before: i64,
    /// Mail given up on (or no longer deliverable) before then.
    pub mail_failed_before: i64,
}

/// Takes the lease on `job` for `seconds` if nobody holds it now: true for exactly one of several
/// nodes asking at once (a conditional UPDATE on `held_until`).
pub async fn take_lease(db: &DatabaseConnection, job: &str, holder: &str, seconds: i64, now: i64) -> StoreResult<bool> {
    let row = maintenance_lease::ActiveModel { job: Set(job.to_owned()), holder: Set(String::new()), held_until: Set(0) };
    maintenance_lease::Entity::insert(row).on_conflict_do_nothing_on([maintenance_lease::Column::Job]).exec_without_returning(db).await?;
    let taken = maintenance_lease::Entity::update_many()
        .col_expr(maintenance_lease::Column::Holder, holder.into())
        .col_expr(maintenance_lease::Column::HeldUntil, (now + seconds).into())
        .filter(maintenance_lease::Column::Job.eq(job))
        .filter(maintenance_lease::Column::HeldUntil.lte(now))
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Deletes one tenant's dead rows (audit rows past retention are `audit_events::forget_before`'s).
pub async fn tenant(scope: Scoped<'_>, c: &Cutoffs) -> StoreResult<Swept> {
    let now = c.now;
    let mut swept = Swept::default();
    macro_rules! sweep {
        ($name:literal, $entity:ident, $key:expr, $condition:expr) => {
            let rows = scope.delete_in_batches::<$entity::Entity>($key, $condition, BATCH).await?;
            swept.0.push(($name, rows));
        };
    }
    sweep!("authorization_requests", authorization_request, authorization_request::Column::Id, Condition::all()
        .add(authorization_request::Column::ExpiresAt.lt(now)));
    sweep!("webauthn_ceremonies", webauthn_ceremony, webauthn_ceremony::Column::Id, Condition::all()
        .add(webauthn_ceremony::Column::ExpiresAt.lt(now)));
    sweep!("sso_requests", sso_request, sso_request::Column::Id, Condition::all().add(sso_request::Column::ExpiresAt.lt(now)));
    sweep!("approvals", approval, approval::Column::Id, Condition::all().add(approval::Column::ExpiresAt.lt(now)));
    sweep!("device_authorizations", device_authorization, device_authorization::Column::Id, Condition::all()
        .add(device_authorization::Column::ExpiresAt.lt(now)));
    sweep!("ciba_requests", ciba_request, ciba_request::Column::Id, Condition::all().add(ciba_request::Column::ExpiresAt.lt(now)));
    sweep!("sso_assertions", sso_assertion, sso_assertion::Column::Id, Condition::all().add(sso_assertion::Column::ExpiresAt.lt(now)));
    sweep!("email_codes", email_code, email_code::Column::Id, Condition::all().add(email_code::Column::ExpiresAt.lt(now)));
    sweep!("sessions", session, session::Column::Id, Condition::any()
        .add(session::Column::EndedAt.is_not_null())
        .add(session::Column::ExpiresAt.lt(now))
        .add(session::Column::LastSeenAt.lt(c.session_seen_before)));
    sweep!("authorization_codes", authorization_code, authorization_code::Column::CodeHash, Condition::all()
        .add(authorization_code::Column::ExpiresAt.lt(c.code_expired_before)));
    sweep!("refresh_tokens", refresh_token, refresh_token::Column::TokenHash, Condition::all()
        .add(refresh_token::Column::CreatedAt.lt(c.refresh_token_created_before)));
    sweep!("refresh_families", refresh_family, refresh_family::Column::Id, Condition::any()
        .add(refresh_family::Column::RevokedAt.lt(c.family_ended_before))
        .add(refresh_family::Column::AbsoluteExpiresAt.lt(c.family_ended_before))
        .add(refresh_family::Column::LastUsedAt.lt(c.family_used_before)));
    sweep!("access_tokens", access_token, access_token::Column::Jti, Condition::all()
        .add(access_token::Column::ExpiresAt.lt(c.access_token_expired_before)));
    sweep!("unused_registrations", client, client::Column::ClientId, Condition::all()
        .add(client::Column::RegisteredDynamically.eq(true))
        .add(client::Column::FirstUsedAt.is_null())
        .add(client::Column::CreatedAt.lt(c.unused_registration_created_before)));
    // The origins of clients that are gone (the sweep above deletes clients by the batch).
    let clients = scope.select::<client::Entity>().select_only().column(client::Column::ClientId).into_query();
    sweep!("client_origins", client_origin, client_origin::Column::ClientId, Condition::all()
        .add(client_origin::Column::ClientId.not_in_subquery(clients)));
    sweep!("initial_access_tokens", initial_access_token, initial_access_token::Column::TokenHash, Condition::any()
        .add(initial_access_token::Column::ExpiresAt.lt(now))
        .add(initial_access_token::Column::RevokedAt.is_not_null()));
    sweep!("mail_queue", mail_queue, mail_queue::Column::Id, Condition::any()
        .add(mail_queue::Column::FailedAt.lt(c.mail_failed_before))
        .add(Condition::all().add(mail_queue::Column::FailedAt.is_null()).add(mail_queue::Column::DeliverUntil.lt(c.mail_failed_before))));
    // A counter whose lock ran out, or that a success reset, holds nothing worth keeping.
    sweep!("factor_lockouts", factor_lockout, factor_lockout::Column::UserId, Condition::any()
        .add(factor_lockout::Column::LockedUntil.lt(now))
        .add(Condition::all().add(factor_lockout::Column::LockedUntil.is_null()).add(factor_lockout::Column::Attempts.eq(0))));
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;
    // The domain's policy against real rows: each cutoff `crate::sweep` computes from the configured
    // lifetimes lands on the right column.
    use crate::{
        config::Lifetimes,
        jwt::LEEWAY_SECONDS,
        sweep::{CODE_MEMORY, FAILED_MAIL_MEMORY, cutoffs},
    };

    /// Each task's result, in order.
    async fn join_all<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
        futures_util::future::join_all(handles).await.into_iter().map(|r| r.expect("task")).collect()
    }

    #[tokio::test]
    async fn one_of_several_nodes_gets_the_lease_until_it_runs_out() {
        let db = crate::store::connect("sqlite::memory:", 1).await.expect("db");
        crate::store::migrate(&db).await.expect("migrate");
        let takes = join_all(
            (0..8).map(|n| {
                let db = db.clone();
                tokio::spawn(async move { take_lease(&db, "sweep", &format!("node-{n}"), 300, 1_000).await.expect("lease") })
            }),
        )
        .await;
        assert_eq!(takes.iter().filter(|won| **won).count(), 1, "{takes:?}");
        assert!(!take_lease(&db, "sweep", "late", 300, 1_299).await.expect("lease"), "still held");
        assert!(take_lease(&db, "sweep", "late", 300, 1_300).await.expect("lease"), "run out: the next node takes it");
    }

    /// Every kind, one row that is past its use and one that is not (and a dead row of another tenant,
    /// which this tenant's sweep must not touch): only the dead ones of this tenant go.
    #[tokio::test]
    async fn each_kind_is_kept_exactly_as_long_as_it_may_be_needed() {
        use sea_orm::{ConnectionTrait, Statement};
        let db = crate::store::connect("sqlite::memory:", 1).await.expect("db");
        crate::store::migrate(&db).await.expect("migrate");
        let l = Lifetimes::default();
        let now: i64 = 10_000_000;
        let tail = l.access_token + LEEWAY_SECONDS as i64 + 120;
        // (table, INSERT … VALUES with {t} for the tenant, {id} for the row id, and the dead and live
        // values of the swept columns)
        let kinds: Vec<(&str, String, String)> = vec![
            ("authorization_requests", format!("{}", now - 1), format!("{}", now + 60)),
            ("webauthn_ceremonies", format!("{}", now - 1), format!("{}", now + 60)),
            ("email_codes", format!("{}", now - 1), format!("{}", now + 60)),
            ("sso_requests", format!("{}", now - 1), format!("{}", now + 60)),
            ("sso_assertions", format!("{}", now - 1), format!("{}", now + 60)),
            ("approvals", format!("{}", now - 1), format!("{}", now + 60)),
            ("ciba_requests", format!("{}", now - 1), format!("{}", now + 60)),
            ("device_authorizations", format!("{}", now - 1), format!("{}", now + 60)),
            ("sessions", "ended".into(), "live".into()),
            ("authorization_codes", format!("{}", now - CODE_MEMORY - 1), format!("{}", now - 60)),
            ("refresh_tokens", format!("{}", now - l.refresh_idle - 1), format!("{}", now - l.refresh_idle + 60)),
            ("refresh_families", format!("{}", now - tail - 1), format!("{}", now - tail + 60)),
            ("access_tokens", format!("{}", now - LEEWAY_SECONDS as i64 - 1), format!("{}", now)),
            ("clients", format!("{}", now - l.unused_registration - 1), format!("{}", now - 60)),
            // An origin row of a client that is gone, and one of the live client above.
            ("client_origins", "no-such-client".into(), "live".into()),
            ("initial_access_tokens", format!("{}", now - 1), format!("{}", now + 60)),
            ("mail_queue", format!("{}", now - FAILED_MAIL_MEMORY - 1), format!("{}", now)),
            ("factor_lockouts", format!("{}", now - 1), format!("{}", now + 60)),
        ];
        let insert = |table: &str, tenant: &str, id: &str, value: &str| -> String {
            match table {
                "authorization_requests" => format!("INSERT INTO authorization_requests (id, tenant_id, client_id, params, created_at, expires_at) VALUES ('{id}', '{tenant}', 'c', '{{}}', 0, {value})"),
                "webauthn_ceremonies" => format!("INSERT INTO webauthn_ceremonies (id, tenant_id, kind, state, created_at, expires_at) VALUES ('{id}', '{tenant}', 'k', '{{}}', 0, {value})"),
                "email_codes" => format!("INSERT INTO email_codes (id, tenant_id, email, code_hash, attempts, created_at, expires_at) VALUES ('{id}', '{tenant}', 'a@b.c', x'00', 0, 0, {value})"),
                "sso_requests" => format!("INSERT INTO sso_requests (id, tenant_id, connection_id, binding_hash, created_at, expires_at) VALUES ('{id}', '{tenant}', 'c', 'b', 0, {value})"),
                "approvals" => format!("INSERT INTO approvals (id, tenant_id, client_id, user_id, scope, authorization_details, status, created_at, expires_at) VALUES ('{id}', '{tenant}', 'c', 'u', '', '[]', 'pending', 0, {value})"),
                "device_authorizations" => format!("INSERT INTO device_authorizations (id, tenant_id, public_id, user_code_hash, client_id, scope, status, poll_interval, created_at, expires_at) VALUES ('{id}', '{tenant}', '{id}', '{tenant}{id}', 'c', '', 'pending', 5, 0, {value})"),
                "ciba_requests" => format!("INSERT INTO ciba_requests (id, tenant_id, approval_id, client_id, poll_interval, created_at, expires_at) VALUES ('{id}', '{tenant}', 'a', 'c', 5, 0, {value})"),
                "sso_assertions" => format!("INSERT INTO sso_assertions (id, tenant_id, connection_id, expires_at) VALUES ('{id}', '{tenant}', 'c', {value})"),
                "sessions" => {
                    let (ended, last_seen) = if value == "ended" { (format!("{now}"), now) } else { ("NULL".into(), now) };
                    format!("INSERT INTO sessions (id, tenant_id, user_id, created_at, last_seen_at, expires_at, auth_time, amr, acr, ended_at) VALUES ('{id}', '{tenant}', 'u', 0, {last_seen}, {}, 0, '[]', 'a', {ended})", now + 60)
                }
                "authorization_codes" => format!("INSERT INTO authorization_codes (code_hash, tenant_id, client_id, user_id, session_id, redirect_uri, scope, code_challenge, auth_time, amr, acr, created_at, expires_at) VALUES ('{id}', '{tenant}', 'c', 'u', 's', 'r', '', 'x', 0, '[]', 'a', 0, {value})"),
                "refresh_tokens" => format!("INSERT INTO refresh_tokens (token_hash, tenant_id, family_id, prefix, created_at) VALUES ('{id}', '{tenant}', 'f', 'p', {value})"),
                "refresh_families" => format!("INSERT INTO refresh_families (id, tenant_id, client_id, user_id, scope, auth_time, amr, acr, created_at, last_used_at, absolute_expires_at) VALUES ('{id}', '{tenant}', 'c', 'u', '', 0, '[]', 'a', 0, {now}, {value})"),
                "access_tokens" => format!("INSERT INTO access_tokens (jti, tenant_id, client_id, expires_at) VALUES ('{id}', '{tenant}', 'c', {value})"),
                "clients" => format!("INSERT INTO clients (id, tenant_id, client_id, name, redirect_uris, post_logout_redirect_uris, grant_types, scopes, first_party, id_token_alg, access_token_alg, created_at, registered_dynamically) VALUES ('{id}', '{tenant}', '{id}', 'n', '[]', '[]', '[]', '[]', false, 'RS256', 'ES256', {value}, true)"),
                "client_origins" => format!("INSERT INTO client_origins (tenant_id, origin, client_id) VALUES ('{tenant}', '{id}', '{value}')"),
                "initial_access_tokens" => format!("INSERT INTO initial_access_tokens (token_hash, tenant_id, prefix, created_at, expires_at) VALUES ('{id}', '{tenant}', 'p', 0, {value})"),
                "mail_queue" => format!("INSERT INTO mail_queue (id, tenant_id, sealed, created_at, deliver_until, next_attempt_at, attempts, failed_at) VALUES ('{id}', '{tenant}', x'00', 0, {now}, 0, 12, {value})"),
                "factor_lockouts" => format!("INSERT INTO factor_lockouts (tenant_id, user_id, factor, attempts, locked_until) VALUES ('{tenant}', '{id}', 'totp', 5, {value})"),
                other => panic!("{other}"),
            }
        };
        for (table, dead, live) in &kinds {
            for (tenant, id, value) in [("t", "dead", dead), ("t", "live", live), ("other", "gone-elsewhere", dead)] {
                db.execute_unprepared(&insert(table, tenant, id, value)).await.unwrap_or_else(|e| panic!("{table}: {e}"));
            }
        }
        let swept = tenant(Scoped::new(&db, "t"), &cutoffs(&l, now)).await.expect("sweep");
        for (table, _, _) in &kinds {
            let key = match *table {
                "authorization_codes" => "code_hash",
                "refresh_tokens" | "initial_access_tokens" => "token_hash",
                "access_tokens" => "jti",
                "factor_lockouts" => "user_id",
                "client_origins" => "origin",
                _ => "id",
            };
            let left = db
                .query_all_raw(Statement::from_string(db.get_database_backend(), format!("SELECT tenant_id || '/' || {key} AS k FROM {table} ORDER BY k")))
                .await
                .expect("rows");
            let left: Vec<String> = left.iter().map(|r| r.try_get::<String>("", "k").expect("k")).collect();
            assert_eq!(left, ["other/gone-elsewhere", "t/live"], "{table}");
        }
        assert_eq!(swept.total(), kinds.len() as u64, "{swept:?}");
    }
}
