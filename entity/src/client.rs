use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "clients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub client_id: String,
    pub name: String,
    pub secret_hash: Option<Vec<u8>>,
    pub secret_prefix: Option<String>,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub grant_types: String,
    pub scopes: String,
    pub first_party: bool,
    pub id_token_alg: String,
    pub access_token_alg: String,
    pub created_at: i64,
    pub registered_dynamically: bool,
    pub registration_token_hash: Option<String>,
    pub first_used_at: Option<i64>,
    pub registration_metadata: Option<String>,
    pub service_account_id: Option<String>,
    /// May introspect every token of the tenant.
    pub introspect_all: bool,
    /// JSON list of resource URIs whose tokens it may introspect.
    pub introspect_resources: String,
    /// UserInfo responses as a JWT signed with this algorithm; `None`: plain JSON.
    pub userinfo_alg: Option<String>,
    /// JSON list of origins allowed beyond the redirect URIs' own.
    pub allowed_origins: Option<String>,
    /// The secret a rotation replaced, valid until `previous_secret_expires_at` (SHA-256).
    pub previous_secret_hash: Option<Vec<u8>>,
    pub previous_secret_prefix: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl crate::TenantOwned for Entity {
    fn tenant_column() -> Self::Column {
        Column::TenantId
    }
}
