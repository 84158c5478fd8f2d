//! Storage: one sea-orm code path for SQLite and PostgreSQL.
//!
//! Tenant isolation lives here and only here: every read, update, delete and insert of a tenant-owned
//! table goes through [`Scoped`], which adds (or sets) the tenant column. Domain code never names the
//! tenant column itself.
//!
//! The submodules are repositories: each owns its tables' entities and queries and offers operations
//! in the domain's words ("replace this address's code", "consume this code once", "end this user's
//! sessions"), so no module outside `store` imports sea-orm or `entity` (`scripts/check-boundaries`
//! fails if one starts).

pub mod access_tokens;
pub mod approvals;
pub mod audit_events;
pub mod authorizations;
pub mod clients;
pub mod consents;
pub mod device_codes;
pub mod email_codes;
pub mod factor_lockouts;
pub mod initial_access_tokens;
pub mod mail_outbox;
pub mod organization_domains;
pub mod organizations;
pub mod passkeys;
pub mod recovery_codes;
pub mod refresh_families;
pub mod resources;
pub mod scim;
pub mod service_accounts;
pub mod sessions;
pub mod signing_keys;
pub mod status_lists;
pub mod sso;
pub mod sweep;
pub mod token_writes;
pub mod tenants;
pub mod totp_authenticators;
pub mod users;

use sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use std::time::Duration;

use entity::TenantOwned;
use migration::MigratorTrait;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectOptions, ConnectionTrait, Database, DbBackend,
    DbErr, DeleteMany, IntoActiveModel, QueryFilter, QuerySelect, QueryTrait, Related, Select, SelectThree, SelectTwo,
    TopologyChain, UpdateMany,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("batched database work: {0}")]
    Batch(#[from] crate::batch::BatchError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One poll of a request clients poll (CIBA §7.3, RFC 8628 §3.5), paced by one conditional UPDATE
/// (so concurrent polls on any node agree): `true` when it came at least `interval` seconds after
/// the last one (and is recorded); otherwise the request's interval grows by five seconds.
pub(crate) async fn paced_poll<E: TenantOwned>(
    scope: Scoped<'_>,
    (key, id): (E::Column, &str),
    last_polled: E::Column,
    interval: E::Column,
    now: i64,
) -> StoreResult<bool> {
    use sea_orm::{ExprTrait, sea_query::Expr};
    let on_time = scope
        .update::<E>()
        .col_expr(last_polled, Expr::value(now))
        .filter(key.eq(id))
        .filter(Condition::any().add(last_polled.is_null()).add(Expr::col(last_polled).add(Expr::col(interval)).lte(now)))
        .exec(scope.db)
        .await?;
    if on_time.rows_affected == 1 {
        return Ok(true);
    }
    scope.update::<E>().col_expr(interval, Expr::col(interval).add(5)).filter(key.eq(id)).exec(scope.db).await?;
    Ok(false)
}

/// Whether a write failed on a unique index (the index decided a race, or a name is taken).
pub(crate) fn unique_violation(error: &StoreError) -> bool {
    matches!(error, StoreError::Db(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))))
}

/// The database handle (a pool) the store's functions take: named here so callers need not name sea-orm.
pub use sea_orm::DatabaseConnection;

/// An `acr` read back from a row: only values we wrote, so anything else is corruption.
pub fn stored_acr(value: &str) -> StoreResult<latchkey_proto::Acr> {
    latchkey_proto::Acr::parse(value).ok_or_else(|| StoreError::Corrupt(format!("unknown acr {value:?}")))
}

/// Opens the database, applying the settings each engine needs for concurrent use.
pub async fn connect(url: &str, max_connections: u32) -> StoreResult<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        // sqlx pings a connection on every checkout by default: one more round trip to the driver per
        // query (on SQLite a hand-off to the connection's thread and back). Only a connection idle long
        // enough for a server, proxy or firewall to have dropped it is worth checking.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(false)
        // Applied to every pooled connection (a PRAGMA run through the pool reaches only one of them).
        // WAL lets readers proceed during a write; busy_timeout makes concurrent writers queue rather
        // than fail. NORMAL sync is durable across application crashes (not power loss) under WAL;
        // FULL would add an fsync to every commit.
        .map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        })
        .map_sqlx_sqlite_pool_opts(|pool| {
            pool.after_connect(|connection, _| Box::pin(enable_stable_query_plans(connection)))
        });
    Ok(Database::connect(options).await?)
}

