//! `user_grants`: what a user authorized an application to do, with the
//! digest of the grant's single-use code and the generation of its current
//! refresh token.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_grants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub application_id: String,
    pub subject: String,
    /// The user scopes consented to, space-separated.
    #[sea_orm(column_type = "Text")]
    pub scopes: String,
    pub offline_access: bool,
    pub create_time: i64,
    /// The last redemption of its code or refresh token (µs).
    pub update_time: i64,
    /// After this (µs) nothing of the grant works and the row is purged.
    pub expire_time: i64,
    pub revoke_time: Option<i64>,
    pub code_digest: String,
    pub code_expire_time: i64,
    pub code_redeem_time: Option<i64>,
    #[sea_orm(column_type = "Text")]
    pub redirect_uri: String,
    /// The authorization request named `redirect_uri`, so the token request
    /// must name the same.
    pub redirect_uri_given: bool,
    pub code_challenge: Option<String>,
    /// The generation of the current refresh token; `None` without
    /// `offline_access` or before the code is redeemed.
    pub refresh_generation: Option<i64>,
    pub refresh_expire_time: Option<i64>,
    /// When the refresh token last rotated (µs).
    pub rotate_time: Option<i64>,
    /// The application's revision when the user consented: a scope removed
    /// at a later revision never comes back to this grant.
    pub revision: i64,
    /// The credential (a secret's ID) that authenticated the client when
    /// the current refresh token was issued, if any.
    pub refresh_credential: Option<String>,
    /// The application's revision that refresh token was issued at.
    pub refresh_revision: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
