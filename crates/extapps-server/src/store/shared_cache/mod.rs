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
//!
//! This module holds the caches themselves; [`announcements`] what a write
//! announces, [`follow`] how a replica hears of it.

mod announcements;
mod follow;

pub use announcements::{Change, announce, prune_announcements};

use std::{
    collections::HashMap,
    sync::{
        Arc, OnceLock, RwLock,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use uuid::Uuid;

use crate::domain::{caller::Caller, client_state::ClientState, names::ClientId};
use crate::metrics::Metrics;

/// An SQLite server trusts its caches only while a poll started this
/// recently: other processes' changes are seen within this bound.
const POLL_FRESH: Duration = Duration::from_millis(80);
const CAPACITY: u64 = 100_000;
/// Entries also expire on their own, bounding any damage of a missed message.
const TTL: Duration = Duration::from_secs(300);

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
}

#[cfg(test)]
mod tests {
    use super::*;

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
