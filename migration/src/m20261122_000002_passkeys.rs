//! Passkeys (WebAuthn credentials), database-held ceremony state, recovery codes, and each user's
//! WebAuthn user handle.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn name(s: &str) -> Alias {
    Alias::new(s)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let s = |c: &str| string(name(c));
        let sn = |c: &str| string_null(name(c));
        let t = |c: &str| text(name(c));
        let i64c = |c: &str| big_integer(name(c));
        let i64n = |c: &str| big_integer_null(name(c));
        let b = |c: &str| boolean(name(c));

        // The random UUID the authenticator stores as the credential's user handle (WebAuthn §5.4.3):
        // never the user id or the email, so a discoverable credential reveals nothing.
        manager
            .alter_table(
                Table::alter()
                    .table(name("users"))
                    .add_column(sn("passkey_handle"))
                    .take(),
            )
            .await?;

        let tables: Vec<(&str, Vec<ColumnDef>)> = vec![
            (
                "passkeys",
                vec![
                    s("id").primary_key().take(),
                    s("tenant_id"),
                    s("user_id"),
                    // base64url credential id, unique per tenant
                    t("credential_id"),
                    s("name"),
                    // webauthn-rs `Passkey` as JSON: public key, counter, flags. No secret in it.
                    t("credential"),
                    sn("aaguid"),
                    b("backup_eligible"),
                    i64c("created_at"),
                    i64n("last_used_at"),
                ],
            ),
            (
                "webauthn_ceremonies",
                vec![
                    s("id").primary_key().take(),
                    s("tenant_id"),
                    s("kind"),
                    sn("user_id"),
                    sn("session_id"),
                    t("state"),
                    i64c("created_at"),
                    i64c("expires_at"),
                    i64n("consumed_at"),
                ],
            ),
            (
                "recovery_codes",
                vec![
                    s("code_hash").primary_key().take(),
                    s("tenant_id"),
                    s("user_id"),
                    i64c("created_at"),
                    i64n("used_at"),
                ],
            ),
        ];
        for (table_name, columns) in tables {
            let mut stmt = Table::create();
            stmt.table(name(table_name));
            for mut column in columns {
                stmt.col(&mut column);
            }
            manager.create_table(stmt.take()).await?;
        }
        let indexes: [(&str, &str, &[&str], bool); 4] = [
            ("passkeys", "ux_passkeys_credential", &["tenant_id", "credential_id"], true),
            ("passkeys", "ix_passkeys_user", &["tenant_id", "user_id"], false),
            ("recovery_codes", "ix_recovery_codes_user", &["tenant_id", "user_id"], false),
            ("users", "ux_users_passkey_handle", &["tenant_id", "passkey_handle"], true),
        ];
        for (table_name, index_name, columns, unique) in indexes {
            let mut stmt = Index::create();
            stmt.name(index_name).table(name(table_name));
            for column in columns {
                stmt.col(name(column));
            }
            if unique {
                stmt.unique();
            }
            manager.create_index(stmt.take()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table_name in ["recovery_codes", "webauthn_ceremonies", "passkeys"] {
            manager
                .drop_table(Table::drop().table(name(table_name)).take())
                .await?;
        }
        manager
            .drop_index(Index::drop().name("ux_users_passkey_handle").table(name("users")).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(name("users")).drop_column(name("passkey_handle")).take())
            .await
    }
}
