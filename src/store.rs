//! Storage: one sea-orm code path for SQLite and PostgreSQL.
//!
//! Tenant isolation lives here and only here: every read, update, delete and insert of a tenant-owned
//! table goes through [`Scoped`], which adds (or sets) the tenant column. Domain code never names the
//! tenant column itself.

use sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use std::time::Duration;

use entity::TenantOwned;
use migration::MigratorTrait;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectOptions, Database,
    DatabaseConnection, DbErr, DeleteMany, IntoActiveModel, QueryFilter, Related, Select, SelectTwo, UpdateMany,
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

/// Opens the database, applying the settings each engine needs for concurrent use.
pub async fn connect(url: &str, max_connections: u32) -> StoreResult<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
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
        });
    Ok(Database::connect(options).await?)
}

pub async fn migrate(db: &DatabaseConnection) -> StoreResult<()> {
    migration::Migrator::up(db, None).await?;
    Ok(())
}

/// A view of the database restricted to one tenant.
#[derive(Clone, Copy)]
pub struct Scoped<'a> {
    pub db: &'a DatabaseConnection,
    tenant_id: &'a str,
}

impl<'a> Scoped<'a> {
    pub fn new(db: &'a DatabaseConnection, tenant_id: &'a str) -> Self {
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

    pub fn update<E: TenantOwned>(&self) -> UpdateMany<E> {
        E::update_many().filter(E::tenant_column().eq(self.tenant_id))
    }

    pub fn delete<E: TenantOwned>(&self) -> DeleteMany<E> {
        E::delete_many().filter(E::tenant_column().eq(self.tenant_id))
    }

    /// Inserts a row, forcing its tenant column to this scope's tenant.
    pub async fn insert<E, M>(&self, model: M) -> StoreResult<()>
    where
        E: TenantOwned,
        M: IntoActiveModel<E::ActiveModel>,
        E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    {
        let mut active = model.into_active_model();
        active.set(E::tenant_column(), self.tenant_id.into());
        E::insert(active).exec_without_returning(self.db).await?;
        Ok(())
    }
}

/// Unix seconds now. All stored timestamps use this clock.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Lists are stored as JSON text.
pub fn to_json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

pub fn from_json_list(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("list column: {e}")))
}
