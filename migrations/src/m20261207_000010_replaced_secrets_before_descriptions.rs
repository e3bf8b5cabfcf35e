//! Secrets that were already in a grace period when secrets got a replace
//! time: before then only a replacement set an expiry, so a secret created
//! before the previous migration ran and carrying an expiry was replaced.
//! Marking them keeps the expiring-secrets count to secrets that expire by
//! design. The previous migration's own record says when it ran
//! (`seaql_migrations.applied_at`, in seconds; times here are in
//! microseconds).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE application_secrets SET replace_time = create_time \
                 WHERE expire_time IS NOT NULL AND replace_time IS NULL \
                 AND create_time < 1000000 * (SELECT applied_at FROM seaql_migrations \
                 WHERE version = 'm20261207_000009_secret_descriptions')",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The marks are true of the rows they set; nothing to undo.
        Ok(())
    }
}
