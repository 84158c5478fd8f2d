//! Client secret rotation with an overlap (`latchkey client rotate-secret`): the secret replaced
//! keeps working until `previous_secret_expires_at`, so a deployment can move to the new one without
//! an outage. Hash and display prefix only, like the current secret.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [&str; 3] = ["previous_secret_hash", "previous_secret_prefix", "previous_secret_expires_at"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let clients = || Table::alter().table(Alias::new("clients")).to_owned();
        manager.alter_table(clients().add_column(blob_null(Alias::new(COLUMNS[0]))).to_owned()).await?;
        manager.alter_table(clients().add_column(string_null(Alias::new(COLUMNS[1]))).to_owned()).await?;
        manager.alter_table(clients().add_column(big_integer_null(Alias::new(COLUMNS[2]))).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in COLUMNS {
            manager.alter_table(Table::alter().table(Alias::new("clients")).drop_column(Alias::new(column)).to_owned()).await?;
        }
        Ok(())
    }
}
