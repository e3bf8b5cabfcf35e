//! Applications without a shared secret: `application_keys` holds the
//! public keys an application signs its `private_key_jwt` assertions with
//! (a JWK of its public half only, known by its RFC 7638 thumbprint, one of
//! each per application); `used_assertions` remembers each assertion's
//! `jti` until the assertion expires, so that an assertion is accepted once
//! across every replica. Both go with their application.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApplicationKeys::Table)
                    .col(string(ApplicationKeys::Id).primary_key())
                    .col(string(ApplicationKeys::ApplicationId))
                    .col(string(ApplicationKeys::Algorithm))
                    .col(string(ApplicationKeys::Thumbprint))
                    .col(text(ApplicationKeys::Jwk))
                    .col(text(ApplicationKeys::Description).default(""))
                    .col(big_integer(ApplicationKeys::CreateTime))
                    .col(big_integer_null(ApplicationKeys::ExpireTime))
                    .col(big_integer_null(ApplicationKeys::LastUseTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("application_keys_application")
                            .from(ApplicationKeys::Table, ApplicationKeys::ApplicationId)
                            .to(Applications::Table, Applications::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("application_keys_application_thumbprint")
                    .table(ApplicationKeys::Table)
                    .col(ApplicationKeys::ApplicationId)
                    .col(ApplicationKeys::Thumbprint)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("application_keys_expire_time")
                    .table(ApplicationKeys::Table)
                    .col(ApplicationKeys::ExpireTime)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(UsedAssertions::Table)
                    .col(string(UsedAssertions::ApplicationId))
                    .col(string(UsedAssertions::Issuer))
                    .col(string(UsedAssertions::Jti))
                    .col(big_integer(UsedAssertions::ExpireTime))
                    .primary_key(
                        Index::create()
                            .col(UsedAssertions::ApplicationId)
                            .col(UsedAssertions::Issuer)
                            .col(UsedAssertions::Jti),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("used_assertions_application")
                            .from(UsedAssertions::Table, UsedAssertions::ApplicationId)
                            .to(Applications::Table, Applications::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("used_assertions_expire_time")
                    .table(UsedAssertions::Table)
                    .col(UsedAssertions::ExpireTime)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            UsedAssertions::Table.into_iden(),
            ApplicationKeys::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Applications {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ApplicationKeys {
    Table,
    Id,
    ApplicationId,
    Algorithm,
    Thumbprint,
    Jwk,
    Description,
    CreateTime,
    ExpireTime,
    LastUseTime,
}

#[derive(DeriveIden)]
enum UsedAssertions {
    Table,
    ApplicationId,
    Issuer,
    Jti,
    ExpireTime,
}
