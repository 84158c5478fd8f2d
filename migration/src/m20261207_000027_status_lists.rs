//! Token status lists (draft-ietf-oauth-status-list): each refresh family (a person's grant) gets an
//! entry in its tenant's list when it is made; the list's bit for a revoked family is set, so resource
//! servers that validate tokens offline learn of the revocation. `status_lists` holds how many entries
//! each list has handed out (the counter a new family's index comes from).

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
                    .table(name("status_lists"))
                    .col(string(name("tenant_id")))
                    .col(integer(name("id")))
                    // Entries handed out: the next family's index.
                    .col(big_integer(name("size")))
                    .primary_key(Index::create().col(name("tenant_id")).col(name("id")))
                    .take(),
            )
            .await?;
        manager
            .alter_table(Table::alter().table(name("refresh_families")).add_column(big_integer_null(name("status_index"))).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(name("refresh_families")).drop_column(name("status_index")).to_owned()).await?;
        manager.drop_table(Table::drop().table(name("status_lists")).to_owned()).await
    }
}
