use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
/// Keyed by `(tenant_id, token_hash)` (migration 9; on SQLite a `WITHOUT ROWID` table).
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    pub family_id: String,
    pub prefix: String,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::refresh_family::Entity",
        from = "Column::FamilyId",
        to = "super::refresh_family::Column::Id"
    )]
    Family,
}

impl Related<super::refresh_family::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Family.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

impl crate::TenantOwned for Entity {
    fn tenant_column() -> Self::Column {
        Column::TenantId
    }
}