/// Turns on SQLite's query planner stability guarantee (SQLITE_DBCONFIG_ENABLE_QPSG) for one connection.
///
/// Without it, the bundled SQLite (3.51) reads a bound `LIMIT ?` while planning and marks the statement
/// to be prepared again whenever that parameter is bound, so every `.one()` query (sea-orm binds its
/// `LIMIT 1`) was parsed and planned afresh on each execution: 15% of the server's CPU in a refresh
/// rotation, measured with perf. Our plans never depend on bound values (no ANALYZE statistics, no
/// bound LIKE patterns), so keeping each prepared plan costs nothing.
async fn enable_stable_query_plans(connection: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    let enabled = query_planner_stability(connection, 1).await?;
    if enabled != 1 {
        return Err(sqlx::Error::Configuration("SQLite refused SQLITE_DBCONFIG_ENABLE_QPSG".into()));
    }
    Ok(())
}

/// Sets the guarantee on (1), off (0), or leaves it (-1); returns whether it is now on.
async fn query_planner_stability(
    connection: &mut sqlx::SqliteConnection,
    setting: std::ffi::c_int,
) -> Result<std::ffi::c_int, sqlx::Error> {
    let mut handle = connection.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    let mut enabled: std::ffi::c_int = -1;
    // SAFETY: `db` is this connection's open handle, locked away from sqlx's worker thread for the
    // duration of the call; SQLITE_DBCONFIG_ENABLE_QPSG takes exactly (int, int*), as passed.
    let status = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            db,
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            setting,
            &mut enabled as *mut std::ffi::c_int,
        )
    };
    if status != libsqlite3_sys::SQLITE_OK {
        return Err(sqlx::Error::Configuration(format!("sqlite3_db_config failed with {status}").into()));
    }
    Ok(enabled)
}

/// The connection the batched writers (`audit`, `store::token_writes`) share. SQLite has one writer at
/// a time and makes a blocked writer sleep (its busy handler polls in milliseconds), so writers on
/// separate connections left the core idle; on one connection of their own they queue on the pool
/// instead. PostgreSQL locks rows, not the database: there it is the shared pool.
pub async fn batch_writer(db: &DatabaseConnection, url: &str, max_connections: u32) -> StoreResult<DatabaseConnection> {
    match db.get_database_backend() {
        DbBackend::Sqlite if max_connections > 1 => connect(url, 1).await,
        _ => Ok(db.clone()),
    }
}

/// Applies pending migrations, one process at a time.
///
/// Nodes starting together, or an operator's command beside a starting server, would otherwise each
/// read the same pending list and apply it twice (the second `ALTER TABLE … ADD COLUMN` fails with
/// "duplicate column"). So the whole run is one transaction that first takes the database's migration
/// lock: on PostgreSQL a transaction-scoped advisory lock, on SQLite the write lock. The process that
/// waited then finds nothing pending. sea-orm-migration's own per-migration transactions become
/// savepoints inside it.
pub async fn migrate(db: &DatabaseConnection) -> StoreResult<()> {
    use sea_orm::TransactionTrait;
    if db.get_database_backend() == DbBackend::Sqlite {
        // The row the lock is taken on; creating it is itself safe to race (IF NOT EXISTS, under
        // SQLite's write lock).
        db.execute_unprepared("CREATE TABLE IF NOT EXISTS latchkey_migration_lock (id INTEGER PRIMARY KEY)").await?;
    }
    let deadline = std::time::Instant::now() + MIGRATION_LOCK_WAIT;
    loop {
        let txn = db.begin().await?;
        match take_migration_lock(&txn).await {
            Ok(()) => {
                migration::Migrator::up(&txn, None).await?;
                txn.commit().await?;
                return Ok(());
            }
            // SQLite's busy timeout (5 s) ran out while another process migrates: keep waiting, as
            // PostgreSQL's advisory lock does, up to a bound.
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                let _ = txn.rollback().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// How the database's schema stands against this binary's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schema {
    Current,
    /// Migrations this binary has that the database lacks (a node started before `migrate` ran).
    Behind { pending: usize },
    /// Migrations the database has that this binary does not know: a newer version migrated it
    /// (migrations are forward-only: run the newer binary, or restore the backup taken before).
    Ahead { unknown: Vec<String> },
}

/// A connection pool's use at this moment (for the metrics).
#[derive(Debug, Clone, Copy)]
pub struct PoolUse {
    /// Connections open, in use or idle.
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

pub fn pool_use(db: &DatabaseConnection) -> Option<PoolUse> {
    // Each getter panics for the other engine: ask the backend first.
    let (open, idle, max) = match db.get_database_backend() {
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle(), pool.options().get_max_connections())
        }
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle(), pool.options().get_max_connections())
        }
        _ => return None,
    };
    Some(PoolUse { open, idle: u32::try_from(idle).unwrap_or(u32::MAX), max })
}

