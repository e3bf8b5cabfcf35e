//! A client assertion is accepted once whichever application presents it:
//! an outside provider's token (the same issuer and `jti`) is refused when
//! a second application that trusts the same issuer, subject and audience
//! presents it. For `private_key_jwt` the issuer is the client itself, so
//! nothing changes there.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("used_assertions_issuer_jti")
                    .table(UsedAssertions::Table)
                    .col(UsedAssertions::Issuer)
                    .col(UsedAssertions::Jti)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("used_assertions_issuer_jti")
                    .table(UsedAssertions::Table)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum UsedAssertions {
    Table,
    Issuer,
    Jti,
}
