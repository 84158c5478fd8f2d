//! SCIM 2.0 directories (docs/scim.md): one per organization, its bearer tokens (SHA-256 only), and
//! the users and groups the organization's identity provider provisions.
//!
//! A resource is kept as its canonical JSON document beside the columns queries use: the
//! case-folded `userName` (unique per directory, RFC 7643 §4.1.1), `externalId`, the display name,
//! and each email address in a table of its own, so `userName eq`, `externalId eq`, `id eq`,
//! `displayName eq` and `emails.value eq` are index lookups. Group members are rows, not part of the
//! group's document: concurrent PATCHes adding members to one group each insert their own rows, so
//! none is lost to another's write.

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
            .create_table(
                Table::create()
                    .table(name("scim_directories"))
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("organization_id")))
                    // JSON list of [group displayName, role] pairs; empty: groups map to no roles.
                    .col(text(name("role_map")))
                    .col(big_integer(name("created_at")))
                    .take(),
            )
            .await?;
        index(manager, "scim_directories_by_organization", "scim_directories", &["tenant_id", "organization_id"], true).await?;

        manager
            .create_table(
                Table::create()
                    .table(name("scim_tokens"))
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("directory_id")))
                    // SHA-256 (hex) of the bearer token; the token itself is shown once.
                    .col(string(name("token_hash")))
                    .col(string(name("prefix")))
                    .col(big_integer(name("created_at")))
                    .col(big_integer_null(name("last_used_at")))
                    .col(big_integer_null(name("revoked_at")))
                    .take(),
            )
            .await?;
        index(manager, "scim_tokens_by_hash", "scim_tokens", &["token_hash"], true).await?;
        index(manager, "scim_tokens_by_directory", "scim_tokens", &["tenant_id", "directory_id"], false).await?;

        manager
            .create_table(
                Table::create()
                    .table(name("scim_users"))
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("directory_id")))
                    .col(string(name("user_name")))
                    // userName case-folded: unique per directory, and what `userName eq` looks up.
                    .col(string(name("user_name_key")))
                    .col(string_null(name("external_id")))
                    .col(string_null(name("display_name_key")))
                    .col(boolean(name("active")))
                    // The Latchkey account the directory provisions, when it may (docs/scim.md).
                    .col(string_null(name("account_id")))
                    .col(text(name("document")))
                    .col(big_integer(name("version")))
                    .col(big_integer(name("created_at")))
                    .col(big_integer(name("updated_at")))
                    .take(),
            )
            .await?;
        index(manager, "scim_users_by_user_name", "scim_users", &["tenant_id", "directory_id", "user_name_key"], true).await?;
        index(manager, "scim_users_by_external_id", "scim_users", &["tenant_id", "directory_id", "external_id"], false).await?;
        index(manager, "scim_users_by_display_name", "scim_users", &["tenant_id", "directory_id", "display_name_key"], false).await?;
        // One directory user per account.
        index(manager, "scim_users_by_account", "scim_users", &["tenant_id", "account_id"], true).await?;

        manager
            .create_table(
                Table::create()
                    .table(name("scim_user_emails"))
                    .col(string(name("tenant_id")))
                    .col(string(name("directory_id")))
                    // Case-folded address.
                    .col(string(name("value_key")))
                    .col(string(name("user_id")))
                    .primary_key(Index::create().col(name("tenant_id")).col(name("directory_id")).col(name("value_key")).col(name("user_id")))
                    .take(),
            )
            .await?;
        index(manager, "scim_user_emails_by_user", "scim_user_emails", &["tenant_id", "user_id"], false).await?;

        manager
            .create_table(
                Table::create()
                    .table(name("scim_groups"))
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("directory_id")))
                    .col(string(name("display_name")))
                    .col(string(name("display_name_key")))
                    .col(string_null(name("external_id")))
                    .col(text(name("document")))
                    .col(big_integer(name("version")))
                    .col(big_integer(name("created_at")))
                    .col(big_integer(name("updated_at")))
                    .take(),
            )
            .await?;
        index(manager, "scim_groups_by_display_name", "scim_groups", &["tenant_id", "directory_id", "display_name_key"], false).await?;
        index(manager, "scim_groups_by_external_id", "scim_groups", &["tenant_id", "directory_id", "external_id"], false).await?;

        manager
            .create_table(
                Table::create()
                    .table(name("scim_group_members"))
                    .col(string(name("tenant_id")))
                    .col(string(name("group_id")))
                    .col(string(name("user_id")))
                    .primary_key(Index::create().col(name("tenant_id")).col(name("group_id")).col(name("user_id")))
                    .take(),
            )
            .await?;
        // Covering (the group id is in it): a user's groups are read from this index alone. Without
        // the group id, SQLite (no statistics) preferred scanning the tenant's part of the primary key.
        index(manager, "scim_group_members_by_user", "scim_group_members", &["tenant_id", "user_id", "group_id"], false).await
    }
}
