//! Introspection only for clients an operator designates as resource servers: for the tokens of the
//! resources it names, or (`introspect_all`) for every token of the tenant.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let clients = || Table::alter().table(Alias::new("clients")).to_owned();
        manager.alter_table(clients().add_column(boolean(Alias::new("introspect_all")).default(false)).to_owned()).await?;
        // JSON list of resource URIs whose tokens the client may introspect.
        manager.alter_table(clients().add_column(text(Alias::new("introspect_resources")).default("[]")).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["introspect_all", "introspect_resources"] {
            manager.alter_table(Table::alter().table(Alias::new("clients")).drop_column(Alias::new(column)).to_owned()).await?;
        }
        Ok(())
    }
}
