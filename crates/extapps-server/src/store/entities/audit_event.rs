//! `audit_events`: the append-only log of changes.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization: Option<String>,
    pub application_id: Option<String>,
    pub actor: String,
    pub action: String,
    /// JSON of the application before the change.
    #[sea_orm(column_type = "Text", nullable)]
    pub before: Option<String>,
    /// JSON of the application after the change.
    #[sea_orm(column_type = "Text", nullable)]
    pub after: Option<String>,
    /// JSON object of string details.
    #[sea_orm(column_type = "Text")]
    pub details: String,
    pub create_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
