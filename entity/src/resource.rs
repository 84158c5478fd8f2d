use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "resources")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub uri: String,
    pub name: String,
    pub scopes: String,
    pub step_up: bool,
    /// A step-up resource that still accepts machine (agent) tokens.
    pub accepts_agents: bool,
    /// JSON list of the scopes granted to a request naming this resource without a scope; `None`: all.
    pub default_scopes: Option<String>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl crate::TenantOwned for Entity {
    fn tenant_column() -> Self::Column {
        Column::TenantId
    }
}
