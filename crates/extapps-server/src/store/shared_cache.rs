//! Per-replica caches of what every request reads (caller keys, application
//! state, token revocations), kept right across replicas by PostgreSQL
//! `LISTEN/NOTIFY`.
//!
//! Every write that changes cached data sends a notification in its own
//! transaction, so it is delivered exactly when the change commits; every
//! replica (the writer included) drops the affected entries on receipt, and
//! the writer also drops them locally right after its commit. A replica
//! trusts its caches only while its notification channel is up: when the
//! channel drops, it empties them and reads the database on every request
//! until it has listened again. On SQLite (a single embedded node, and the
//! key commands run as separate processes) the caches stay off.

use std::{
    collections::HashMap,
    sync::{
        Arc, OnceLock, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use backon::BackoffBuilder;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    sqlx::postgres::PgListener,
};
use uuid::Uuid;

use super::entities::revoked_token;
use super::tokens::ClientState;
use crate::domain::clock::{Clock, to_micros};
use crate::domain::{caller::Caller, names::ClientId};
use crate::metrics::Metrics;

/// The channel every replica listens on.
pub const CHANNEL: &str = "extapps_invalidate";
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

/// Sends `change` to every replica when the surrounding transaction commits.
/// A no-op on SQLite.
pub async fn announce(conn: &impl ConnectionTrait, change: &Change) -> Result<(), DbErr> {
    if conn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    conn.execute_raw(sea_orm::Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CHANNEL.into(), change.payload().into()],
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
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            epoch: AtomicU64::new(0),
            trusted: AtomicBool::new(false),
            trust: tokio::sync::watch::Sender::new(false),
            applied: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl Counters {
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
            metrics: Arc::default(),
        }
    }
}

impl SharedCache {
    /// Whether entries may be used: only while the channel is up.
    pub fn trusted(&self) -> bool {
        self.counters.trusted.load(Ordering::Acquire)
    }

    /// Resolves once the caches are trusted (`true`: the channel is up) or
    /// not (`false`: it is down).
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

    fn counted<T>(&self, cache: &'static str, found: Option<T>) -> Option<T> {
        if let Some(metrics) = self.metrics.get() {
            metrics.replica_cache(cache, found.is_some());
        }
        found
    }

    pub fn client(&self, id: &ClientId) -> Option<Arc<ClientState>> {
        if !self.trusted() {
            return None;
        }
        self.counted("applications", self.clients.get(id))
    }

    pub fn caller(&self, digest: &str) -> Option<Arc<Caller>> {
        if !self.trusted() {
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
        if let Ok(mut set) = self.revoked.write() {
            set.retain(|_, expires| *expires > now);
        }
    }

    /// How many revocations this replica holds in memory.
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
    pub fn applied(&self) -> u64 {
        *self.counters.applied.borrow()
    }

    /// Resolves once this replica has applied `count` changes.
    pub async fn wait_for_applied(&self, count: u64) {
        let mut applied = self.counters.applied.subscribe();
        let _ = applied.wait_for(|now| *now >= count).await;
    }

    /// Drops what `change` makes stale.
    pub fn apply(&self, change: &Change) {
        self.counters.epoch.fetch_add(1, Ordering::AcqRel);
        self.counters.applied.send_modify(|count| *count += 1);
        match change {
            Change::Application(id) => self.clients.invalidate(id),
            Change::Keys => self.callers.invalidate_all(),
            Change::Revoked(jti, expires) => {
                if let Ok(mut set) = self.revoked.write() {
                    set.insert(*jti, *expires);
                }
            }
        }
    }

    fn clear(&self) {
        self.counters.epoch.fetch_add(1, Ordering::AcqRel);
        self.clients.invalidate_all();
        self.callers.invalidate_all();
        if let Ok(mut set) = self.revoked.write() {
            set.clear();
        }
    }

    /// Listens for changes until the process ends, trusting the caches only
    /// while listening. Does nothing unless `db` is PostgreSQL.
    pub fn listen(&self, db: &DatabaseConnection, clock: Arc<dyn Clock>) {
        if db.get_database_backend() != DbBackend::Postgres {
            return;
        }
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

    /// Applies notifications while the channel lasts; the caches are trusted
    /// exactly that long.
    async fn follow(&self, mut listener: PgListener, db: &DatabaseConnection, clock: &dyn Clock) {
        // Whatever changed while nobody listened is unknown: start empty,
        // then load the revocations (after subscribing, so none is missed).
        self.clear();
        match unexpired_revocations(db, to_micros(clock.now())).await {
            Ok(jtis) => {
                if let Ok(mut set) = self.revoked.write() {
                    set.extend(jtis);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot load token revocations");
                return;
            }
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
    }
}