/// Reads the applied migrations (one query; it also proves the database answers).
pub async fn schema(db: &DatabaseConnection) -> StoreResult<Schema> {
    let backend = db.get_database_backend();
    let rows = db.query_all_raw(sea_orm::Statement::from_string(backend, "SELECT version FROM seaql_migrations")).await?;
    let applied: Vec<String> = rows.iter().map(|row| row.try_get::<String>("", "version")).collect::<Result<_, _>>()?;
    let known: Vec<String> = migration::Migrator::migrations().iter().map(|m| m.name().to_owned()).collect();
    let unknown: Vec<String> = applied.iter().filter(|a| !known.contains(a)).cloned().collect();
    if !unknown.is_empty() {
        return Ok(Schema::Ahead { unknown });
    }
    let pending = known.iter().filter(|k| !applied.contains(k)).count();
    Ok(if pending == 0 { Schema::Current } else { Schema::Behind { pending } })
}

/// How long a node waits for another's migrations (a large SQLite table rebuild can take minutes).
const MIGRATION_LOCK_WAIT: Duration = Duration::from_secs(600);

/// "Latchkey" in ASCII: an advisory lock key no other application is likely to choose.
const MIGRATION_LOCK_KEY: i64 = 0x4c61_7463_686b_6579;

async fn take_migration_lock(txn: &sea_orm::DatabaseTransaction) -> Result<(), DbErr> {
    match txn.get_database_backend() {
        DbBackend::Postgres => {
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")).await?;
        }
        _ => {
            // A write as the transaction's first statement takes the write lock, waiting (busy
            // timeout) while another connection holds it. A read first would pin a snapshot that the
            // other process's migration then makes stale.
            txn.execute_unprepared("INSERT OR REPLACE INTO latchkey_migration_lock (id) VALUES (1)").await?;
        }
    }
    Ok(())
}

fn is_busy(error: &DbErr) -> bool {
    let text = error.to_string();
    text.contains("database is locked") || text.contains("(code: 5)")
}

/// A view of the database — the pool, or one transaction — restricted to one tenant.
pub struct Scoped<'a, C = DatabaseConnection> {
    pub db: &'a C,
    tenant_id: &'a str,
}

impl<C> Clone for Scoped<'_, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for Scoped<'_, C> {}

impl<'a, C: ConnectionTrait> Scoped<'a, C> {
    pub fn new(db: &'a C, tenant_id: &'a str) -> Self {
        Self { db, tenant_id }
    }

