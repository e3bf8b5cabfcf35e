//! The keys that sealed tokens no longer live in the database: they come
//! from the server's key ring (a key file or the environment). This drops
//! `server_keys`, whose keys anyone with a copy of the database could have
//! used to mint tokens, and empties the saved responses of creating calls
//! sealed the old way (under a key derived from the request ID alone): a
//! retry of such a call is still recognized, and answered
//! `SAVED_RESPONSE_UNAVAILABLE` instead of being carried out again. Tokens
//! and page tokens issued before the upgrade stop working; clients request
//! new ones.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ServerKeys::Table).to_owned())
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(IdempotencyRecords::Table)
                    .value(IdempotencyRecords::Response, Vec::<u8>::new())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The old keys are gone for good: an empty table, as before first use.
        manager
            .create_table(
                Table::create()
                    .table(ServerKeys::Table)
                    .col(string(ServerKeys::Name).primary_key())
                    .col(blob(ServerKeys::Material))
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ServerKeys {
    Table,
    Name,
    Material,
}

#[derive(DeriveIden)]
enum IdempotencyRecords {
    Table,
    Response,
}
