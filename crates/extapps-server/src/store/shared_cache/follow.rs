//! How a replica hears of other replicas' changes: a `LISTEN` channel on
//! PostgreSQL, polling the file on SQLite; and what it does when it cannot
//! (empty the caches, read the database, start over).

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use backon::BackoffBuilder;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    sqlx::{Connection, postgres::PgListener, sqlite::SqliteConnection},
};
use uuid::Uuid;

use super::SharedCache;
use super::announcements::{CHANNEL, Change};
use crate::domain::clock::{Clock, to_micros};
use crate::store::entities::revoked_token;

/// How often an SQLite server looks for other connections' commits.
const POLL_EVERY: Duration = Duration::from_millis(20);
/// How often the SQLite poller checks that the database's path still
/// names the file its connection opened.
const FILE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// How long one of the poller's reads may take before the poll starts over.
const POLL_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Bounds one of the poller's reads: a read that hangs ends the poll, which
/// logs why and starts over, instead of stalling it (and the caches' trust)
/// for good without a word.
async fn bounded<T>(
    read: impl std::future::Future<Output = Result<T, sea_orm::sqlx::Error>>,
) -> Result<T, sea_orm::sqlx::Error> {
    tokio::time::timeout(POLL_READ_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| {
            Err(sea_orm::sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "a read took longer than 5 s",
            )))
        })
}
impl SharedCache {
    /// Follows changes until the process ends, trusting the caches only
    /// while change detection works.
    pub fn listen(&self, db: &DatabaseConnection, clock: Arc<dyn Clock>) {
        match db.get_database_backend() {
            DbBackend::Postgres => self.listen_postgres(db, clock),
            DbBackend::Sqlite => self.listen_sqlite(db, clock),
            _ => {}
        }
    }

