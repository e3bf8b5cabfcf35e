//! `application_keys`: public keys (JWK) of applications, for
//! `private_key_jwt`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "application_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub application_id: String,
    /// JWS name: ES256, EdDSA, RS256 or PS256.
    pub algorithm: String,
    /// RFC 7638, unique per application.
    pub thumbprint: String,
    /// The public JWK, with `alg` set.
    #[sea_orm(column_type = "Text")]
    pub jwk: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    pub create_time: i64,
    pub expire_time: Option<i64>,
    pub last_use_time: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