    pub fn tenant_id(&self) -> &'a str {
        self.tenant_id
    }

    pub fn select<E: TenantOwned>(&self) -> Select<E> {
        E::find().filter(E::tenant_column().eq(self.tenant_id))
    }

    /// Rows of `E` with their related `R`, both restricted to this tenant.
    pub fn select_with<E, R>(&self) -> SelectTwo<E, R>
    where
        E: TenantOwned + Related<R>,
        R: TenantOwned,
    {
        self.select::<E>()
            .find_also_related(R::default())
            .filter(R::tenant_column().eq(self.tenant_id))
    }

    /// Rows of `E` with their related `F`, and `F`'s related `G`; all three restricted to this tenant.
    pub fn select_chain<E, F, G>(&self) -> SelectThree<E, F, G, TopologyChain>
    where
        E: TenantOwned + Related<F>,
        F: TenantOwned + Related<G>,
        G: TenantOwned,
    {
        self.select_with::<E, F>()
            .and_also_related(G::default())
            .filter(G::tenant_column().eq(self.tenant_id))
    }

    /// The tenant condition for an optional (LEFT JOINed) `R`: this tenant's row, or none. A row of `R`
    /// from another tenant removes the whole result rather than joining into it.
    pub fn optional<R: TenantOwned>(&self) -> Condition {
        Condition::any()
            .add(R::tenant_column().eq(self.tenant_id))
            .add(R::tenant_column().is_null())
    }

    pub fn update<E: TenantOwned>(&self) -> UpdateMany<E> {
        E::update_many().filter(E::tenant_column().eq(self.tenant_id))
    }

    pub fn delete<E: TenantOwned>(&self) -> DeleteMany<E> {
        E::delete_many().filter(E::tenant_column().eq(self.tenant_id))
    }

    /// Deletes this tenant's rows of `E` matching `condition`, at most `batch` per statement (each a
    /// short write, so a large sweep does not hold SQLite's writer for long); returns how many.
    /// `key` names a row within the tenant (the primary key, or its non-tenant part).
    pub async fn delete_in_batches<E: TenantOwned>(&self, key: E::Column, condition: Condition, batch: u64) -> StoreResult<u64> {
        let mut total = 0;
        loop {
            let keys = self.select::<E>().select_only().column(key).filter(condition.clone()).limit(batch).into_query();
            let deleted = self.delete::<E>().filter(key.in_subquery(keys)).exec(self.db).await?.rows_affected;
            total += deleted;
            if deleted < batch {
                return Ok(total);
            }
        }
    }

    /// Inserts a row, forcing its tenant column to this scope's tenant.
    pub async fn insert<E, M>(&self, model: M) -> StoreResult<()>
    where
        E: TenantOwned,
        M: IntoActiveModel<E::ActiveModel>,
        E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    {
        E::insert(self.owned::<E, M>(model)).exec_without_returning(self.db).await?;
        Ok(())
    }

    /// Inserts a row unless one with the same `key` columns exists (`ON CONFLICT DO NOTHING`): of two
    /// nodes racing to create the same row, one inserts and neither fails. Returns whether it inserted.
    pub async fn insert_if_absent<E, M>(&self, model: M, key: impl IntoIterator<Item = E::Column>) -> StoreResult<bool>
    where
        E: TenantOwned,
        M: IntoActiveModel<E::ActiveModel>,
        E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    {
        let result = E::insert(self.owned::<E, M>(model)).on_conflict_do_nothing_on(key).exec_without_returning(self.db).await?;
        Ok(matches!(result, sea_orm::TryInsertResult::Inserted(n) if n > 0))
    }

    /// Inserts rows in one statement, forcing each one's tenant column to this scope's tenant.
    pub async fn insert_many<E, M>(&self, models: impl IntoIterator<Item = M>) -> StoreResult<()>
    where
        E: TenantOwned,
        M: IntoActiveModel<E::ActiveModel>,
        E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    {
        let rows: Vec<E::ActiveModel> = models.into_iter().map(|model| self.owned::<E, M>(model)).collect();
        if !rows.is_empty() {
            E::insert_many(rows).exec_without_returning(self.db).await?;
        }
        Ok(())
    }

    /// Inserts rows in one statement, skipping those whose `key` columns match an existing row
    /// (`ON CONFLICT DO NOTHING`).
    pub async fn insert_many_if_absent<E, M>(&self, models: impl IntoIterator<Item = M>, key: impl IntoIterator<Item = E::Column>) -> StoreResult<()>
    where
        E: TenantOwned,
        M: IntoActiveModel<E::ActiveModel>,
        E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    {
        let rows: Vec<E::ActiveModel> = models.into_iter().map(|model| self.owned::<E, M>(model)).collect();
        if !rows.is_empty() {
            E::insert_many(rows).on_conflict_do_nothing_on(key).exec_without_returning(self.db).await?;
        }
        Ok(())
    }

    fn owned<E, M>(&self, model: M) -> E::ActiveModel
    where
        E: TenantOwned,
        M: IntoActiveModel<E::ActiveModel>,
        E::ActiveModel: ActiveModelTrait<Entity = E>,
    {
        let mut active = model.into_active_model();
        active.set(E::tenant_column(), self.tenant_id.into());
        active
    }
}

