use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub slug: String,
    pub display_name: String,
    pub self_signup: bool,
    /// Every user must set up an authenticator app (TOTP).
    pub require_totp: bool,
    /// Dynamic client registration: `open`, `token` (an initial access token) or `closed`.
    pub registration_policy: String,
    /// Self-registered clients may use the client-credentials grant (default: no).
    pub registration_client_credentials: bool,
    /// JSON list of the RFC 9396 `authorization_details` types accepted (docs/approvals.md).
    pub authorization_details_types: String,
    pub wrapped_data_key: Vec<u8>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
