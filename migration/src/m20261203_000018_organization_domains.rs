//! Verified domains of an organization (docs/sso.md): a domain an organization claims, the TXT
//! challenge that proves it controls the domain's DNS, and what the periodic re-check last found.
//! Several organizations may claim a domain; only one per tenant may hold it verified.

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
                    .table(name("organization_domains"))
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("organization_id")))
                    // Lower-case ASCII (IDNA A-labels), no trailing dot.
                    .col(string(name("domain")))
                    // The domain again while it is verified, else NULL: the unique index below lets one
                    // organization per tenant hold it verified (NULLs never collide), while any number
                    // may claim it, so a squatter's claim cannot block the real owner.
                    .col(string_null(name("verified_domain")))
                    .col(big_integer_null(name("verified_at")))
                    // When the periodic re-check last found the record.
                    .col(big_integer_null(name("checked_at")))
                    // Since when the re-check has not found the record (NULL: found, or never verified).
                    .col(big_integer_null(name("lost_at")))
                    .col(big_integer(name("created_at")))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_organization_domains_claim")
                    .table(name("organization_domains"))
                    .unique()
                    .col(name("tenant_id"))
                    .col(name("domain"))
                    .col(name("organization_id"))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_organization_domains_verified")
                    .table(name("organization_domains"))
                    .unique()
                    .col(name("tenant_id"))
                    .col(name("verified_domain"))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("organization_domains_by_organization")
                    .table(name("organization_domains"))
                    .col(name("tenant_id"))
                    .col(name("organization_id"))
                    .take(),
            )
            .await
    }
}