    fn listen_postgres(&self, db: &DatabaseConnection, clock: Arc<dyn Clock>) {
        let pool = db.get_postgres_connection_pool().clone();
        let db = db.clone();
        let cache = self.clone();
        tokio::spawn(async move {
            let mut delays = reconnect_delays();
            loop {
                match subscribe(&pool).await {
                    Ok(listener) => {
                        delays = reconnect_delays();
                        cache.follow(listener, &db, clock.as_ref()).await;
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot listen for cache invalidations"),
                }
                tokio::time::sleep(delays.next().unwrap_or(Duration::from_secs(5))).await;
            }
        });
    }

    fn listen_sqlite(&self, db: &DatabaseConnection, clock: Arc<dyn Clock>) {
        let options = db.get_sqlite_connection_pool().connect_options();
        let db = db.clone();
        let cache = self.clone();
        self.counters.polled.store(true, Ordering::Release);
        tokio::spawn(async move {
            let mut delays = reconnect_delays();
            loop {
                // A connection of its own, outside the pool: it only ever
                // reads, and never holds a transaction open.
                let began = std::time::Instant::now();
                let why = match bounded(SqliteConnection::connect_with(&options)).await {
                    Ok(connection) => {
                        cache
                            .poll(connection, &db, clock.as_ref(), options.get_filename())
                            .await
                    }
                    Err(e) => format!("cannot open the poller's connection: {e}"),
                };
                cache.counters.set_trusted(false);
                cache.clear();
                tracing::warn!(%why, "cache change detection stopped: reading the database until it starts over");
                // Back off only while it keeps failing at once.
                if began.elapsed() > Duration::from_secs(10) {
                    delays = reconnect_delays();
                }
                tokio::time::sleep(delays.next().unwrap_or(Duration::from_secs(5))).await;
            }
        });
    }

    /// Polls the SQLite file for other connections' commits and applies the
    /// changes they announced, until something calls for starting over: a
    /// failed read, announcements pruned before this server read them, ids
    /// that went back (a restored file), an announcement this build does
    /// not know, or another file at the database's path. Returns why.
    async fn poll(
        &self,
        mut connection: SqliteConnection,
        db: &DatabaseConnection,
        clock: &dyn Clock,
        path: &std::path::Path,
    ) -> String {
        // The file this connection opened (it keeps it open, whatever
        // happens to the path).
        let file = file_identity(path);
        let polled: Result<String, sea_orm::sqlx::Error> = async {
            let mut version = bounded(data_version(&mut connection)).await?;
            let mut cursor = bounded(last_announcement(&mut connection)).await?;
            if !self.start_over(db, clock).await {
                return Ok("cannot load token revocations".into());
            }
            let mut ticks = tokio::time::interval(POLL_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut file_checked = std::time::Instant::now();
            loop {
                ticks.tick().await;
                let started = std::time::Instant::now();
                if started.duration_since(file_checked) >= FILE_CHECK_EVERY {
                    file_checked = started;
                    if file.is_some() && file_identity(path) != file {
                        return Ok("another file is at the database's path".into());
                    }
                }
                let now = bounded(data_version(&mut connection)).await?;
                if now != version {
                    version = now;
                    let rows: Vec<(i64, String)> = bounded(
                        sea_orm::sqlx::query_as(
                            "SELECT id, payload FROM cache_changes WHERE id > ? ORDER BY id",
                        )
                        .bind(cursor)
                        .fetch_all(&mut connection),
                    )
                    .await?;
                    // Ids are handed out one after another in commit order.
                    match rows.first() {
                        Some((id, _)) if *id != cursor + 1 => {
                            return Ok(
                                "announcements were pruned before this server read them".into()
                            );
                        }
                        None if bounded(last_announcement(&mut connection)).await? < cursor => {
                            return Ok(
                                "announcement ids went back: was the database restored?".into()
                            );
                        }
                        _ => {}
                    }
                    for (id, payload) in rows {
                        let Some(change) = Change::parse(&payload) else {
                            return Ok("an announcement this server does not know".into());
                        };
                        self.apply(&change);
                        tracing::debug!(change = %payload, "invalidation received");
                        cursor = id;
                    }
                }
                self.counters.beat(started);
            }
        }
        .await;
        polled.unwrap_or_else(|e| format!("cannot poll: {e}"))
    }

    /// Distrusts and empties the caches, then loads the revocations;
    /// `false` if they could not be read. An empty revocation set must
    /// never be believed, so trust stays off until the caller grants it.
    async fn start_empty(&self, db: &DatabaseConnection, clock: &dyn Clock) -> bool {
        self.counters.set_trusted(false);
        self.clear();
        match unexpired_revocations(db, to_micros(clock.now())).await {
            Ok(jtis) => {
                if let Ok(mut set) = self.revoked.write() {
                    set.extend(jtis);
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot load token revocations");
                false
            }
        }
    }

    /// Starts the caches over and trusts them again; `false` if the
    /// revocations could not be read.
    async fn start_over(&self, db: &DatabaseConnection, clock: &dyn Clock) -> bool {
        let started = std::time::Instant::now();
        if !self.start_empty(db, clock).await {
            return false;
        }
        self.counters.beat(started);
        self.counters.set_trusted(true);
        tracing::info!("cache change detection is up (polling the SQLite file)");
        true
    }

    /// Applies notifications while the channel lasts; the caches are trusted
    /// exactly that long.
    async fn follow(&self, mut listener: PgListener, db: &DatabaseConnection, clock: &dyn Clock) {
        // Whatever changed while nobody listened is unknown: start empty,
        // then load the revocations (after subscribing, so none is missed).
        if !self.start_empty(db, clock).await {
            return;
        }
        self.counters.set_trusted(true);
        tracing::info!("cache invalidation channel is up");
        while let Ok(Some(message)) = listener.try_recv().await {
            match Change::parse(message.payload()) {
                Some(change) => {
                    self.apply(&change);
                    tracing::debug!(change = %change.payload(), "invalidation received");
                }
                None => tracing::warn!("unknown invalidation message"),
            }
        }
        self.counters.set_trusted(false);
        self.clear();
        tracing::warn!("cache invalidation channel lost: reading the database until it is back");
    }
}

async fn unexpired_revocations(
    db: &DatabaseConnection,
    now: i64,
) -> Result<Vec<(Uuid, i64)>, DbErr> {
    let rows = revoked_token::Entity::find()
        .filter(revoked_token::Column::ExpireTime.gt(now))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((Uuid::parse_str(&r.jti).ok()?, r.expire_time)))
        .collect())
}

/// The newest announcement's ID (0 if none).
async fn last_announcement(connection: &mut SqliteConnection) -> Result<i64, sea_orm::sqlx::Error> {
    sea_orm::sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM cache_changes")
        .fetch_one(connection)
        .await
}

/// The device and inode of the database file, to tell when another file
/// takes its path (`None` for an in-memory database, or off Unix).
fn file_identity(path: &std::path::Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// SQLite's count of commits by other connections, as this one sees it.
async fn data_version(connection: &mut SqliteConnection) -> Result<i64, sea_orm::sqlx::Error> {
    sea_orm::sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(connection)
        .await
}

fn reconnect_delays() -> impl Iterator<Item = Duration> {
    backon::ExponentialBuilder::default()
        .with_max_delay(Duration::from_secs(5))
        .without_max_times()
        .build()
}

async fn subscribe(pool: &sea_orm::sqlx::PgPool) -> Result<PgListener, sea_orm::sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
