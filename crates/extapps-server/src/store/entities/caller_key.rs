//! `caller_keys`: SHA-256 digests of the keys gRPC callers present.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "caller_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub organization: Option<String>,
    pub role: String,
    /// JSON array of resource IDs an `introspect` key is bound to.
    #[sea_orm(column_type = "Text")]
    pub resources: String,
    #[sea_orm(unique)]
    pub digest: String,
    pub create_time: i64,
    pub revoke_time: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
