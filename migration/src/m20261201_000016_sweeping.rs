//! Expired rows are swept on a schedule: one node at a time holds the job's lease (a row here, taken by
//! a conditional UPDATE), and the tables swept by expiry get an index on it so a sweep does not read
//! every row.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn name(s: &str) -> Alias {
    Alias::new(s)
}

/// (index, table, column) for each table swept by an expiry column (the token tables are swept by
/// their creation time, without an index: a scan is cheaper than a second B-tree on every write).
const INDEXES: [(&str, &str, &str); 4] = [
    ("ix_authorization_requests_expiry", "authorization_requests", "expires_at"),
    ("ix_webauthn_ceremonies_expiry", "webauthn_ceremonies", "expires_at"),
    ("ix_email_codes_expiry", "email_codes", "expires_at"),
    ("ix_authorization_codes_expiry", "authorization_codes", "expires_at"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(name("maintenance_leases"))
                    .col(string(name("job")).primary_key())
                    .col(string(name("holder")))
                    .col(big_integer(name("held_until")))
                    .take(),
            )
            .await?;
        for (index, table, column) in INDEXES {
            manager
                .create_index(Index::create().name(index).table(name(table)).col(name("tenant_id")).col(name(column)).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (index, table, _) in INDEXES {
            manager.drop_index(Index::drop().name(index).table(name(table)).to_owned()).await?;
        }
        manager.drop_table(Table::drop().table(name("maintenance_leases")).to_owned()).await
    }
}
