//! `used_assertions` is keyed by what makes an assertion used, its issuer
//! and `jti`, and nothing else. It had a key of application, issuer and
//! `jti` beside a unique index of issuer and `jti`, and on SQLite a rowid
//! table under both: three trees written for every accepted assertion, two
//! of them at a random place (a `jti` is random). Now SQLite keeps one tree
//! ordered by the key (`WITHOUT ROWID`), and PostgreSQL one unique index,
//! each beside the expiry index that the purge reads.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// SQLite too: a rebuild that stopped half-way would lose the table.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let script = match manager.get_database_backend() {
            DbBackend::Sqlite => {
                r#"
                CREATE TABLE "used_assertions_rebuilt" (
                    "application_id" varchar NOT NULL,
                    "issuer" varchar NOT NULL,
                    "jti" varchar NOT NULL,
                    "expire_time" integer NOT NULL,
                    PRIMARY KEY ("issuer", "jti")
                ) WITHOUT ROWID;
                INSERT INTO "used_assertions_rebuilt" ("application_id", "issuer", "jti", "expire_time")
                    SELECT "application_id", "issuer", "jti", "expire_time" FROM "used_assertions";
                DROP TABLE "used_assertions";
                ALTER TABLE "used_assertions_rebuilt" RENAME TO "used_assertions";
                CREATE INDEX "used_assertions_expire_time" ON "used_assertions" ("expire_time");
                "#
            }
            _ => {
                r#"
                ALTER TABLE "used_assertions" DROP CONSTRAINT "used_assertions_pkey";
                ALTER TABLE "used_assertions" ADD CONSTRAINT "used_assertions_pkey"
                    PRIMARY KEY USING INDEX "used_assertions_issuer_jti";
                "#
            }
        };
        manager.get_connection().execute_unprepared(script).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let script = match manager.get_database_backend() {
            DbBackend::Sqlite => {
                r#"
                CREATE TABLE "used_assertions_rebuilt" (
                    "application_id" varchar NOT NULL,
                    "issuer" varchar NOT NULL,
                    "jti" varchar NOT NULL,
                    "expire_time" integer NOT NULL,
                    PRIMARY KEY ("application_id", "issuer", "jti")
                );
                INSERT INTO "used_assertions_rebuilt" ("application_id", "issuer", "jti", "expire_time")
                    SELECT "application_id", "issuer", "jti", "expire_time" FROM "used_assertions";
                DROP TABLE "used_assertions";
                ALTER TABLE "used_assertions_rebuilt" RENAME TO "used_assertions";
                CREATE INDEX "used_assertions_expire_time" ON "used_assertions" ("expire_time");
                CREATE UNIQUE INDEX "used_assertions_issuer_jti" ON "used_assertions" ("issuer", "jti");
                "#
            }
            _ => {
                r#"
                ALTER TABLE "used_assertions" DROP CONSTRAINT "used_assertions_pkey";
                ALTER TABLE "used_assertions" ADD CONSTRAINT "used_assertions_pkey"
                    PRIMARY KEY ("application_id", "issuer", "jti");
                CREATE UNIQUE INDEX "used_assertions_issuer_jti" ON "used_assertions" ("issuer", "jti");
                "#
            }
        };
        manager.get_connection().execute_unprepared(script).await?;
        Ok(())
    }
}
