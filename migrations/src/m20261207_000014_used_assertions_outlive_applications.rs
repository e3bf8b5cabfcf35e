//! A used assertion is remembered until it expires even when the
//! application that presented it is deleted. The rows went with their
//! application (a cascading foreign key), and with them the memory that an
//! outside provider's token (its issuer and `jti`) had been used: another
//! application trusting the same issuer, subject and audience could then
//! accept it once more. Only the expiry purge removes the rows now.
//!
//! PostgreSQL drops the foreign key; SQLite cannot, so the table is built
//! again without it, rows and indexes kept.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const FOREIGN_KEY: &str = "used_assertions_application";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// SQLite too: a rebuild that stopped half-way would lose the table.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Sqlite => rebuild(manager, false).await,
            _ => {
                manager
                    .drop_foreign_key(
                        ForeignKey::drop()
                            .name(FOREIGN_KEY)
                            .table(UsedAssertions::Table)
                            .to_owned(),
                    )
                    .await
            }
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Rows of applications deleted since cannot keep a foreign key.
        manager
            .get_connection()
            .execute_unprepared(
                "DELETE FROM used_assertions WHERE application_id NOT IN \
                 (SELECT id FROM applications)",
            )
            .await?;
        match manager.get_database_backend() {
            DbBackend::Sqlite => rebuild(manager, true).await,
            _ => manager.create_foreign_key(foreign_key()).await,
        }
    }
}

fn foreign_key() -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(FOREIGN_KEY)
        .from(UsedAssertions::Table, UsedAssertions::ApplicationId)
        .to(Applications::Table, Applications::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

/// Builds `used_assertions` again, with or without its foreign key, with
/// the same columns, rows and indexes.
async fn rebuild(manager: &SchemaManager<'_>, with_foreign_key: bool) -> Result<(), DbErr> {
    let foreign_key = match with_foreign_key {
        true => {
            r#", FOREIGN KEY ("application_id") REFERENCES "applications" ("id") ON DELETE CASCADE"#
        }
        false => "",
    };
    manager
        .get_connection()
        .execute_unprepared(&format!(
            r#"
            CREATE TABLE "used_assertions_rebuilt" (
                "application_id" varchar NOT NULL,
                "issuer" varchar NOT NULL,
                "jti" varchar NOT NULL,
                "expire_time" integer NOT NULL,
                PRIMARY KEY ("application_id", "issuer", "jti"){foreign_key}
            );
            INSERT INTO "used_assertions_rebuilt" ("application_id", "issuer", "jti", "expire_time")
                SELECT "application_id", "issuer", "jti", "expire_time" FROM "used_assertions";
            DROP TABLE "used_assertions";
            ALTER TABLE "used_assertions_rebuilt" RENAME TO "used_assertions";
            CREATE INDEX "used_assertions_expire_time" ON "used_assertions" ("expire_time");
            CREATE UNIQUE INDEX "used_assertions_issuer_jti" ON "used_assertions" ("issuer", "jti");
            "#
        ))
        .await?;
    Ok(())
}

#[derive(DeriveIden)]
enum Applications {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum UsedAssertions {
    Table,
    ApplicationId,
}
