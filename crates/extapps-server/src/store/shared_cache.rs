//! Per-replica caches of what every request reads (caller keys, application
//! state, token revocations), kept right across replicas and processes.
//!
//! Every write that changes cached data announces the change in its own
//! transaction, so it is known exactly when the change commits; every
//! replica (the writer included) drops the affected entries on receipt, and
//! the writer also drops them locally right after its commit.
//!
//! - PostgreSQL: the announcement is a `NOTIFY`. A replica trusts its caches
//!   only while its `LISTEN` channel is up.
//! - SQLite (the embedded default, whose file the key commands and other
//!   servers on the same host also write): the announcement is a row of
//!   `cache_changes`. Each server polls `PRAGMA data_version` (which moves
//!   when any other connection commits) on a connection of its own every
//!   20 ms, and reads the new rows when it moves. It trusts its caches only
//!   while a poll started within the last 80 ms, so a stalled poller turns
//!   the caches off by itself.
//!
//! When change detection fails, a replica empties its caches and reads the
//! database on every request until it works again.

use std::{
    collections::HashMap,
    sync::{
        Arc, OnceLock, RwLock,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use backon::BackoffBuilder;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    sqlx::{Connection, postgres::PgListener, sqlite::SqliteConnection},
};
use uuid::Uuid;

use super::entities::revoked_token;
use crate::domain::clock::{Clock, to_micros};
use crate::domain::{caller::Caller, client_state::ClientState, names::ClientId};
use crate::metrics::Metrics;

/// The channel every replica listens on.
pub const CHANNEL: &str = "extapps_invalidate";
/// How often an SQLite server looks for other connections' commits.
const POLL_EVERY: Duration = Duration::from_millis(20);
/// An SQLite server trusts its caches only while a poll started this
/// recently: other processes' changes are seen within this bound.
const POLL_FRESH: Duration = Duration::from_millis(80);
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
/// SQLite announcements kept; older ones are pruned.
const CHANGES_KEPT: i64 = 10_000;
const CAPACITY: u64 = 100_000;
/// Entries also expire on their own, bounding any damage of a missed message.
const TTL: Duration = Duration::from_secs(300);

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
    fn payload(&self) -> String {
        match self {
            Change::Application(id) => format!("app:{id}"),
            Change::Keys => "keys".into(),
            Change::Revoked(jti, expires) => format!("revoked:{jti}:{expires}"),
        }
    }

    fn parse(payload: &str) -> Option<Self> {
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

fn cache<K, V>() -> moka::sync::Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    moka::sync::Cache::builder()
        .max_capacity(CAPACITY)
        .time_to_live(TTL)
        .build()
}

#[derive(Debug)]
struct Counters {
    /// Bumped by every invalidation: a read that overlapped one does not
    /// keep what it read.
    epoch: AtomicU64,
    trusted: AtomicBool,
    /// The same as `trusted`, for those who wait for it to change.
    trust: tokio::sync::watch::Sender<bool>,
    /// How many changes were applied, for those who wait for one to arrive.
    applied: tokio::sync::watch::Sender<u64>,
    /// Whether trust also needs a recent poll (SQLite).
    polled: AtomicBool,
    /// When the last poll started, in microseconds since `started`.
    heartbeat: AtomicU64,
    started: std::time::Instant,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            epoch: AtomicU64::new(0),
            trusted: AtomicBool::new(false),
            trust: tokio::sync::watch::Sender::new(false),
            applied: tokio::sync::watch::Sender::new(0),
            polled: AtomicBool::new(false),
            heartbeat: AtomicU64::new(0),
            started: std::time::Instant::now(),
        }
    }
}

impl Counters {
    fn micros_since_start(&self, at: std::time::Instant) -> u64 {
        u64::try_from(at.duration_since(self.started).as_micros()).unwrap_or(u64::MAX)
    }

    /// Notes that a poll started at `at`.
    fn beat(&self, at: std::time::Instant) {
        self.heartbeat
            .store(self.micros_since_start(at), Ordering::Release);
    }

    /// Whether, at `now`, the last poll started recently enough to trust
    /// the caches.
    fn fresh_at(&self, now: std::time::Instant) -> bool {
        let now = self.micros_since_start(now);
        let last = self.heartbeat.load(Ordering::Acquire);
        now.saturating_sub(last) < POLL_FRESH.as_micros() as u64
    }

    fn set_trusted(&self, trusted: bool) {
        self.trusted.store(trusted, Ordering::Release);
        self.trust.send_replace(trusted);
    }
}

