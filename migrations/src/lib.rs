//! Schema migrations of the extapps database, for SQLite and PostgreSQL.
//!
//! Append-only: a migration that has landed is never edited; change the schema
//! with a new one. Migrations name tables and columns with their own `Iden`
//! enums, never the server's entities, so they stay what they were when written.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_initial;
mod m20261124_000002_revoked_tokens;
mod m20261124_000003_keys_out_of_the_database;
mod m20261124_000004_user_access;
mod m20261124_000005_display_name_keys;
mod m20261124_000006_cache_changes;
mod m20261206_000007_token_revisions;
mod m20261206_000008_display_name_keys_without_ignorables;
mod m20261207_000009_secret_descriptions;
mod m20261207_000010_replaced_secrets_before_descriptions;
mod m20261207_000011_client_keys_and_assertions;
mod m20261207_000012_federated_credentials;
mod m20261207_000013_assertions_once_per_issuer;
mod m20261207_000014_used_assertions_outlive_applications;
mod m20261207_000015_used_assertions_keyed_by_issuer_and_jti;

/// Applies the migrations of this crate in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_initial::Migration),
            Box::new(m20261124_000002_revoked_tokens::Migration),
            Box::new(m20261124_000003_keys_out_of_the_database::Migration),
            Box::new(m20261124_000004_user_access::Migration),
            Box::new(m20261124_000005_display_name_keys::Migration),
            Box::new(m20261124_000006_cache_changes::Migration),
            Box::new(m20261206_000007_token_revisions::Migration),
            Box::new(m20261206_000008_display_name_keys_without_ignorables::Migration),
            Box::new(m20261207_000009_secret_descriptions::Migration),
            Box::new(m20261207_000010_replaced_secrets_before_descriptions::Migration),
            Box::new(m20261207_000011_client_keys_and_assertions::Migration),
            Box::new(m20261207_000012_federated_credentials::Migration),
            Box::new(m20261207_000013_assertions_once_per_issuer::Migration),
            Box::new(m20261207_000014_used_assertions_outlive_applications::Migration),
            Box::new(m20261207_000015_used_assertions_keyed_by_issuer_and_jti::Migration),
        ]
    }
}
