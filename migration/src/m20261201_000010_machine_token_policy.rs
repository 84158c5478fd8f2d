//! Who may hold machine tokens: a tenant's registration policy says whether self-registered clients
//! may use client credentials at all (default: no), and a resource says whether it accepts machine
//! tokens even though it needs a person's passkey (default: no).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [(&str, &str); 2] = [("tenants", "registration_client_credentials"), ("resources", "accepts_agents")];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite takes a single change per statement.
        for (table, column) in COLUMNS {
            manager
                .alter_table(
                    Table::alter().table(Alias::new(table)).add_column(boolean(Alias::new(column)).default(false)).take(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in COLUMNS {
            manager.alter_table(Table::alter().table(Alias::new(table)).drop_column(Alias::new(column)).take()).await?;
        }
        Ok(())
    }
}