/// The caches of one replica.
#[derive(Clone)]
pub struct SharedCache {
    counters: Arc<Counters>,
    clients: moka::sync::Cache<ClientId, Arc<ClientState>>,
    callers: moka::sync::Cache<String, Arc<Caller>>,
    /// Every revoked token that has not expired, with its expiry, loaded
    /// when the channel comes up: revocations are few, tokens many, so "not
    /// in the set" is answered without touching the database whatever the
    /// number of tokens. Entries go when their token expires
    /// ([`SharedCache::forget_expired`]), so the set is bounded by the
    /// revocations of one token lifetime.
    revoked: Arc<RwLock<HashMap<Uuid, i64>>>,
    /// The instant of the last forgetting (µs): a revocation expired by
    /// then is not taken again (an SQLite server reads its own
    /// announcements back, possibly after forgetting them).
    forgotten_until: Arc<AtomicI64>,
    metrics: Arc<OnceLock<Metrics>>,
}

impl std::fmt::Debug for SharedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCache")
            .field("trusted", &self.trusted())
            .finish_non_exhaustive()
    }
}

impl Default for SharedCache {
    fn default() -> Self {
        Self {
            counters: Arc::default(),
            clients: cache(),
            callers: cache(),
            revoked: Arc::default(),
            forgotten_until: Arc::new(AtomicI64::new(i64::MIN)),
            metrics: Arc::default(),
        }
    }
}

impl SharedCache {
    /// Whether entries may be used: only while change detection works (the
    /// channel is up; on SQLite, a poll started recently).
    pub fn trusted(&self) -> bool {
        self.counters.trusted.load(Ordering::Acquire)
            && (!self.counters.polled.load(Ordering::Acquire)
                || self.counters.fresh_at(std::time::Instant::now()))
    }

    /// Resolves once the caches are trusted (`true`: the channel is up) or
    /// not (`false`: it is down).
    #[cfg(feature = "test-support")]
    pub async fn wait_for_trust(&self, trusted: bool) {
        let mut trust = self.counters.trust.subscribe();
        let _ = trust.wait_for(|now| *now == trusted).await;
    }

    pub fn epoch(&self) -> u64 {
        self.counters.epoch.load(Ordering::Acquire)
    }

    /// Counts lookups in `metrics` from now on.
    pub fn count_in(&self, metrics: Metrics) {
        let _ = self.metrics.set(metrics);
    }

    fn count(&self, cache: &'static str, outcome: &'static str) {
        if let Some(metrics) = self.metrics.get() {
            metrics.replica_cache(cache, outcome);
        }
    }

    fn counted<T>(&self, cache: &'static str, found: Option<T>) -> Option<T> {
        self.count(cache, if found.is_some() { "hit" } else { "miss" });
        found
    }

    pub fn client(&self, id: &ClientId) -> Option<Arc<ClientState>> {
        if !self.trusted() {
            self.count("applications", "distrusted");
            return None;
        }
        self.counted("applications", self.clients.get(id))
    }

    pub fn caller(&self, digest: &str) -> Option<Arc<Caller>> {
        if !self.trusted() {
            self.count("callers", "distrusted");
            return None;
        }
        self.counted("callers", self.callers.get(digest))
    }

    /// Whether the token was revoked, if the caches are trusted.
    pub fn revoked(&self, jti: &Uuid) -> Option<bool> {
        if !self.trusted() {
            return None;
        }
        self.revoked.read().ok().map(|set| set.contains_key(jti))
    }

    /// Forgets revocations of tokens expired at `now` (microseconds).
    pub fn forget_expired(&self, now: i64) {
        self.forgotten_until.fetch_max(now, Ordering::AcqRel);
        if let Ok(mut set) = self.revoked.write() {
            set.retain(|_, expires| *expires > now);
        }
    }

    /// How many revocations this replica holds in memory.
    #[cfg(any(test, feature = "test-support"))]
    pub fn revocations_held(&self) -> usize {
        self.revoked.read().map_or(0, |set| set.len())
    }

    /// Keeps what a read that started at `epoch` found, unless an
    /// invalidation overlapped it.
    fn keep<K, V>(&self, cache: &moka::sync::Cache<K, V>, epoch: u64, key: K, value: V)
    where
        K: std::hash::Hash + Eq + Send + Sync + Clone + 'static,
        V: Clone + Send + Sync + 'static,
    {
        if !self.trusted() {
            return;
        }
        cache.insert(key.clone(), value);
        if self.epoch() != epoch {
            cache.invalidate(&key);
        }
    }

