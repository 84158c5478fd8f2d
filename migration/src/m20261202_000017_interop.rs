//! What real clients need: the standard profile of a person (OIDC Core §5.1), the browser origins a
//! client may call from (CORS: its own list, and every origin it allows as rows a preflight finds by
//! index), a signed UserInfo response, the ID-token claims a request asked for, and a resource's
//! default scopes for requests that name it without a scope.

use sea_orm_migration::{prelude::*, schema::*, sea_orm::ConnectionTrait};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Nullable text columns, one ALTER each (SQLite takes a single change per statement).
const TEXT_COLUMNS: [(&str, &str); 11] = [
    ("users", "name"),
    ("users", "given_name"),
    ("users", "family_name"),
    ("users", "preferred_username"),
    ("users", "locale"),
    ("users", "zoneinfo"),
    ("users", "picture"),
    // The signing algorithm of UserInfo responses as a JWT; NULL: plain JSON.
    ("clients", "userinfo_alg"),
    // JSON list of origins an operator or a registration allowed beyond the redirect URIs' own.
    ("clients", "allowed_origins"),
    // JSON list of the scopes granted when a request names this resource and no scope; NULL: all.
    ("resources", "default_scopes"),
    // JSON list of claims the `claims` request parameter asked for in the ID token.
    ("authorization_codes", "id_token_claims"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in TEXT_COLUMNS {
            manager
                .alter_table(Table::alter().table(Alias::new(table)).add_column(text_null(Alias::new(column))).take())
                .await?;
        }
        // When the profile last changed (OIDC Core §5.1 `updated_at`); NULL: never, since creation.
        manager
            .alter_table(Table::alter().table(Alias::new("users")).add_column(big_integer_null(Alias::new("updated_at"))).take())
            .await?;
        // Every origin a client allows, one row each: a CORS preflight names no client, and asks "does
        // any client of this tenant allow this origin?" of the primary key.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("client_origins"))
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("origin")))
                    .col(string(Alias::new("client_id")))
                    .primary_key(Index::create().col(Alias::new("tenant_id")).col(Alias::new("origin")).col(Alias::new("client_id")))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("client_origins_by_client")
                    .table(Alias::new("client_origins"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("client_id"))
                    .take(),
            )
            .await?;
        // Existing clients: their redirect URIs' web origins, so browser apps already registered work.
        let db = manager.get_connection();
        let select = Query::select()
            .columns([Alias::new("tenant_id"), Alias::new("client_id"), Alias::new("redirect_uris")])
            .from(Alias::new("clients"))
            .take();
        for row in db.query_all(&select).await? {
            let tenant_id: String = row.try_get("", "tenant_id")?;
            let client_id: String = row.try_get("", "client_id")?;
            let redirect_uris: String = row.try_get("", "redirect_uris")?;
            let uris: Vec<String> = serde_json::from_str(&redirect_uris).unwrap_or_default();
            let mut origins: Vec<String> = Vec::new();
            for uri in uris {
                if let Ok(url) = url::Url::parse(&uri)
                    && matches!(url.scheme(), "http" | "https")
                {
                    let origin = url.origin().ascii_serialization();
                    if !origins.contains(&origin) {
                        origins.push(origin);
                    }
                }
            }
            for origin in origins {
                let mut insert = Query::insert();
                insert
                    .into_table(Alias::new("client_origins"))
                    .columns([Alias::new("tenant_id"), Alias::new("origin"), Alias::new("client_id")])
                    .values([tenant_id.clone().into(), origin.into(), client_id.clone().into()])
                    .map_err(|e| DbErr::Custom(e.to_string()))?;
                manager.exec_stmt(insert).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new("client_origins")).take()).await?;
        for (table, column) in TEXT_COLUMNS.into_iter().chain([("users", "updated_at")]) {
            manager.alter_table(Table::alter().table(Alias::new(table)).drop_column(Alias::new(column)).take()).await?;
        }
        Ok(())
    }
}
