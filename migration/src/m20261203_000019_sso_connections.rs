//! Single sign-on connections (docs/sso.md): an organization's identity provider (OIDC or SAML), the
//! IdP identities linked to accounts (keyed by the IdP's immutable id, one way in per account), and the
//! sign-in requests sent to an IdP, each answered at most once by the browser that started it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn name(s: &str) -> Alias {
    Alias::new(s)
}

async fn index(manager: &SchemaManager<'_>, index: &str, table: &str, cols: &[&str], unique: bool) -> Result<(), DbErr> {
    let mut create = Index::create();
    create.name(index).table(name(table));
    if unique {
        create.unique();
    }
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
                    .table(name("sso_connections"))
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("organization_id")))
                    // `oidc` or `saml`.
                    .col(string(name("protocol")))
                    .col(string(name("name")))
                    // JSON: the protocol's settings (issuer, client id, allowed Entra tenants, …).
                    .col(text(name("settings")))
                    // A client secret, sealed with the tenant's data key; NULL when there is none.
                    .col(text_null(name("sealed_secret")))
                    // Whether a passkey is still required after the IdP's sign-in (default: yes).
                    .col(boolean(name("require_passkey")))
                    .col(big_integer_null(name("disabled_at")))
                    .col(big_integer(name("created_at")))
                    .col(big_integer(name("updated_at")))
                    .take(),
            )
            .await?;
        index(manager, "sso_connections_by_organization", "sso_connections", &["tenant_id", "organization_id"], false).await?;
        manager
            .create_table(
                Table::create()
                    .table(name("sso_identities"))
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("connection_id")))
                    // The IdP's immutable id for the person (Entra: tid + oid; others: iss + sub).
                    .col(string(name("subject")))
                    .col(string(name("user_id")))
                    .col(big_integer(name("created_at")))
                    .col(big_integer(name("last_used_at")))
                    .take(),
            )
            .await?;
        index(manager, "ux_sso_identities_subject", "sso_identities", &["tenant_id", "connection_id", "subject"], true).await?;
        // One way in per account: an account linked to one connection cannot be linked to another.
        index(manager, "ux_sso_identities_user", "sso_identities", &["tenant_id", "user_id"], true).await?;
        manager
            .create_table(
                Table::create()
                    .table(name("sso_requests"))
                    // SHA-256 (hex) of the `state` sent to the IdP.
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("connection_id")))
                    // SHA-256 of the value in the browser's cookie: only that browser may finish it.
                    .col(string(name("binding_hash")))
                    // The PKCE verifier, sealed with the tenant's data key (sent to the token endpoint).
                    .col(text_null(name("sealed_verifier")))
                    // SHA-256 of the nonce the ID token must carry.
                    .col(string_null(name("nonce_hash")))
                    // The authorization request to resume afterwards.
                    .col(string_null(name("pending_request_id")))
                    .col(big_integer(name("created_at")))
                    .col(big_integer(name("expires_at")))
                    .col(big_integer_null(name("consumed_at")))
                    .take(),
            )
            .await?;
        index(manager, "sso_requests_by_expiry", "sso_requests", &["tenant_id", "expires_at"], false).await
    }
}
