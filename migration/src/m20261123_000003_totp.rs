//! Authenticator apps (TOTP, RFC 6238): one per user, its secret sealed under the tenant's data key.

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
                    .table(name("totp_authenticators"))
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("user_id")))
                    // ChaCha20-Poly1305 under the tenant data key, bound to this row's id.
                    .col(blob(name("sealed_secret")))
                    .col(big_integer(name("created_at")))
                    // Null until the user proves the app works with a first code.
                    .col(big_integer_null(name("confirmed_at")))
                    // The last accepted time step: a code is accepted at most once.
                    .col(big_integer_null(name("last_used_step")))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_totp_authenticators_user")
                    .table(name("totp_authenticators"))
                    .col(name("tenant_id"))
                    .col(name("user_id"))
                    .unique()
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(name("totp_authenticators")).take())
            .await
    }
}
