//! SAML assertion ids already used (docs/sso.md): one row per assertion a connection accepted, until
//! the assertion could no longer be accepted anyway (its issue instant plus the allowed delay and
//! skew). The primary key decides a race: two nodes given the same response, one inserts.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn name(s: &str) -> Alias {
    Alias::new(s)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(name("sso_assertions"))
                    // SHA-256 (hex) of the connection id and the assertion's ID.
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("connection_id")))
                    .col(big_integer(name("expires_at")))
                    .take(),
            )
            .await?;
        let mut index = Index::create();
        index.name("sso_assertions_by_expiry").table(name("sso_assertions")).col(name("tenant_id")).col(name("expires_at"));
        manager.create_index(index.take()).await
    }
}
