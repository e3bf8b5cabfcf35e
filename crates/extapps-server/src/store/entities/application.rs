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
    /// JSON of `domain::scope_grants::ScopeGrants`.
    #[sea_orm(column_type = "Text")]
    pub grants: String,
    /// JSON array of strings.
    #[sea_orm(column_type = "Text")]
    pub redirect_urls: String,
    pub revision: i64,
    /// Tokens issued before this time (µs) are revoked; read only for
    /// tokens issued before tokens carried their credential.
    pub tokens_not_before: Option<i64>,
    pub create_time: i64,
    pub update_time: i64,
    /// JSON of `domain::token_rules::ScopeRemovals`.
    #[sea_orm(column_type = "Text")]
    pub scope_removals: String,
    /// JSON of `domain::token_rules::CredentialCutoffs`.
    #[sea_orm(column_type = "Text")]
    pub credential_cutoffs: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
