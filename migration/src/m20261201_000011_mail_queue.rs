//! Outgoing mail as rows (a durable outbox): the request path only inserts one, a worker on any node
//! claims it with a lease, sends it, retries with backoff, and deletes it once delivered. The message
//! (recipient, subject, body, which may hold a sign-in code) is sealed under the tenant's data key.

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
                    .table(name("mail_queue"))
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(blob(name("sealed")))
                    .col(big_integer(name("created_at")))
                    // Not worth sending after this (a sign-in code that has expired).
                    .col(big_integer(name("deliver_until")))
                    .col(big_integer(name("next_attempt_at")))
                    .col(integer(name("attempts")).default(0))
                    // A worker holds the row until then; a crashed worker's lease simply runs out.
                    .col(big_integer_null(name("lease_until")))
                    .col(text_null(name("last_error")))
                    // Given up on (kept for the operator until swept).
                    .col(big_integer_null(name("failed_at")))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_mail_queue_due")
                    .table(name("mail_queue"))
                    .col(name("tenant_id"))
                    .col(name("next_attempt_at"))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(name("mail_queue")).take()).await
    }
}
