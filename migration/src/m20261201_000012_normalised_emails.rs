//! Addresses stored as typed (the CLI kept `Mixed.Case@…`) become the lower-cased form every sign-in
//! looks up, so those accounts can sign in. Where the lower-cased address already exists in the
//! tenant, the row is left as it is (two accounts cannot be merged by a migration).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"UPDATE "users" SET "email" = LOWER(TRIM("email"))
WHERE "email" <> LOWER(TRIM("email"))
  AND NOT EXISTS (SELECT 1 FROM "users" AS "other" WHERE "other"."tenant_id" = "users"."tenant_id" AND "other"."email" = LOWER(TRIM("users"."email")))"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // Nothing to undo: the original spelling is not kept.
        Ok(())
    }
}
