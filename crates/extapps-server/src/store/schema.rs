//! The schema the migrations made, compared with what the entities (and the
//! store's conflict handling) expect: every table's columns, their kind of
//! type and nullability, and its unique indexes. A difference is named at
//! startup, not found by the first call that trips on it.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{
    ColumnTrait, ColumnType, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    Iden, Iterable, PrimaryKeyToColumn, Statement,
};

use super::entities::*;

/// Unique indexes over several columns that the store relies on (a
/// violation is how it tells a taken display name), per table.
const COMPOSITE_UNIQUES: &[(&str, &[&str])] = &[
    ("applications", &["organization", "display_name_key"]),
    ("application_keys", &["application_id", "thumbprint"]),
    (
        "federated_credentials",
        &["application_id", "issuer", "subject", "audience"],
    ),
];

/// What a column holds, as far as reading and writing it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Integer,
    Text,
    Boolean,
    Bytes,
    Other,
}

fn kind_of_entity(column_type: &ColumnType) -> Kind {
    match column_type {
        ColumnType::TinyInteger
        | ColumnType::SmallInteger
        | ColumnType::Integer
        | ColumnType::BigInteger => Kind::Integer,
        ColumnType::Char(_) | ColumnType::String(_) | ColumnType::Text => Kind::Text,
        ColumnType::Boolean => Kind::Boolean,
        ColumnType::Blob | ColumnType::Binary(_) | ColumnType::VarBinary(_) => Kind::Bytes,
        _ => Kind::Other,
    }
}

/// The kind of a type as the database names it (SQLite's declared types,
/// PostgreSQL's `information_schema` names).
fn kind_of_database(declared: &str) -> Kind {
    let declared = declared.to_ascii_lowercase();
    if declared.contains("int") {
        Kind::Integer
    } else if declared.contains("char") || declared.contains("text") || declared.contains("clob") {
        Kind::Text
    } else if declared.contains("bool") {
        Kind::Boolean
    } else if declared.contains("blob") || declared.contains("bytea") {
        Kind::Bytes
    } else {
        Kind::Other
    }
}

/// A table as the entities describe it, or as the database has it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    /// Column -> (kind, nullable).
    columns: BTreeMap<String, (Kind, bool)>,
    /// Each unique index (the primary key included), by its columns.
    uniques: BTreeSet<Vec<String>>,
}

fn expected<E: EntityTrait>() -> (String, Table) {
    let name = E::default().table_name().to_owned();
    let mut table = Table::default();
    for column in E::Column::iter() {
        let def = column.def();
        let column_name = column.to_string();
        table.columns.insert(
            column_name.clone(),
            (kind_of_entity(def.get_column_type()), def.is_null()),
        );
        if def.is_unique() {
            table.uniques.insert(vec![column_name]);
        }
    }
    table.uniques.insert(
        E::PrimaryKey::iter()
            .map(|key| key.into_column().to_string())
            .collect(),
    );
    for (composite_table, columns) in COMPOSITE_UNIQUES {
        if *composite_table == name {
            table
                .uniques
                .insert(columns.iter().map(|c| (*c).to_owned()).collect());
        }
    }
    (name, table)
}

async fn rows(
    db: &DatabaseConnection,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
    db.query_all_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        values,
    ))
    .await
}

