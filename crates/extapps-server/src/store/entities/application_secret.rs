//! `application_secrets`: argon2id hashes of client secrets, never secrets.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "application_secrets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub application_id: String,
    /// PHC string of the argon2id hash.
    #[sea_orm(column_type = "Text")]
    pub phc: String,
    pub create_time: i64,
    pub expire_time: Option<i64>,
    pub last_use_time: Option<i64>,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    /// When a newer secret replaced this one (its expiry is then the end
    /// of its grace period).
    pub replace_time: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
