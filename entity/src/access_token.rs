use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "access_tokens")]
/// Keyed by `(tenant_id, jti)` (migration 9; on SQLite a `WITHOUT ROWID` table).
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub jti: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    pub family_id: Option<String>,
    pub client_id: String,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl crate::TenantOwned for Entity {
    fn tenant_column() -> Self::Column {
        Column::TenantId
    }
}
