//! "Test connection" (docs/sso.md): an SSO request an administrator started to see what their
//! identity provider sends, which signs nobody in.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("sso_requests"))
                    // The administrator (user id) testing the connection; NULL for a sign-in.
                    .add_column(string_null(Alias::new("tested_by")))
                    .take(),
            )
            .await
    }
}
