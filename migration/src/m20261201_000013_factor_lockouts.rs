//! Wrong authenticator-app and recovery codes counted per user and factor in the database, so the
//! limit holds across nodes, restarts and source addresses; a factor locked after too many stays
//! locked until `locked_until`.

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
                    .table(name("factor_lockouts"))
                    .col(string(name("tenant_id")))
                    .col(string(name("user_id")))
                    // `totp` or `recovery_code`.
                    .col(string(name("factor")))
                    // Codes checked since the last success or lock (counted before each check).
                    .col(integer(name("attempts")).default(0))
                    .col(big_integer_null(name("locked_until")))
                    .primary_key(Index::create().col(name("tenant_id")).col(name("user_id")).col(name("factor")))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(name("factor_lockouts")).take()).await
    }
}
