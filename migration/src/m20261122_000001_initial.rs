use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn name(s: &str) -> Alias {
    Alias::new(s)
}

/// `CREATE TABLE` with the given columns; the first column is the primary key.
fn table(table_name: &str, columns: Vec<ColumnDef>) -> TableCreateStatement {
    let mut stmt = Table::create();
    stmt.table(name(table_name));
    for mut column in columns {
        stmt.col(&mut column);
    }
    stmt.take()
}

fn index(
    table_name: &str,
    index_name: &str,
    columns: &[&str],
    unique: bool,
) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(index_name).table(name(table_name));
    for column in columns {
        stmt.col(name(column));
    }
    if unique {
        stmt.unique();
    }
    stmt.take()
}

fn text_pk(column: &str) -> ColumnDef {
    string(name(column)).primary_key().take()
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
        let bin = |c: &str| blob(name(c));

        let tables = vec![
            table(
                "tenants",
                vec![
                    text_pk("id"),
                    s("slug").unique_key().take(),
                    s("display_name"),
                    b("self_signup"),
                    bin("wrapped_data_key"),
                    i64c("created_at"),
                ],
            ),
            table(
                "signing_keys",
                vec![
                    text_pk("kid"),
                    s("tenant_id"),
                    s("alg"),
                    bin("sealed_private_key"),
                    t("public_jwk"),
                    i64c("created_at"),
                    i64n("retired_at"),
                    i64n("publish_until"),
                ],
            ),
            table(
                "users",
                vec![
                    text_pk("id"),
                    s("tenant_id"),
                    s("email"),
                    b("email_verified"),
                    i64c("created_at"),
                    i64n("last_sign_in_at"),
                    i64n("disabled_at"),
                ],
            ),
            table(
                "clients",
                vec![
                    text_pk("id"),
                    s("tenant_id"),
                    s("client_id"),
                    s("name"),
                    blob_null(name("secret_hash")),
                    sn("secret_prefix"),
                    t("redirect_uris"),
                    t("post_logout_redirect_uris"),
                    t("grant_types"),
                    t("scopes"),
                    b("first_party"),
                    s("id_token_alg"),
                    s("access_token_alg"),
                    i64c("created_at"),
                ],
            ),
            table(
                "email_codes",
                vec![
                    text_pk("id"),
                    s("tenant_id"),
                    s("email"),
                    bin("code_hash"),
                    integer(name("attempts")),
                    i64c("created_at"),
                    i64c("expires_at"),
                    i64n("consumed_at"),
                ],
            ),
            table(
                "sessions",
                vec![
                    text_pk("id"),
                    s("tenant_id"),
                    s("user_id"),
                    i64c("created_at"),
                    i64c("last_seen_at"),
                    i64c("expires_at"),
                    i64c("auth_time"),
                    t("amr"),
                    s("acr"),
                    sn("ip"),
                    text_null(name("user_agent")),
                    i64n("ended_at"),
                ],
            ),
            table(
                "authorization_requests",
                vec![
                    text_pk("id"),
                    s("tenant_id"),
                    s("client_id"),
                    t("params"),
                    i64c("created_at"),
                    i64c("expires_at"),
                ],
            ),
            table(
                "authorization_codes",
                vec![
                    text_pk("code_hash"),
                    s("tenant_id"),
                    s("client_id"),
                    s("user_id"),
                    s("session_id"),
                    t("redirect_uri"),
                    t("scope"),
                    text_null(name("nonce")),
                    s("code_challenge"),
                    i64c("auth_time"),
                    t("amr"),
                    s("acr"),
                    i64c("created_at"),
                    i64c("expires_at"),
                    i64n("consumed_at"),
                    sn("family_id"),
                ],
            ),
            table(
                "refresh_families",
                vec![
                    text_pk("id"),
                    s("tenant_id"),
                    s("client_id"),
                    s("user_id"),
                    sn("session_id"),
                    t("scope"),
                    i64c("auth_time"),
                    t("amr"),
                    s("acr"),
                    i64c("created_at"),
                    i64c("last_used_at"),
                    i64c("absolute_expires_at"),
                    i64n("revoked_at"),
                    sn("revoked_reason"),
                ],
            ),
            table(
                "refresh_tokens",
                vec![
                    text_pk("token_hash"),
                    s("tenant_id"),
                    s("family_id"),
                    s("prefix"),
                    i64c("created_at"),
                    i64n("rotated_at"),
                ],
            ),
            table(
                "access_tokens",
                vec![
                    text_pk("jti"),
                    s("tenant_id"),
                    sn("family_id"),
                    s("client_id"),
                    i64c("expires_at"),
                    i64n("revoked_at"),
                ],
            ),
            table(
                "consents",
                vec![
                    text_pk("id"),
                    s("tenant_id"),
                    s("user_id"),
                    s("client_id"),
                    t("scopes"),
                    i64c("granted_at"),
                ],
            ),
            // Append-only. `id` orders events; a later hash chain can add prev_hash/hash columns.
            table(
                "audit_events",
                vec![
                    big_pk_auto(name("id")),
                    sn("tenant_id"),
                    i64c("occurred_at"),
                    s("actor"),
                    s("action"),
                    text_null(name("target")),
                    s("outcome"),
                    sn("ip"),
                    text_null(name("user_agent")),
                    text_null(name("details")),
                ],
            ),
        ];
        for stmt in tables {
            manager.create_table(stmt).await?;
        }

        let indexes = vec![
            index(
                "signing_keys",
                "ix_signing_keys_tenant",
                &["tenant_id"],
                false,
            ),
            index(
                "users",
                "ux_users_tenant_email",
                &["tenant_id", "email"],
                true,
            ),
            index(
                "clients",
                "ux_clients_tenant_client_id",
                &["tenant_id", "client_id"],
                true,
            ),
            index(
                "email_codes",
                "ix_email_codes_tenant_email",
                &["tenant_id", "email"],
                false,
            ),
            index(
                "sessions",
                "ix_sessions_tenant_user",
                &["tenant_id", "user_id"],
                false,
            ),
            index(
                "refresh_families",
                "ix_refresh_families_tenant_user",
                &["tenant_id", "user_id"],
                false,
            ),
            index(
                "refresh_families",
                "ix_refresh_families_session",
                &["tenant_id", "session_id"],
                false,
            ),
            index(
                "refresh_tokens",
                "ix_refresh_tokens_family",
                &["tenant_id", "family_id"],
                false,
            ),
            index(
                "access_tokens",
                "ix_access_tokens_family",
                &["tenant_id", "family_id"],
                false,
            ),
            index(
                "consents",
                "ux_consents_tenant_user_client",
                &["tenant_id", "user_id", "client_id"],
                true,
            ),
            index(
                "audit_events",
                "ix_audit_events_tenant_time",
                &["tenant_id", "occurred_at"],
                false,
            ),
        ];
        for stmt in indexes {
            manager.create_index(stmt).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "audit_events",
            "consents",
            "access_tokens",
            "refresh_tokens",
            "refresh_families",
            "authorization_codes",
            "authorization_requests",
            "sessions",
            "email_codes",
            "clients",
            "users",
            "signing_keys",
            "tenants",
        ] {
            manager
                .drop_table(Table::drop().table(name(t)).to_owned())
                .await?;
        }
        Ok(())
    }
}