    pub fn keep_client(&self, epoch: u64, id: ClientId, state: Arc<ClientState>) {
        self.keep(&self.clients, epoch, id, state);
    }

    pub fn keep_caller(&self, epoch: u64, digest: String, caller: Arc<Caller>) {
        self.keep(&self.callers, epoch, digest, caller);
    }

    /// How many changes this replica applied.
    #[cfg(feature = "test-support")]
    pub fn applied(&self) -> u64 {
        *self.counters.applied.borrow()
    }

    /// Resolves once this replica has applied `count` changes.
    #[cfg(feature = "test-support")]
    pub async fn wait_for_applied(&self, count: u64) {
        let mut applied = self.counters.applied.subscribe();
        let _ = applied.wait_for(|now| *now >= count).await;
    }

    /// Drops what `change` makes stale.
    pub fn apply(&self, change: &Change) {
        self.counters.epoch.fetch_add(1, Ordering::AcqRel);
        match change {
            Change::Application(id) => self.clients.invalidate(id),
            Change::Keys => self.callers.invalidate_all(),
            Change::Revoked(jti, expires) => {
                if *expires > self.forgotten_until.load(Ordering::Acquire)
                    && let Ok(mut set) = self.revoked.write()
                {
                    set.insert(*jti, *expires);
                }
            }
        }
        // Counted once applied: whoever waits for it then sees its effect.
        self.counters.applied.send_modify(|count| *count += 1);
    }

    fn clear(&self) {
        self.counters.epoch.fetch_add(1, Ordering::AcqRel);
        self.clients.invalidate_all();
        self.callers.invalidate_all();
        if let Ok(mut set) = self.revoked.write() {
            set.clear();
        }
    }

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

    #[test]
    fn a_polled_cache_is_trusted_only_while_its_last_poll_is_recent() {
        let counters = Counters::default();
        let polled = counters.started + Duration::from_secs(1);
        counters.beat(polled);
        assert!(counters.fresh_at(polled + Duration::from_millis(79)));
        assert!(
            !counters.fresh_at(polled + Duration::from_millis(80)),
            "a poller that stalled turns the caches off"
        );
        let cache = SharedCache::default();
        cache.counters.polled.store(true, Ordering::Release);
        cache.counters.set_trusted(true);
        cache.counters.beat(std::time::Instant::now());
        assert!(cache.trusted());
        cache.counters.set_trusted(false);
        assert!(!cache.trusted());
    }

    #[test]
    fn untrusted_caches_answer_nothing_and_overlapped_reads_are_dropped() {
        let cache = SharedCache::default();
        let id = ClientId::generate();
        let caller = Arc::new(Caller {
            key_id: "k".into(),
            role: crate::domain::caller::Role::Admin,
            organization: None,
            resources: vec![],
        });
        cache.keep_caller(cache.epoch(), "d".into(), caller.clone());
        assert_eq!(cache.caller("d"), None, "not trusted: nothing kept");
        assert_eq!(cache.revoked(&Uuid::nil()), None, "not trusted: no answer");
        cache.counters.set_trusted(true);
        let before = cache.epoch();
        cache.apply(&Change::Application(id));
        cache.keep_caller(before, "d".into(), caller.clone());
        assert_eq!(
            cache.caller("d"),
            None,
            "an invalidation overlapped the read"
        );
        cache.keep_caller(cache.epoch(), "d".into(), caller.clone());
        assert_eq!(cache.caller("d"), Some(caller));
        cache.apply(&Change::Keys);
        assert_eq!(cache.caller("d"), None);
        assert_eq!(cache.revoked(&Uuid::nil()), Some(false));
        cache.apply(&Change::Revoked(Uuid::nil(), 2_000));
        cache.apply(&Change::Revoked(Uuid::max(), 1_000));
        assert_eq!(cache.revoked(&Uuid::nil()), Some(true));
        // A revocation is forgotten once its token has expired anyway.
        cache.forget_expired(1_000);
        assert_eq!(cache.revocations_held(), 1);
        assert_eq!(cache.revoked(&Uuid::max()), Some(false));
        cache.forget_expired(2_000);
        assert_eq!(cache.revocations_held(), 0);
        // Read again after it was forgotten (as an SQLite server reads its
        // own announcements back): not taken again.
        cache.apply(&Change::Revoked(Uuid::nil(), 2_000));
        assert_eq!(cache.revocations_held(), 0);
        cache.apply(&Change::Revoked(Uuid::nil(), 2_001));
        assert_eq!(cache.revocations_held(), 1);
    }
}
