use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sso_connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub organization_id: String,
    pub protocol: String,
    pub name: String,
    pub settings: String,
    pub sealed_secret: Option<String>,
    pub require_passkey: bool,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl crate::TenantOwned for Entity {
    fn tenant_column() -> Self::Column {
        Column::TenantId
    }
}
