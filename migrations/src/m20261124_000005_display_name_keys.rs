//! Display names are shown to users on consent screens: they are stored
//! NFC-normalized and unique per organization without regard to case. This
//! normalizes the stored names and adds `display_name_key` (the name's NFKC
//! form in lower case) with a unique index per organization, in place of
//! the index on the names themselves. Names the new rules would refuse
//! (bidirectional controls, only invisible characters) are kept as they are:
//! their applications stay readable, and an administrator can rename them.
//!
//! Existing names that differ only in case (or normalization) all stay: the
//! first, by registration, keeps the plain key; each later one gets its
//! client ID appended to its key, so nothing is renamed or lost, and no new
//! name may collide with any of them.

use std::collections::HashSet;

use sea_orm_migration::prelude::*;
use unicode_normalization::UnicodeNormalization;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The uniqueness key of a display name, as the server computed it when
/// this migration was written: NFKC, lower case, final sigma folded.
fn key(name: &str) -> String {
    let folded: String = name.nfkc().collect::<String>().to_lowercase();
    folded.replace('ς', "σ").nfkc().collect()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("applications_organization_display_name")
                    .table(Applications::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Applications::Table)
                    .add_column(
                        ColumnDef::new(Applications::DisplayNameKey)
                            .string()
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let rows = db
            .query_all(
                &Query::select()
                    .columns([
                        Applications::Id,
                        Applications::Organization,
                        Applications::DisplayName,
                    ])
                    .from(Applications::Table)
                    .order_by(Applications::CreateTime, Order::Asc)
                    .order_by(Applications::Id, Order::Asc)
                    .to_owned(),
            )
            .await?;
        let mut taken = HashSet::new();
        for row in rows {
            let id: String = row.try_get("", "id")?;
            let organization: String = row.try_get("", "organization")?;
            let name: String = row.try_get("", "display_name")?;
            let mut name_key = key(&name);
            if !taken.insert((organization.clone(), name_key.clone())) {
                // A control character never appears in a name, so this key
                // never equals a real one.
                name_key = format!("{name_key}\u{1}{id}");
            }
            db.execute(
                &Query::update()
                    .table(Applications::Table)
                    .value(Applications::DisplayName, name.nfc().collect::<String>())
                    .value(Applications::DisplayNameKey, name_key)
                    .and_where(Expr::col(Applications::Id).eq(id))
                    .to_owned(),
            )
            .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("applications_organization_display_name_key")
                    .table(Applications::Table)
                    .col(Applications::Organization)
                    .col(Applications::DisplayNameKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("applications_organization_display_name_key")
                    .table(Applications::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Applications::Table)
                    .drop_column(Applications::DisplayNameKey)
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
            .await
    }
}

#[derive(DeriveIden)]
enum Applications {
    Table,
    Id,
    Organization,
    DisplayName,
    DisplayNameKey,
    CreateTime,
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_ignore_case_and_normalization() {
        assert_eq!(super::key("Caf\u{e9} App"), super::key("CAFE\u{301} app"));
        assert_ne!(super::key("App"), super::key("Apps"));
        assert_eq!(super::key("ＳＹＮＣ"), super::key("sync"));
    }
}
