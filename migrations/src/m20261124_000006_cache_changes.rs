//! The changes that make cached data stale, for replicas on SQLite: every
//! write that changes what a server caches adds a row here in its own
//! transaction (as PostgreSQL sends a notification), and each server polls
//! for new rows. PostgreSQL has the table too, unused, so both schemas stay
//! alike.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CacheChanges::Table)
                    // AUTOINCREMENT on SQLite: ids never come back after
                    // old rows are pruned, so "newer than" stays true.
                    .col(big_pk_auto(CacheChanges::Id))
                    .col(text(CacheChanges::Payload))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CacheChanges::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum CacheChanges {
    Table,
    Id,
    Payload,
}
