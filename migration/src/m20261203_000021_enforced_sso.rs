//! Enforced SSO (docs/sso.md): per verified domain, whether its people may sign in only through their
//! organization's identity provider.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("organization_domains"))
                    .add_column(boolean(Alias::new("enforce_sso")).default(false))
                    .take(),
            )
            .await
    }
}
