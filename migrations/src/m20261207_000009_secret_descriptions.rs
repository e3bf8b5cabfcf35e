//! Several secrets per application, each with a description and an expiry
//! of its own: `description` says what a secret is for; `replace_time` marks
//! a secret a newer one replaced (its expiry is then the end of its grace
//! period, not one an operator must act on), so that the secrets expiring
//! soon can be counted without those. `expire_time` is indexed for that
//! count. Existing secrets get an empty description and are not replaced.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(ApplicationSecrets::Table)
                    .add_column(
                        ColumnDef::new(ApplicationSecrets::Description)
                            .text()
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ApplicationSecrets::Table)
                    .add_column(
                        ColumnDef::new(ApplicationSecrets::ReplaceTime)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_application_secrets_expire_time")
                    .table(ApplicationSecrets::Table)
                    .col(ApplicationSecrets::ExpireTime)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_application_secrets_expire_time")
                    .table(ApplicationSecrets::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            ApplicationSecrets::ReplaceTime,
            ApplicationSecrets::Description,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ApplicationSecrets::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ApplicationSecrets {
    Table,
    Description,
    ReplaceTime,
    ExpireTime,
}
