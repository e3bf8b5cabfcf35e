//! User-context access: the grants users give applications through the
//! authorization code flow, each with its single-use code (as a digest) and
//! the generation of its rotating refresh token (tokens are made from it
//! under the key ring, never stored), and the IDs of authorization requests
//! already answered (the requests themselves are sealed into their IDs and
//! never stored).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UserGrants::Table)
                    .col(string(UserGrants::Id).primary_key())
                    .col(string(UserGrants::ApplicationId))
                    .col(string(UserGrants::Subject))
                    .col(text(UserGrants::Scopes))
                    .col(boolean(UserGrants::OfflineAccess))
                    .col(big_integer(UserGrants::CreateTime))
                    .col(big_integer(UserGrants::UpdateTime))
                    .col(big_integer(UserGrants::ExpireTime))
                    .col(big_integer_null(UserGrants::RevokeTime))
                    .col(string(UserGrants::CodeDigest))
                    .col(big_integer(UserGrants::CodeExpireTime))
                    .col(big_integer_null(UserGrants::CodeRedeemTime))
                    .col(text(UserGrants::RedirectUri))
                    .col(boolean(UserGrants::RedirectUriGiven))
                    .col(string_null(UserGrants::CodeChallenge))
                    .col(big_integer_null(UserGrants::RefreshGeneration))
                    .col(big_integer_null(UserGrants::RefreshExpireTime))
                    .col(big_integer_null(UserGrants::RotateTime))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "user_grants_subject",
                vec![UserGrants::Subject, UserGrants::ApplicationId],
            ),
            ("user_grants_application", vec![UserGrants::ApplicationId]),
            ("user_grants_expire_time", vec![UserGrants::ExpireTime]),
        ] {
            let mut index = Index::create();
            index.name(name).table(UserGrants::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AnsweredAuthorizationRequests::Table)
                    .col(string(AnsweredAuthorizationRequests::Id).primary_key())
                    .col(big_integer(AnsweredAuthorizationRequests::ExpireTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("answered_authorization_requests_expire_time")
                    .table(AnsweredAuthorizationRequests::Table)
                    .col(AnsweredAuthorizationRequests::ExpireTime)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(AnsweredAuthorizationRequests::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(UserGrants::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum UserGrants {
    Table,
    Id,
    ApplicationId,
    Subject,
    Scopes,
    OfflineAccess,
    CreateTime,
    UpdateTime,
    ExpireTime,
    RevokeTime,
    CodeDigest,
    CodeExpireTime,
    CodeRedeemTime,
    RedirectUri,
    RedirectUriGiven,
    CodeChallenge,
    RefreshGeneration,
    RefreshExpireTime,
    RotateTime,
}

#[derive(DeriveIden)]
enum AnsweredAuthorizationRequests {
    Table,
    Id,
    ExpireTime,
}
