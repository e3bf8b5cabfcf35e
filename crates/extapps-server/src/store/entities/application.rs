//! `applications`: one row per registered application.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "applications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub organization: String,
    pub display_name: String,
    /// Unique per organization: the name without regard to case.
    pub display_name_key: String,
    pub app_type: String,
    /// JSON of `domain::grants::Grants`.
    #[sea_orm(column_type = "Text")]
    pub grants: String,
    /// JSON array of strings.
    #[sea_orm(column_type = "Text")]
    pub redirect_urls: String,
    pub revision: i64,
    /// Tokens issued before this time (µs) are revoked.
    pub tokens_not_before: Option<i64>,
    pub create_time: i64,
    pub update_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