/// Unix seconds now. All stored timestamps use this clock (the one tokens carry).
pub use latchkey_proto::now;

/// An `amr` list as stored (JSON text of RFC 8176 values).
pub fn to_amr_json(amr: &[latchkey_proto::Amr]) -> String {
    serde_json::to_string(amr).unwrap_or_else(|_| "[]".into())
}

/// An `amr` list read back: only values we wrote, so anything else is corruption.
pub fn stored_amr(text: &str) -> StoreResult<Vec<latchkey_proto::Amr>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("amr column: {e}")))
}

/// Lists are stored as JSON text.
pub fn to_json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

pub fn from_json_list(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("list column: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_amr_list_round_trips_and_a_value_never_written_is_corruption() {
        use latchkey_proto::Amr;
        let written = to_amr_json(&[Amr::Otp, Amr::Hwk, Amr::User, Amr::Mfa]);
        assert_eq!(written, r#"["otp","hwk","user","mfa"]"#, "the RFC 8176 names, as before the type");
        assert_eq!(stored_amr(&written).expect("read"), [Amr::Otp, Amr::Hwk, Amr::User, Amr::Mfa]);
        assert!(matches!(stored_amr(r#"["otp","retina"]"#), Err(StoreError::Corrupt(_))));
        assert!(matches!(stored_amr("otp"), Err(StoreError::Corrupt(_))));
    }

    /// A SQLite database in a directory that lives as long as the returned handle.
    async fn temporary_sqlite(pool_size: u32) -> (tempfile::TempDir, DatabaseConnection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        let db = connect(&url, pool_size).await.expect("connect");
        (dir, db)
    }

    /// Every pooled connection, not only the first, keeps its prepared plans.
    #[tokio::test]
    async fn every_sqlite_connection_keeps_its_query_plans() {
        let (_dir, db) = temporary_sqlite(3).await;
        let pool = db.get_sqlite_connection_pool();
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(pool.acquire().await.expect("connection"));
        }
        for connection in &mut held {
            assert_eq!(query_planner_stability(connection, -1).await.expect("read setting"), 1);
        }
    }

    /// The batched lookups (`tenant_id = ? AND key IN (…)`) seek the tenant's keys. Without tenant-first
    /// keys (migration 8's indexes; the primary keys since migration 9) SQLite walked the tenant's whole
    /// `(tenant_id, …)` index once a list reached five values.
    #[tokio::test]
    async fn batched_key_lookups_seek_each_key() {
        use entity::{access_token, refresh_family, refresh_token};
        use sea_orm::{ConnectionTrait, QueryTrait, Statement};

        let (_dir, db) = temporary_sqlite(1).await;
        migrate(&db).await.expect("migrate");
        let scope = Scoped::new(&db, "tenant");
        let keys: Vec<String> = (0..8).map(|i| format!("key{i}")).collect();
        let queries = [
            ("jti", scope.select::<access_token::Entity>().filter(access_token::Column::Jti.is_in(&keys)).build(db.get_database_backend())),
            ("token_hash", scope.select::<refresh_token::Entity>().filter(refresh_token::Column::TokenHash.is_in(&keys)).build(db.get_database_backend())),
            ("id", scope.select::<refresh_family::Entity>().filter(refresh_family::Column::Id.is_in(&keys)).build(db.get_database_backend())),
        ];
        for (key, query) in queries {
            let explain = Statement::from_sql_and_values(
                query.db_backend,
                format!("EXPLAIN QUERY PLAN {}", query.sql),
                query.values.expect("bound values").0,
            );
            let plan: Vec<String> = db
                .query_all_raw(explain)
                .await
                .expect("explain")
                .iter()
                .map(|row| row.try_get::<String>("", "detail").expect("detail"))
                .collect();
            assert_eq!(plan.len(), 1, "{plan:?}");
            assert!(plan[0].contains(&format!("(tenant_id=? AND {key}=?)")), "{key}: {plan:?}");
        }
    }
}
