//! Resource indicators (RFC 8707): each tenant's registered resources, and the resource an
//! authorization code and a refresh-token family are bound to.

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
                    .table(name("resources"))
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(text(name("uri")))
                    .col(string(name("name")))
                    // JSON list of the scopes a token for this resource may carry.
                    .col(text(name("scopes")))
                    // Tokens for it need a phishing-resistant sign-in (acr `phr`).
                    .col(boolean(name("step_up")).default(false))
                    .col(big_integer(name("created_at")))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_resources_uri")
                    .table(name("resources"))
                    .col(name("tenant_id"))
                    .col(name("uri"))
                    .unique()
                    .take(),
            )
            .await?;
        for table in ["authorization_codes", "refresh_families"] {
            manager
                .alter_table(Table::alter().table(name(table)).add_column(text_null(name("resource"))).take())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["authorization_codes", "refresh_families"] {
            manager
                .alter_table(Table::alter().table(name(table)).drop_column(name("resource")).take())
                .await?;
        }
        manager.drop_table(Table::drop().table(name("resources")).take()).await
    }
}
