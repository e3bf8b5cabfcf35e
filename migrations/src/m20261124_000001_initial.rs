//! The first schema: applications, their secrets, caller keys, the audit log,
//! idempotency records and server-held keys. Times are microseconds since the
//! Unix epoch in BIGINT columns, identical on SQLite and PostgreSQL.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Applications::Table)
                    .col(string(Applications::Id).primary_key())
                    .col(string(Applications::Organization))
                    .col(string(Applications::DisplayName))
                    .col(string(Applications::AppType))
                    .col(text(Applications::Grants))
                    .col(text(Applications::RedirectUrls))
                    .col(big_integer(Applications::Revision))
                    .col(big_integer_null(Applications::TokensNotBefore))
                    .col(big_integer(Applications::CreateTime))
                    .col(big_integer(Applications::UpdateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("applications_organization_display_name")
                    .table(Applications::Table)
                    .col(Applications::Organization)
                    .col(Applications::DisplayName)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApplicationSecrets::Table)
                    .col(string(ApplicationSecrets::Id).primary_key())
                    .col(string(ApplicationSecrets::ApplicationId))
                    .col(text(ApplicationSecrets::Phc))
                    .col(big_integer(ApplicationSecrets::CreateTime))
                    .col(big_integer_null(ApplicationSecrets::ExpireTime))
                    .col(big_integer_null(ApplicationSecrets::LastUseTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("application_secrets_application")
                            .from(ApplicationSecrets::Table, ApplicationSecrets::ApplicationId)
                            .to(Applications::Table, Applications::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("application_secrets_application_id")
                    .table(ApplicationSecrets::Table)
                    .col(ApplicationSecrets::ApplicationId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CallerKeys::Table)
                    .col(string(CallerKeys::Id).primary_key())
                    .col(string_null(CallerKeys::Organization))
                    .col(string(CallerKeys::Role))
                    .col(text(CallerKeys::Resources))
                    .col(string_uniq(CallerKeys::Digest))
                    .col(big_integer(CallerKeys::CreateTime))
                    .col(big_integer_null(CallerKeys::RevokeTime))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(big_pk_auto(AuditEvents::Id))
                    .col(string_null(AuditEvents::Organization))
                    .col(string_null(AuditEvents::ApplicationId))
                    .col(string(AuditEvents::Actor))
                    .col(string(AuditEvents::Action))
                    .col(text_null(AuditEvents::Before))
                    .col(text_null(AuditEvents::After))
                    .col(text(AuditEvents::Details))
                    .col(big_integer(AuditEvents::CreateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_events_organization_id")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::Organization)
                    .col(AuditEvents::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_events_application_id")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::ApplicationId)
                    .col(AuditEvents::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyRecords::Table)
                    .col(string(IdempotencyRecords::Lookup).primary_key())
                    .col(string(IdempotencyRecords::RequestDigest))
                    .col(blob(IdempotencyRecords::Response))
                    .col(big_integer(IdempotencyRecords::CreateTime))
                    .to_owned(),
            )
            .await?;

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

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ServerKeys::Table.into_iden(),
            IdempotencyRecords::Table.into_iden(),
            AuditEvents::Table.into_iden(),
            CallerKeys::Table.into_iden(),
            ApplicationSecrets::Table.into_iden(),
            Applications::Table.into_iden(),
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
    Organization,
    DisplayName,
    AppType,
    Grants,
    RedirectUrls,
    Revision,
    TokensNotBefore,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum ApplicationSecrets {
    Table,
    Id,
    ApplicationId,
    Phc,
    CreateTime,
    ExpireTime,
    LastUseTime,
}

#[derive(DeriveIden)]
enum CallerKeys {
    Table,
    Id,
    Organization,
    Role,
    Resources,
    Digest,
    CreateTime,
    RevokeTime,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    Organization,
    ApplicationId,
    Actor,
    Action,
    Before,
    After,
    Details,
    CreateTime,
}

#[derive(DeriveIden)]
enum IdempotencyRecords {
    Table,
    Lookup,
    RequestDigest,
    Response,
    CreateTime,
}

#[derive(DeriveIden)]
enum ServerKeys {
    Table,
    Name,
    Material,
}
