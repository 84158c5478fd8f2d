//! The device authorization grant (RFC 8628, docs/clients.md "A CLI or headless agent"): one row per
//! device authorization request, keyed by the SHA-256 of its device code; the user code only as a
//! keyed hash (unique: what the person types finds one request); the person's answer and the
//! authentication it rests on; redeemed once.

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
                    .table(name("device_authorizations"))
                    // SHA-256 of the device code.
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    // What pages name it by (`dev_…`): not a credential.
                    .col(string(name("public_id")))
                    // HMAC of the normalised user code.
                    .col(string(name("user_code_hash")))
                    .col(string(name("client_id")))
                    .col(text(name("scope")))
                    .col(string_null(name("resource")))
                    // pending, approved or denied.
                    .col(string(name("status")))
                    .col(string_null(name("user_id")))
                    .col(string_null(name("session_id")))
                    .col(big_integer_null(name("auth_time")))
                    .col(text_null(name("amr")))
                    .col(string_null(name("acr")))
                    .col(integer(name("poll_interval")))
                    .col(big_integer_null(name("last_polled_at")))
                    .col(big_integer(name("created_at")))
                    .col(big_integer(name("expires_at")))
                    .col(big_integer_null(name("decided_at")))
                    .col(big_integer_null(name("redeemed_at")))
                    .take(),
            )
            .await?;
        for (index, columns, unique) in [
            ("device_authorizations_by_user_code", &["user_code_hash"][..], true),
            ("device_authorizations_by_public_id", &["tenant_id", "public_id"][..], true),
            ("device_authorizations_by_expiry", &["expires_at"][..], false),
        ] {
            let mut create = Index::create();
            create.name(index).table(name("device_authorizations"));
            for column in columns {
                create.col(name(column));
            }
            if unique {
                create.unique();
            }
            manager.create_index(create.take()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(name("device_authorizations")).take()).await
    }
}
