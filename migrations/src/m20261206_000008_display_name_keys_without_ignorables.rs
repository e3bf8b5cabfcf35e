//! Invisible characters do not make a display name another: the uniqueness
//! key of a name now leaves out Unicode's default-ignorable characters
//! (zero-width spaces and joiners, variation selectors, soft hyphens, ...),
//! so `pay` and `pay` + U+200B can no longer both be registered. This
//! recomputes the key of every stored name that holds such a character.
//! Names are not changed. Where the new key is already taken in the
//! organization (by a name without such characters, or one handled before
//! it), the name holding them keeps a key of its own (its client ID
//! appended, as the migration that introduced keys did), so nothing is
//! renamed or lost, and no new name may collide with either while both
//! stand. Renaming it gives it the plain key of its new name.

use std::collections::HashSet;

use sea_orm_migration::prelude::*;
use unicode_normalization::UnicodeNormalization;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Unicode's Default_Ignorable_Code_Point set, as the server reads it when
/// this migration was written.
fn is_default_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
        | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
        | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}'
        | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// The uniqueness key of a display name, as the server computes it when
/// this migration was written.
fn key(name: &str) -> String {
    let visible: String = name.chars().filter(|c| !is_default_ignorable(*c)).collect();
    let folded: String = visible.nfkc().collect::<String>().to_lowercase();
    folded
        .replace('ς', "σ")
        .nfkc()
        .filter(|c| !is_default_ignorable(*c))
        .collect()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let rows = db
            .query_all(
                &Query::select()
                    .columns([
                        Applications::Id,
                        Applications::Organization,
                        Applications::DisplayName,
                        Applications::DisplayNameKey,
                    ])
                    .from(Applications::Table)
                    .order_by(Applications::CreateTime, Order::Asc)
                    .order_by(Applications::Id, Order::Asc)
                    .to_owned(),
            )
            .await?;
        let mut taken = HashSet::new();
        let mut to_rekey = Vec::new();
        for row in rows {
            let id: String = row.try_get("", "id")?;
            let organization: String = row.try_get("", "organization")?;
            let name: String = row.try_get("", "display_name")?;
            let name_key: String = row.try_get("", "display_name_key")?;
            if name.chars().any(is_default_ignorable) {
                to_rekey.push((id, organization, name));
            } else {
                taken.insert((organization, name_key));
            }
        }
        for (id, organization, name) in to_rekey {
            let mut name_key = key(&name);
            if !taken.insert((organization.clone(), name_key.clone())) {
                // A control character never appears in a name, so this key
                // never equals a real one.
                name_key = format!("{name_key}\u{1}{id}");
                taken.insert((organization, name_key.clone()));
            }
            db.execute(
                &Query::update()
                    .table(Applications::Table)
                    .value(Applications::DisplayNameKey, name_key)
                    .and_where(Expr::col(Applications::Id).eq(id))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        // The keys stay: each is still unique in its organization, and the
        // earlier server compares new names by its own key, which holds
        // the invisible characters, so it never collides with these.
        Ok(())
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
    fn invisible_characters_leave_the_key() {
        assert_eq!(super::key("pay\u{200B}"), super::key("PAY"));
        assert_eq!(super::key("Caf\u{e9}\u{FE0F}"), super::key("CAFE\u{301}"));
        assert_ne!(super::key("pay"), super::key("p ay"));
    }
}
