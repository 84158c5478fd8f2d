use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organization_domains")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub organization_id: String,
    pub domain: String,
    pub verified_domain: Option<String>,
    pub verified_at: Option<i64>,
    pub checked_at: Option<i64>,
    pub lost_at: Option<i64>,
    pub created_at: i64,
    pub enforce_sso: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl crate::TenantOwned for Entity {
    fn tenant_column() -> Self::Column {
        Column::TenantId
    }
}
