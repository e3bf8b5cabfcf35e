//! Federated credentials: the outside identity providers' tokens an
//! application accepts as client assertions, each for one exact issuer,
//! subject and audience (unique per application). They go with their
//! application.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(FederatedCredentials::Table)
                    .col(string(FederatedCredentials::Id).primary_key())
                    .col(string(FederatedCredentials::ApplicationId))
                    .col(text(FederatedCredentials::Issuer))
                    .col(text(FederatedCredentials::Subject))
                    .col(text(FederatedCredentials::Audience))
                    .col(text(FederatedCredentials::Description).default(""))
                    .col(big_integer(FederatedCredentials::CreateTime))
                    .col(big_integer_null(FederatedCredentials::LastUseTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("federated_credentials_application")
                            .from(
                                FederatedCredentials::Table,
                                FederatedCredentials::ApplicationId,
                            )
                            .to(Applications::Table, Applications::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("federated_credentials_triple")
                    .table(FederatedCredentials::Table)
                    .col(FederatedCredentials::ApplicationId)
                    .col(FederatedCredentials::Issuer)
                    .col(FederatedCredentials::Subject)
                    .col(FederatedCredentials::Audience)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(FederatedCredentials::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Applications {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum FederatedCredentials {
    Table,
    Id,
    ApplicationId,
    Issuer,
    Subject,
    Audience,
    Description,
    CreateTime,
    LastUseTime,
}
