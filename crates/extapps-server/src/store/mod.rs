//! Persistence: SeaORM over SQLite or PostgreSQL. One use case is one method
//! and one transaction, its audit event included. Models never leave this
//! module: callers see domain types only.

mod applications;
mod audit;
mod client_keys;
mod convert;
mod entities;
mod federation;
mod keys;
mod schema;
mod secrets;
mod shared_cache;
mod tokens;
mod used_assertions;
mod user_grants;

use std::time::Duration;

use extapps_migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbErr, RuntimeErr, SqlErr,
    TransactionOptions, TransactionTrait, sqlx,
};

pub use applications::{ChangeOf, IdempotencyWrite, Inserted, NewSecret};
pub use client_keys::{FirstUse, NewKey};
pub use federation::NewFederated;
pub use keys::{CallerKeyRecord, NewCallerKey};
pub use secrets::RotateSecret;
pub use tokens::{Credential, IntrospectionState};
pub use user_grants::{Answer, NewGrant, UserGrantsOf};

use crate::domain::Error;

/// How long a call waits for a pooled connection by default.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// The database behind the service.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    cache: shared_cache::SharedCache,
    used_assertions: used_assertions::UsedAssertions,
}

/// Why the store could not be opened; shown to the operator at startup.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("unsupported database URL: expected `sqlite:` or `postgres://`")]
    UnsupportedUrl,
    #[error("cannot connect to the database: {0}")]
    Connect(DbErr),
    #[error("cannot apply migrations: {0}")]
    Migrate(DbErr),
    #[error(
        "the database schema is not up to date; run `extapps-server migrate` or drop `--no-migrate`"
    )]
    Outdated,
    #[error("the database schema does not match this server: {0}")]
    SchemaMismatch(String),
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://...`).
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        Self::connect_with(url, DEFAULT_ACQUIRE_TIMEOUT).await
    }

    /// Connects, waiting at most `acquire_timeout` for a pooled connection
    /// on each call: while the database is down, calls fail fast with
    /// `UNAVAILABLE` instead of hanging.
    pub async fn connect_with(url: &str, acquire_timeout: Duration) -> Result<Self, OpenError> {
        let sqlite = url.starts_with("sqlite:");
        if !sqlite && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(OpenError::UnsupportedUrl);
        }
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(if sqlite { 8 } else { 32 })
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(acquire_timeout)
            .sqlx_logging(false);
        if sqlite {
            // sqlx leaves SQLite's journal mode alone: WAL lets readers run
            // beside the writer, and the busy timeout queues writers instead
            // of failing them.
            options.map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    .create_if_missing(true)
            });
        }
        let db = Database::connect(options)
            .await
            .map_err(OpenError::Connect)?;
        Ok(Self {
            db,
            cache: Default::default(),
            used_assertions: used_assertions::UsedAssertions::new(),
        })
    }

    /// Counts cache lookups and the writes of used assertions in `metrics`.
    pub fn count_in(&self, metrics: crate::metrics::Metrics) {
        self.used_assertions.count_in(metrics.clone());
        self.cache.count_in(metrics);
    }

    /// Starts following other replicas' and processes' changes (PostgreSQL:
    /// a notification channel; SQLite: polling the file), which turns the
    /// shared caches on while it works.
    pub fn listen_for_changes(&self, clock: std::sync::Arc<dyn crate::domain::clock::Clock>) {
        self.cache.listen(&self.db, clock);
    }

    /// Resolves once this replica answers from its caches (`true`: change
    /// detection is up) or from the database only (`false`).
    #[cfg(feature = "test-support")]
    pub async fn caches_trusted(&self, trusted: bool) {
        self.cache.wait_for_trust(trusted).await
    }

    /// How many changes (this replica's and, through the invalidation
    /// channel, others') this replica has applied to its caches.
    #[cfg(feature = "test-support")]
    pub fn changes_applied(&self) -> u64 {
        self.cache.applied()
    }

    /// Resolves once this replica has applied `count` changes: for tests
    /// that wait for another replica's change to arrive.
    #[cfg(feature = "test-support")]
    pub async fn wait_for_changes(&self, count: u64) {
        self.cache.wait_for_applied(count).await
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), OpenError> {
        Migrator::up(&self.db, None)
            .await
            .map_err(OpenError::Migrate)
    }

    /// Fails unless every migration has been applied and the schema is the
    /// one the entities describe: every column with its kind of type and
    /// nullability, and the unique indexes the store relies on. A
    /// difference is caught here, at startup, not on the first call that
    /// needs the column.
    pub async fn check_schema(&self) -> Result<(), OpenError> {
        let pending = Migrator::get_pending_migrations(&self.db)
            .await
            .map_err(OpenError::Migrate)?;
        if !pending.is_empty() {
            return Err(OpenError::Outdated);
        }
        let differences = schema::differences(&self.db)
            .await
            .map_err(OpenError::Migrate)?;
        if differences.is_empty() {
            Ok(())
        } else {
            Err(OpenError::SchemaMismatch(differences.join("; ")))
        }
    }

    /// The underlying connection, for tests that inspect stored rows.
    #[cfg(feature = "test-support")]
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Commits a change and tells every replica about it: this one at once,
    /// the others when the commit delivers the notification.
    async fn commit_change(
        &self,
        txn: DatabaseTransaction,
        change: shared_cache::Change,
    ) -> Result<(), Error> {
        self.commit_changes(txn, &[change]).await
    }

    /// [`Store::commit_change`] for several changes at once.
    async fn commit_changes(
        &self,
        txn: DatabaseTransaction,
        changes: &[shared_cache::Change],
    ) -> Result<(), Error> {
        for change in changes {
            shared_cache::announce(&txn, change)
                .await
                .map_err(db_error)?;
        }
        commit(txn).await?;
        for change in changes {
            self.cache.apply(change);
        }
        Ok(())
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a read-then-write cannot fail half-way on a
    /// lock upgrade; PostgreSQL ignores the option.
    async fn write(&self) -> Result<DatabaseTransaction, Error> {
        self.db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
            .map_err(db_error)
    }
}

