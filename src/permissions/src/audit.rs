//! The decision audit table: one SQLite file of the permission API's own (`{data_dir}/permissions.db`),
//! never the identity server's database. Rows are written by group commit: concurrent decisions share
//! one multi-row INSERT (`latchkey_kit::batch`).

use std::{path::Path, str::FromStr, time::Duration};

use latchkey_kit::batch::{Batch, BatchError};
use sqlx::{
    Row, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

/// One row of the `decisions` table.
pub struct DecisionRow {
    pub at: i64,
    pub issuer: String,
    pub subject: String,
    pub client_id: String,
    pub agent: bool,
    pub organization: Option<String>,
    pub tool: String,
    pub action: String,
    pub arguments_digest: Option<String>,
    pub decision: &'static str,
    pub rule: Option<i64>,
    pub receipt_id: String,
    /// The Latchkey approval the decision waits for or spent (docs/approvals.md).
    pub approval_id: Option<String>,
}

#[derive(Clone)]
pub struct AuditLog {
    rows: Batch<DecisionRow>,
}

impl AuditLog {
    /// Opens (creating) the audit file and brings its table up to date.
    pub async fn open(path: &Path) -> Result<Self, sqlx::Error> {
        let pool = connect(path, 4).await?;
        prepare_table(&pool).await?;
        Ok(Self { rows: writer(pool) })
    }

    /// Stores one row; returns once it is committed.
    pub async fn record(&self, row: DecisionRow) -> Result<(), BatchError> {
        self.rows.submit(row).await
    }
}

/// WAL lets readers (an operator's `sqlite3`, the tests) proceed during a write; busy_timeout makes
/// concurrent writers queue rather than fail; NORMAL sync is durable across application crashes.
async fn connect(path: &Path, max_connections: u32) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    SqlitePoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}

/// Creates the decision audit table, or brings one made by an earlier version up to date (columns are
/// only ever added, so old rows stay readable).
async fn prepare_table(db: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS decisions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at INTEGER NOT NULL,
            issuer TEXT NOT NULL,
            subject TEXT NOT NULL,
            client_id TEXT NOT NULL,
            agent INTEGER NOT NULL,
            organization TEXT,
            tool TEXT NOT NULL,
            action TEXT NOT NULL,
            arguments_digest TEXT,
            decision TEXT NOT NULL,
            rule INTEGER,
            receipt_id TEXT NOT NULL
        )",
    )
    .execute(db)
    .await?;
    for (column, add) in [
        ("organization", "ALTER TABLE decisions ADD COLUMN organization TEXT"),
        ("approval_id", "ALTER TABLE decisions ADD COLUMN approval_id TEXT"),
    ] {
        let present: i64 = sqlx::query("SELECT COUNT(*) AS n FROM pragma_table_info('decisions') WHERE name = ?")
            .bind(column)
            .fetch_one(db)
            .await?
            .try_get("n")?;
        if present == 0 {
            sqlx::query(add).execute(db).await?;
        }
    }
    Ok(())
}

fn writer(db: SqlitePool) -> Batch<DecisionRow> {
    Batch::group_commit(move |rows: Vec<DecisionRow>| {
        let db = db.clone();
        async move {
            let placeholders = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; rows.len()].join(", ");
            let sql = format!(
                "INSERT INTO decisions (at, issuer, subject, client_id, agent, organization, tool, action, arguments_digest, decision, rule, receipt_id, approval_id) VALUES {placeholders}"
            );
            // Only placeholders are spliced in, as many as rows; every value is bound.
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in rows {
                insert = insert
                    .bind(r.at)
                    .bind(r.issuer)
                    .bind(r.subject)
                    .bind(r.client_id)
                    .bind(r.agent)
                    .bind(r.organization)
                    .bind(r.tool)
                    .bind(r.action)
                    .bind(r.arguments_digest)
                    .bind(r.decision)
                    .bind(r.rule)
                    .bind(r.receipt_id)
                    .bind(r.approval_id);
            }
            insert.execute(&db).await.map(|_| ()).map_err(|e| e.to_string())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_audit_table_from_before_organizations_and_approvals_gains_the_columns() {
        let dir = tempfile::tempdir().expect("dir");
        let db = connect(&dir.path().join("permissions.db"), 1).await.expect("db");
        sqlx::query(
            "CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, issuer TEXT NOT NULL,
             subject TEXT NOT NULL, client_id TEXT NOT NULL, agent INTEGER NOT NULL, tool TEXT NOT NULL,
             action TEXT NOT NULL, arguments_digest TEXT, decision TEXT NOT NULL, rule INTEGER, receipt_id TEXT NOT NULL)",
        )
        .execute(&db)
        .await
        .expect("old table");
        prepare_table(&db).await.expect("upgrade");
        prepare_table(&db).await.expect("idempotent");
        sqlx::query(
            "INSERT INTO decisions (at, issuer, subject, client_id, agent, organization, tool, action, decision, receipt_id, approval_id)
             VALUES (1, 'i', 's', 'c', 0, 'acme', 't', 'a', 'allow', 'r', 'apr_1')",
        )
        .execute(&db)
        .await
        .expect("the new column takes rows");
    }
}
