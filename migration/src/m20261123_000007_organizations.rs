//! Organizations (customer companies inside a tenant), their members and roles, service accounts (bot
//! identities of an organization) and their long-lived agent tokens; a client may belong to a service
//! account (its client-credentials identity).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn name(s: &str) -> Alias {
    Alias::new(s)
}

async fn unique(manager: &SchemaManager<'_>, index: &str, table: &str, cols: &[&str]) -> Result<(), DbErr> {
    let mut create = Index::create();
    create.name(index).table(name(table)).unique();
    for col in cols {
        create.col(name(col));
    }
    manager.create_index(create.take()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(name("organizations"))
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    // Immutable: tokens and permission rules name the organization by it.
                    .col(string(name("slug")))
                    .col(string(name("name")))
                    .col(big_integer(name("created_at")))
                    .take(),
            )
            .await?;
        unique(manager, "ux_organizations_slug", "organizations", &["tenant_id", "slug"]).await?;
        manager
            .create_table(
                Table::create()
                    .table(name("organization_members"))
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("organization_id")))
                    .col(string(name("user_id")))
                    // JSON list of role names.
                    .col(text(name("roles")))
                    .col(big_integer(name("created_at")))
                    .take(),
            )
            .await?;
        // A person belongs to at most one organization of a tenant (docs/organizations.md).
        unique(manager, "ux_organization_members_user", "organization_members", &["tenant_id", "user_id"]).await?;
        manager
            .create_table(
                Table::create()
                    .table(name("service_accounts"))
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("organization_id")))
                    .col(string(name("name")))
                    // The confidential client it authenticates as for client_credentials.
                    .col(string(name("client_id")))
                    .col(text(name("roles")))
                    .col(text(name("scopes")))
                    .col(big_integer(name("created_at")))
                    .col(big_integer_null(name("disabled_at")))
                    .take(),
            )
            .await?;
        unique(manager, "ux_service_accounts_client", "service_accounts", &["tenant_id", "client_id"]).await?;
        manager
            .create_table(
                Table::create()
                    .table(name("agent_tokens"))
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("service_account_id")))
                    .col(string(name("name")))
                    // SHA-256 (hex) of the token; the token itself is shown once.
                    .col(string(name("token_hash")))
                    .col(string(name("prefix")))
                    .col(text(name("scopes")))
                    // 1..=3 while the token may be active, NULL once revoked or expired: the unique
                    // index below makes the cap of three active tokens hold across racing creators.
                    .col(integer_null(name("slot")))
                    .col(big_integer(name("created_at")))
                    .col(big_integer(name("expires_at")))
                    .col(big_integer_null(name("last_used_at")))
                    .col(big_integer_null(name("revoked_at")))
                    .take(),
            )
            .await?;
        unique(manager, "ux_agent_tokens_hash", "agent_tokens", &["token_hash"]).await?;
        unique(manager, "ux_agent_tokens_slot", "agent_tokens", &["service_account_id", "slot"]).await?;
        manager
            .alter_table(Table::alter().table(name("clients")).add_column(string_null(name("service_account_id"))).take())
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(name("clients")).drop_column(name("service_account_id")).take())
            .await?;
        for table in ["agent_tokens", "service_accounts", "organization_members", "organizations"] {
            manager.drop_table(Table::drop().table(name(table)).take()).await?;
        }
        Ok(())
    }
}
