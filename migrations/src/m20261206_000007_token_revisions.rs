//! What ends tokens without a clock: an access token carries the revision of
//! the application it was decided at and the credential that authenticated
//! its client, so the application keeps, beside its grants,
//!
//! - `scope_removals`: for each scope ever removed, the revision that removed
//!   it (a token decided before that revision never gets the scope back,
//!   even once it is granted again);
//! - `credential_cutoffs`: for each secret whose tokens were ended, the
//!   revision from which its tokens count again, until every token it can
//!   have authenticated has expired;
//!
//! and a user grant records the revision its scopes were decided at, and
//! the credential (and revision) that its current refresh token was issued
//! under.
//! Existing rows start empty and at revision 0: only changes from now on
//! are recorded, and they apply to every token, whenever it was issued.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        for column in [Applications::ScopeRemovals, Applications::CredentialCutoffs] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Applications::Table)
                        .add_column(ColumnDef::new(column).text().not_null().default("{}"))
                        .to_owned(),
                )
                .await?;
        }
        for column in [UserGrants::Revision, UserGrants::RefreshRevision] {
            manager
                .alter_table(
                    Table::alter()
                        .table(UserGrants::Table)
                        .add_column(ColumnDef::new(column).big_integer().not_null().default(0))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(UserGrants::Table)
                    .add_column(
                        ColumnDef::new(UserGrants::RefreshCredential)
                            .string()
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            UserGrants::RefreshCredential,
            UserGrants::RefreshRevision,
            UserGrants::Revision,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(UserGrants::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [Applications::CredentialCutoffs, Applications::ScopeRemovals] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Applications::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Applications {
    Table,
    ScopeRemovals,
    CredentialCutoffs,
}

#[derive(DeriveIden, Clone, Copy)]
enum UserGrants {
    Table,
    Revision,
    RefreshCredential,
    RefreshRevision,
}