async fn actual(db: &DatabaseConnection, name: &str) -> Result<Table, DbErr> {
    let mut table = Table::default();
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            // Table names come from the entities, never from input.
            let mut primary_key = BTreeMap::new();
            for row in rows(db, &format!("PRAGMA table_info(\"{name}\")"), vec![]).await? {
                let column: String = row.try_get("", "name")?;
                let declared: String = row.try_get("", "type")?;
                let not_null: i32 = row.try_get("", "notnull")?;
                let primary: i32 = row.try_get("", "pk")?;
                // SQLite lets a non-integer primary key hold NULL unless
                // told otherwise; the store never writes one.
                let nullable = not_null == 0 && primary == 0;
                if primary > 0 {
                    primary_key.insert(primary, column.clone());
                }
                table
                    .columns
                    .insert(column, (kind_of_database(&declared), nullable));
            }
            // An INTEGER PRIMARY KEY is the rowid itself, with no index to
            // list: the key counts as a unique index either way.
            if !primary_key.is_empty() {
                table.uniques.insert(primary_key.into_values().collect());
            }
            for index in rows(db, &format!("PRAGMA index_list(\"{name}\")"), vec![]).await? {
                let unique: i32 = index.try_get("", "unique")?;
                if unique == 0 {
                    continue;
                }
                let index_name: String = index.try_get("", "name")?;
                let mut columns = Vec::new();
                for column in
                    rows(db, &format!("PRAGMA index_info(\"{index_name}\")"), vec![]).await?
                {
                    columns.push(column.try_get::<String>("", "name")?);
                }
                table.uniques.insert(columns);
            }
        }
        DbBackend::Postgres => {
            for row in rows(
                db,
                "SELECT column_name::text, data_type::text, is_nullable::text \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1",
                vec![name.into()],
            )
            .await?
            {
                let column: String = row.try_get_by_index(0)?;
                let declared: String = row.try_get_by_index(1)?;
                let nullable: String = row.try_get_by_index(2)?;
                table
                    .columns
                    .insert(column, (kind_of_database(&declared), nullable == "YES"));
            }
            for row in rows(
                db,
                "SELECT string_agg(a.attname::text, ',' ORDER BY k.ord) \
                 FROM pg_index x \
                 JOIN pg_class t ON t.oid = x.indrelid \
                 JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord) ON true \
                 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
                 WHERE x.indisunique AND t.relname = $1 \
                   AND t.relnamespace = current_schema()::regnamespace \
                 GROUP BY x.indexrelid",
                vec![name.into()],
            )
            .await?
            {
                let columns: String = row.try_get_by_index(0)?;
                table
                    .uniques
                    .insert(columns.split(',').map(str::to_owned).collect());
            }
        }
        _ => {}
    }
    Ok(table)
}

/// What differs between the entities and the database, one line each;
/// empty when they agree.
pub(super) async fn differences(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    let tables = [
        expected::<answered_authorization_request::Entity>(),
        expected::<application::Entity>(),
        expected::<application_key::Entity>(),
        expected::<application_secret::Entity>(),
        expected::<audit_event::Entity>(),
        expected::<caller_key::Entity>(),
        expected::<federated_credential::Entity>(),
        expected::<idempotency_record::Entity>(),
        expected::<revoked_token::Entity>(),
        expected::<used_assertion::Entity>(),
        expected::<user_grant::Entity>(),
    ];
    let mut found = Vec::new();
    for (name, wanted) in tables {
        let have = actual(db, &name).await?;
        if have.columns.is_empty() {
            found.push(format!("table `{name}` is missing"));
            continue;
        }
        for (column, (kind, nullable)) in &wanted.columns {
            match have.columns.get(column) {
                None => found.push(format!("column `{name}.{column}` is missing")),
                Some((have_kind, have_nullable)) => {
                    if have_kind != kind {
                        found.push(format!(
                            "column `{name}.{column}` holds {have_kind:?}, the server expects {kind:?}"
                        ));
                    }
                    if have_nullable != nullable {
                        found.push(format!(
                            "column `{name}.{column}` is {}, the server expects it {}",
                            if *have_nullable {
                                "nullable"
                            } else {
                                "NOT NULL"
                            },
                            if *nullable { "nullable" } else { "NOT NULL" }
                        ));
                    }
                }
            }
        }
        for column in have.columns.keys() {
            if !wanted.columns.contains_key(column) {
                found.push(format!(
                    "column `{name}.{column}` is not one the server knows"
                ));
            }
        }
        for unique in wanted.uniques.difference(&have.uniques) {
            found.push(format!(
                "table `{name}` lacks a unique index on ({})",
                unique.join(", ")
            ));
        }
        for unique in have.uniques.difference(&wanted.uniques) {
            found.push(format!(
                "table `{name}` has a unique index on ({}) the server does not expect",
                unique.join(", ")
            ));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_fall_into_kinds() {
        for (declared, kind) in [
            ("bigint", Kind::Integer),
            ("INTEGER", Kind::Integer),
            ("varchar(255)", Kind::Text),
            ("character varying", Kind::Text),
            ("text", Kind::Text),
            ("boolean", Kind::Boolean),
            ("bytea", Kind::Bytes),
            ("blob", Kind::Bytes),
            ("jsonb", Kind::Other),
        ] {
            assert_eq!(kind_of_database(declared), kind, "{declared}");
        }
    }
}
