//! Refresh tokens and access tokens keyed by `(tenant_id, key)` alone.
//!
//! Migration 8 added unique `(tenant_id, token_hash)` / `(tenant_id, jti)` indexes beside the single-column
//! primary keys, so every token row was written to two random-keyed B-trees plus the rowid table. Each
//! random-keyed B-tree dirties its own page per insert, and on SQLite each dirty page is a 4 KiB WAL
//! frame at commit and again at checkpoint. Now the tenant-first key is the primary key (on SQLite a
//! `WITHOUT ROWID` table, so the row lives in that one B-tree) and the extra indexes are gone.
//! The family indexes go too: nothing looks tokens up by family. A family is revoked on its own row
//! (`refresh_families.revoked_at`), and an access token is checked against its family's row.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const SQLITE_UP: &str = r#"
CREATE TABLE "refresh_tokens_keyed" ( "token_hash" varchar NOT NULL, "tenant_id" varchar NOT NULL, "family_id" varchar NOT NULL, "prefix" varchar NOT NULL, "created_at" integer NOT NULL, "rotated_at" integer NULL, PRIMARY KEY ("tenant_id", "token_hash") ) WITHOUT ROWID;
INSERT INTO "refresh_tokens_keyed" SELECT "token_hash", "tenant_id", "family_id", "prefix", "created_at", "rotated_at" FROM "refresh_tokens";
DROP TABLE "refresh_tokens";
ALTER TABLE "refresh_tokens_keyed" RENAME TO "refresh_tokens";
CREATE TABLE "access_tokens_keyed" ( "jti" varchar NOT NULL, "tenant_id" varchar NOT NULL, "family_id" varchar NULL, "client_id" varchar NOT NULL, "expires_at" integer NOT NULL, "revoked_at" integer NULL, PRIMARY KEY ("tenant_id", "jti") ) WITHOUT ROWID;
INSERT INTO "access_tokens_keyed" SELECT "jti", "tenant_id", "family_id", "client_id", "expires_at", "revoked_at" FROM "access_tokens";
DROP TABLE "access_tokens";
ALTER TABLE "access_tokens_keyed" RENAME TO "access_tokens";
"#;

const SQLITE_DOWN: &str = r#"
CREATE TABLE "refresh_tokens_rowid" ( "token_hash" varchar NOT NULL PRIMARY KEY, "tenant_id" varchar NOT NULL, "family_id" varchar NOT NULL, "prefix" varchar NOT NULL, "created_at" integer NOT NULL, "rotated_at" integer NULL );
INSERT INTO "refresh_tokens_rowid" SELECT "token_hash", "tenant_id", "family_id", "prefix", "created_at", "rotated_at" FROM "refresh_tokens";
DROP TABLE "refresh_tokens";
ALTER TABLE "refresh_tokens_rowid" RENAME TO "refresh_tokens";
CREATE INDEX "ix_refresh_tokens_family" ON "refresh_tokens" ("tenant_id", "family_id");
CREATE UNIQUE INDEX "ux_refresh_tokens_tenant_hash" ON "refresh_tokens" ("tenant_id", "token_hash");
CREATE TABLE "access_tokens_rowid" ( "jti" varchar NOT NULL PRIMARY KEY, "tenant_id" varchar NOT NULL, "family_id" varchar NULL, "client_id" varchar NOT NULL, "expires_at" integer NOT NULL, "revoked_at" integer NULL );
INSERT INTO "access_tokens_rowid" SELECT "jti", "tenant_id", "family_id", "client_id", "expires_at", "revoked_at" FROM "access_tokens";
DROP TABLE "access_tokens";
ALTER TABLE "access_tokens_rowid" RENAME TO "access_tokens";
CREATE INDEX "ix_access_tokens_family" ON "access_tokens" ("tenant_id", "family_id");
CREATE UNIQUE INDEX "ux_access_tokens_tenant_jti" ON "access_tokens" ("tenant_id", "jti");
"#;

const POSTGRES_UP: &str = r#"
ALTER TABLE "refresh_tokens" DROP CONSTRAINT "refresh_tokens_pkey";
ALTER TABLE "refresh_tokens" ADD PRIMARY KEY ("tenant_id", "token_hash");
DROP INDEX "ux_refresh_tokens_tenant_hash";
DROP INDEX "ix_refresh_tokens_family";
ALTER TABLE "access_tokens" DROP CONSTRAINT "access_tokens_pkey";
ALTER TABLE "access_tokens" ADD PRIMARY KEY ("tenant_id", "jti");
DROP INDEX "ux_access_tokens_tenant_jti";
DROP INDEX "ix_access_tokens_family";
"#;

const POSTGRES_DOWN: &str = r#"
ALTER TABLE "refresh_tokens" DROP CONSTRAINT "refresh_tokens_pkey";
ALTER TABLE "refresh_tokens" ADD PRIMARY KEY ("token_hash");
CREATE UNIQUE INDEX "ux_refresh_tokens_tenant_hash" ON "refresh_tokens" ("tenant_id", "token_hash");
CREATE INDEX "ix_refresh_tokens_family" ON "refresh_tokens" ("tenant_id", "family_id");
ALTER TABLE "access_tokens" DROP CONSTRAINT "access_tokens_pkey";
ALTER TABLE "access_tokens" ADD PRIMARY KEY ("jti");
CREATE UNIQUE INDEX "ux_access_tokens_tenant_jti" ON "access_tokens" ("tenant_id", "jti");
CREATE INDEX "ix_access_tokens_family" ON "access_tokens" ("tenant_id", "family_id");
"#;

async fn run(manager: &SchemaManager<'_>, sqlite: &str, postgres: &str) -> Result<(), DbErr> {
    let script = match manager.get_database_backend() {
        DatabaseBackend::Sqlite => sqlite,
        DatabaseBackend::Postgres => postgres,
        other => return Err(DbErr::Migration(format!("unsupported database backend {other:?}"))),
    };
    // One transaction on one connection: sea-orm-migration wraps migrations in a transaction only on
    // PostgreSQL (there this is a savepoint), and on a SQLite pool each statement could otherwise run on
    // another connection, which would not see the table rebuild in progress.
    let txn = manager.begin().await?;
    for statement in script.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        txn.get_connection().execute_unprepared(statement).await?;
    }
    txn.commit().await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, SQLITE_UP, POSTGRES_UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, SQLITE_DOWN, POSTGRES_DOWN).await
    }
}
