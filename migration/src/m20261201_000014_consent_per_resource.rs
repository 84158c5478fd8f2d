//! Remembered consent is per user, client *and resource*: approving scopes for one resource must not
//! let the client get tokens for another resource with the same scope names. `resource` is the RFC
//! 8707 resource URI, or '' for tokens of the tenant's own endpoints (existing rows: those).

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
            .alter_table(Table::alter().table(name("consents")).add_column(text(name("resource")).default("")).take())
            .await?;
        manager.drop_index(Index::drop().name("ux_consents_tenant_user_client").table(name("consents")).to_owned()).await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_consents_tenant_user_client_resource")
                    .table(name("consents"))
                    .col(name("tenant_id"))
                    .col(name("user_id"))
                    .col(name("client_id"))
                    .col(name("resource"))
                    .unique()
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("ux_consents_tenant_user_client_resource").table(name("consents")).to_owned())
            .await?;
        // Keep one row per (user, client): the tenant's own, if any, else any one of them.
        manager
            .get_connection()
            .execute_unprepared(
                r#"DELETE FROM "consents" WHERE "resource" <> '' AND EXISTS (SELECT 1 FROM "consents" AS "o" WHERE "o"."tenant_id" = "consents"."tenant_id" AND "o"."user_id" = "consents"."user_id" AND "o"."client_id" = "consents"."client_id" AND ("o"."resource" = '' OR "o"."id" < "consents"."id"))"#,
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_consents_tenant_user_client")
                    .table(name("consents"))
                    .col(name("tenant_id"))
                    .col(name("user_id"))
                    .col(name("client_id"))
                    .unique()
                    .take(),
            )
            .await?;
        manager.alter_table(Table::alter().table(name("consents")).drop_column(name("resource")).take()).await
    }
}