/// Maps a database error to the service's: connection trouble is retryable
/// (`UNAVAILABLE`), the rest is internal. The detail goes to the log only.
pub(crate) fn db_error(err: DbErr) -> Error {
    if is_unavailable(&err) {
        tracing::warn!(error = %err, "database unavailable");
        Error::Unavailable
    } else {
        tracing::error!(error = %err, "database error");
        Error::Internal
    }
}

/// Whether `err` is transient: the same call may succeed if repeated. By
/// error class and SQLSTATE (or SQLite result code), never by message text.
fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(d) => d.code().is_some_and(|code| transient_code(&code)),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Transient SQLSTATEs of PostgreSQL and result codes of SQLite.
fn transient_code(code: &str) -> bool {
    // PostgreSQL: connection exceptions (08...), admin/crash shutdown and
    // "cannot connect now" (57P01..57P03), serialization failure and
    // deadlock (40001, 40P01), too many connections (53300).
    code.starts_with("08")
        || matches!(code, "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "53300")
        // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their
        // extended codes (the low byte is the primary code). SQLite's codes
        // are short numbers; SQLSTATEs always have five characters.
        || (code.len() < 5
            && code
                .parse::<u32>()
                .is_ok_and(|c| matches!(c & 0xff, 5 | 6)))
}

/// Repeats a call that is safe to repeat (a read, or an idempotent write)
/// while it fails transiently and fast (a connection cut by a database
/// restart): up to three more tries, none started after a second. A slow
/// failure (no pooled connection within the acquire timeout, a busy SQLite
/// file) is not repeated: the caller hears `UNAVAILABLE` at once, and a
/// struggling database gets no extra load.
pub(crate) async fn retrying<T, F, Fut>(mut call: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    const FAST_FAILURE: Duration = Duration::from_millis(250);
    const BUDGET: Duration = Duration::from_secs(1);
    let started = tokio::time::Instant::now();
    let mut delays = backon::BackoffBuilder::build(
        backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_millis(400))
            .with_max_times(3)
            .with_jitter(),
    );
    loop {
        let attempt = tokio::time::Instant::now();
        match call().await {
            Err(Error::Unavailable)
                if attempt.elapsed() < FAST_FAILURE && started.elapsed() < BUDGET =>
            {
                match delays.next() {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => return Err(Error::Unavailable),
                }
            }
            outcome => return outcome,
        }
    }
}

/// Whether `err` is a unique-constraint violation.
pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Commits, mapping the error.
async fn commit(txn: DatabaseTransaction) -> Result<(), Error> {
    txn.commit().await.map_err(db_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes_are_told_by_code() {
        for code in [
            "57P01", "57P02", "57P03", "40001", "40P01", "08006", "53300", "5", "517", "6",
        ] {
            assert!(transient_code(code), "{code}");
        }
        for code in [
            "23505", "42P01", "22001", "22013", "22014", "19", "2067", "1",
        ] {
            assert!(!transient_code(code), "{code}");
        }
    }
}
