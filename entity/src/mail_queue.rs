use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mail_queue")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    /// Recipient, subject and body, sealed under the tenant's data key.
    pub sealed: Vec<u8>,
    pub created_at: i64,
    pub deliver_until: i64,
    pub next_attempt_at: i64,
    pub attempts: i32,
    pub lease_until: Option<i64>,
    pub last_error: Option<String>,
    pub failed_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl crate::TenantOwned for Entity {
    fn tenant_column() -> Self::Column {
        Column::TenantId
    }
}
