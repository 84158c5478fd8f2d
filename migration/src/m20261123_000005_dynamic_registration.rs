//! Dynamic client registration (RFC 7591 / RFC 7592): which clients registered themselves, their
//! registration access token (SHA-256 only), when they were first used (unused ones expire), the
//! metadata echoed back to them; the tenant's registration policy; initial access tokens.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn name(s: &str) -> Alias {
    Alias::new(s)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        let client_columns = [
            boolean(name("registered_dynamically")).default(false).take(),
            string_null(name("registration_token_hash")),
            big_integer_null(name("first_used_at")),
            // JSON: client_uri, logo_uri, contacts, software_id, software_version, token_endpoint_auth_method.
            text_null(name("registration_metadata")),
        ];
        for mut column in client_columns {
            manager
                .alter_table(Table::alter().table(name("clients")).add_column(&mut column).take())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(name("tenants"))
                    .add_column(string(name("registration_policy")).default("open"))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("initial_access_tokens"))
                    .col(string(name("token_hash")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("prefix")))
                    .col(big_integer(name("created_at")))
                    .col(big_integer(name("expires_at")))
                    .col(big_integer_null(name("revoked_at")))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(name("initial_access_tokens")).take())
            .await?;
        manager
            .alter_table(Table::alter().table(name("tenants")).drop_column(name("registration_policy")).take())
            .await?;
        for column in ["registration_metadata", "first_used_at", "registration_token_hash", "registered_dynamically"] {
            manager
                .alter_table(Table::alter().table(name("clients")).drop_column(name(column)).take())
                .await?;
        }
        Ok(())
    }
}
