//! Approvals (docs/approvals.md): OpenID CIBA poll mode with RFC 9396 authorization details.
//!
//! An `approvals` row is what a person is asked: one client, one person, one set of authorization
//! details, answered once (approved or denied) and, when approved, turned into a token once. A
//! `ciba_requests` row is one `auth_req_id` a client polls with (stored as its SHA-256). An identical
//! backchannel request by the same client while an approval is open joins it with a new `auth_req_id`
//! instead of asking the person again: `open_key` holds the request's digest while the approval can
//! still be answered or redeemed, NULL afterwards, and is unique per tenant, so two nodes racing to
//! open the same approval make one.
//!
//! Tenants name the `authorization_details` types they accept (RFC 9396 §2, §10).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn name(s: &str) -> Alias {
    Alias::new(s)
}

async fn index(manager: &SchemaManager<'_>, index_name: &str, table: &str, columns: &[&str], unique: bool) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(index_name).table(name(table));
    for column in columns {
        index.col(name(column));
    }
    if unique {
        index.unique();
    }
    manager.create_index(index.take()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(name("tenants"))
                    // JSON list of the RFC 9396 types this tenant accepts; empty: none.
                    .add_column(text(name("authorization_details_types")).default("[]"))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("approvals"))
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("client_id")))
                    .col(string(name("user_id")))
                    // SHA-256 of client + request while open; NULL once redeemed or expired.
                    .col(string_null(name("open_key")))
                    .col(text(name("scope")))
                    .col(string_null(name("resource")))
                    .col(string_null(name("binding_message")))
                    // The checked RFC 9396 authorization details (JSON array).
                    .col(text(name("authorization_details")))
                    // pending, approved or denied.
                    .col(string(name("status")))
                    .col(big_integer(name("created_at")))
                    .col(big_integer(name("expires_at")))
                    .col(big_integer_null(name("decided_at")))
                    // The passkey assertion that approved: when, how (amr JSON), in which session.
                    .col(big_integer_null(name("auth_time")))
                    .col(text_null(name("amr")))
                    .col(string_null(name("session_id")))
                    .col(big_integer_null(name("redeemed_at")))
                    // How many auth_req_ids point here (capped: joins cannot grow it without bound).
                    .col(integer(name("handles")).default(0))
                    .take(),
            )
            .await?;
        index(manager, "approvals_open", "approvals", &["tenant_id", "open_key"], true).await?;
        index(manager, "approvals_by_user", "approvals", &["tenant_id", "user_id", "expires_at"], false).await?;
        index(manager, "approvals_by_client", "approvals", &["tenant_id", "client_id", "expires_at"], false).await?;
        index(manager, "approvals_by_expiry", "approvals", &["expires_at"], false).await?;
        manager
            .create_table(
                Table::create()
                    .table(name("ciba_requests"))
                    // SHA-256 of the auth_req_id: the value itself is only the client's.
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("approval_id")))
                    .col(string(name("client_id")))
                    // Seconds the client must wait between polls (CIBA §7.3), raised by slow_down.
                    .col(integer(name("poll_interval")))
                    .col(big_integer_null(name("last_polled_at")))
                    .col(big_integer(name("created_at")))
                    .col(big_integer(name("expires_at")))
                    .take(),
            )
            .await?;
        index(manager, "ciba_requests_by_expiry", "ciba_requests", &["expires_at"], false).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(name("ciba_requests")).take()).await?;
        manager.drop_table(Table::drop().table(name("approvals")).take()).await?;
        manager
            .alter_table(Table::alter().table(name("tenants")).drop_column(name("authorization_details_types")).take())
            .await
    }
}
