//! What a write announces to every replica, in its own transaction: a
//! `NOTIFY` on PostgreSQL, a row of `cache_changes` on SQLite.

use sea_orm::{ConnectionTrait, DbBackend, DbErr};
use uuid::Uuid;

use crate::domain::names::ClientId;

/// The channel every replica listens on.
pub const CHANNEL: &str = "extapps_invalidate";
/// SQLite announcements kept; older ones are pruned.
const CHANGES_KEPT: i64 = 10_000;

/// What changed, as sent on the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Application(ClientId),
    Keys,
    /// A token revoked, with its expiry (microseconds since the epoch),
    /// after which its revocation can be forgotten.
    Revoked(Uuid, i64),
}

impl Change {
    pub(super) fn payload(&self) -> String {
        match self {
            Change::Application(id) => format!("app:{id}"),
            Change::Keys => "keys".into(),
            Change::Revoked(jti, expires) => format!("revoked:{jti}:{expires}"),
        }
    }

    pub(super) fn parse(payload: &str) -> Option<Self> {
        match payload.split_once(':') {
            Some(("app", id)) => ClientId::parse(id).map(Change::Application),
            Some(("revoked", rest)) => {
                let (jti, expires) = rest.split_once(':')?;
                Some(Change::Revoked(
                    Uuid::parse_str(jti).ok()?,
                    expires.parse().ok()?,
                ))
            }
            None if payload == "keys" => Some(Change::Keys),
            _ => None,
        }
    }
}

/// Sends `change` to every replica (every process, on SQLite) when the
/// surrounding transaction commits.
pub async fn announce(conn: &impl ConnectionTrait, change: &Change) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT pg_notify($1, $2)",
        DbBackend::Sqlite => "INSERT INTO cache_changes (payload) VALUES (?)",
        _ => return Ok(()),
    };
    let values: Vec<sea_orm::Value> = match backend {
        DbBackend::Postgres => vec![CHANNEL.into(), change.payload().into()],
        _ => vec![change.payload().into()],
    };
    conn.execute_raw(sea_orm::Statement::from_sql_and_values(
        backend, sql, values,
    ))
    .await
    .map(|_| ())
}

/// Forgets all but the newest SQLite announcements (a server that fell
/// further behind starts over: see [`SharedCache::poll`]).
pub async fn prune_announcements(conn: &impl ConnectionTrait) -> Result<(), DbErr> {
    if conn.get_database_backend() != DbBackend::Sqlite {
        return Ok(());
    }
    conn.execute_raw(sea_orm::Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "DELETE FROM cache_changes WHERE id <= (SELECT MAX(id) FROM cache_changes) - ?",
        [CHANGES_KEPT.into()],
    ))
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        for change in [
            Change::Application(ClientId::generate()),
            Change::Keys,
            Change::Revoked(Uuid::new_v4(), 1_700_000_000_000_000),
        ] {
            assert_eq!(Change::parse(&change.payload()), Some(change));
        }
        assert_eq!(Change::parse("app:nope"), None);
        assert_eq!(Change::parse("other"), None);
    }
}
