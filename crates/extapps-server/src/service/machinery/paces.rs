//! Small memories, kept on the service clock, that spare the database
//! writes and reads a busy client would otherwise cause: which caller keys
//! authenticated lately, when a client's application was last read again
//! for a credential the remembered copy did not know, and when a
//! credential's last use was last written. Each is bounded: real-time expiry bounds memory,
//! the service clock decides what counts as lately.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use moka::ops::compute::{CompResult, Op};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::names::ClientId;

/// A caller key that authenticated within this long is not held to its
/// source's failure budget.
const RECENT_CALLER: time::Duration = time::Duration::HOUR;

/// How stale a recent caller's time may get before it is written again.
const RECENT_CALLER_REFRESH: time::Duration = time::Duration::MINUTE;

/// How often, at most, a client's application is read again to check a
/// secret or key the remembered copy does not know: a few reads a second
/// per client, whatever strangers send.
const REREAD_EVERY: time::Duration = time::Duration::milliseconds(200);

/// How often, at most, a credential's last use is written, per replica.
const CREDENTIAL_USE_EVERY: time::Duration = time::Duration::minutes(5);

const CAPACITY: u64 = 100_000;

/// Digests of caller keys that authenticated lately, and when: they pass a
/// source's failure gate (they are still looked up, so a revoked key stops
/// at once).
pub struct RecentCallers(moka::sync::Cache<String, OffsetDateTime>);

impl RecentCallers {
    pub fn new() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_idle(RECENT_CALLER.unsigned_abs())
                .build(),
        )
    }

    /// When the key with this digest last authenticated, if remembered.
    pub fn last_seen(&self, digest: &str) -> Option<OffsetDateTime> {
        self.0.get(digest)
    }

    /// Whether a key last seen at `last_seen` authenticated lately.
    pub fn lately(last_seen: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
        last_seen.is_some_and(|last| now - last <= RECENT_CALLER)
    }

    /// Notes that the key authenticated at `now`. A write to the cache costs
    /// far more than a read: a key that calls all the time is written again
    /// once a minute, not per call.
    pub fn note(&self, digest: String, last_seen: Option<OffsetDateTime>, now: OffsetDateTime) {
        if last_seen.is_none_or(|last| now - last > RECENT_CALLER_REFRESH) {
            self.0.insert(digest, now);
        }
    }
}

/// When each client's application was last read again to check a secret
/// the remembered copy did not know.
pub struct Rereads(moka::sync::Cache<ClientId, OffsetDateTime>);

impl Rereads {
    pub fn new() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_idle(Duration::from_secs(10))
                .build(),
        )
    }

    /// Whether this request may read `client_id`'s application again: one
    /// request per client in each [`REREAD_EVERY`], decided in one atomic
    /// step, so a burst of wrong secrets costs one read.
    pub fn claim(&self, client_id: ClientId, now: OffsetDateTime) -> bool {
        let claimed = self.0.entry(client_id).and_compute_with(|last| match last {
            Some(last) if now - *last.value() < REREAD_EVERY => Op::Nop,
            _ => Op::Put(now),
        });
        matches!(
            claimed,
            CompResult::Inserted(_) | CompResult::ReplacedWith(_)
        )
    }
}

/// When each credential's (secret's, key's, federated credential's) last
/// use was last written by this replica.
#[derive(Default)]
pub struct CredentialUseWrites(Mutex<HashMap<Uuid, OffsetDateTime>>);

impl CredentialUseWrites {
    /// Whether a use of `credential_id` at `now` should be written: one
    /// small write at most every few minutes per credential, not one per
    /// request.
    pub fn due(&self, credential_id: Uuid, now: OffsetDateTime) -> bool {
        let Ok(mut written) = self.0.lock() else {
            return false;
        };
        if written
            .get(&credential_id)
            .is_some_and(|last| now - *last < CREDENTIAL_USE_EVERY)
        {
            return false;
        }
        written.insert(credential_id, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(millis)
    }

    #[test]
    fn a_client_is_read_again_at_most_once_per_interval() {
        let rereads = Rereads::new();
        let client = ClientId::generate();
        assert!(rereads.claim(client, at(0)));
        assert!(!rereads.claim(client, at(199)));
        assert!(rereads.claim(ClientId::generate(), at(199)), "per client");
        assert!(rereads.claim(client, at(200)));
    }

    #[test]
    fn a_recent_caller_is_remembered_for_an_hour_and_written_once_a_minute() {
        let recent = RecentCallers::new();
        assert!(!RecentCallers::lately(recent.last_seen("k"), at(0)));
        recent.note("k".into(), None, at(0));
        assert_eq!(recent.last_seen("k"), Some(at(0)));
        recent.note("k".into(), Some(at(0)), at(59_000));
        assert_eq!(recent.last_seen("k"), Some(at(0)), "not written again yet");
        recent.note("k".into(), Some(at(0)), at(61_000));
        assert_eq!(recent.last_seen("k"), Some(at(61_000)));
        let hour = 3_600_000;
        assert!(RecentCallers::lately(Some(at(0)), at(hour)));
        assert!(!RecentCallers::lately(Some(at(0)), at(hour + 1)));
    }

    #[test]
    fn a_credential_use_is_written_at_most_every_five_minutes() {
        let writes = CredentialUseWrites::default();
        let secret = Uuid::new_v4();
        assert!(writes.due(secret, at(0)));
        assert!(!writes.due(secret, at(299_999)));
        assert!(writes.due(Uuid::new_v4(), at(1)));
        assert!(writes.due(secret, at(300_000)));
    }
}
