//! Tenant-first indexes on the keys that are looked up in batches (`key IN (…)`).
//!
//! Every query on tenant data says `tenant_id = ? AND …`. For `tenant_id = ? AND jti IN (five or more
//! values)` SQLite, without ANALYZE statistics, rated the `(tenant_id, family_id)` index (equality on
//! its first column) cheaper than looking each value up in the primary key, and walked every row of
//! the tenant. A unique `(tenant_id, key)` index matches both terms, so it wins for any list length.
//! Used by the batched revocation check (access tokens and families) and the batched refresh spend.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [(&str, &str, &str); 3] = [
    ("ux_access_tokens_tenant_jti", "access_tokens", "jti"),
    (
        "ux_refresh_tokens_tenant_hash",
        "refresh_tokens",
        "token_hash",
    ),
    ("ux_refresh_families_tenant_id", "refresh_families", "id"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (index, table, key) in INDEXES {
            manager
                .create_index(
                    Index::create()
                        .name(index)
                        .table(Alias::new(table))
                        .col(Alias::new("tenant_id"))
                        .col(Alias::new(key))
                        .unique()
                        .take(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (index, table, _) in INDEXES {
            manager
                .drop_index(
                    Index::drop()
                        .name(index)
                        .table(Alias::new(table))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
