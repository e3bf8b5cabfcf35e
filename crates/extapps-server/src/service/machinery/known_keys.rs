//! A bounded memory of the keys that verified a client's assertions lately,
//! per client. Behind an address refused for its failures, an assertion
//! that one of them verifies still gets its application read (and then
//! checked in full against it), so an owner who shares an address with
//! strangers is served whatever the state of the replica's caches; a
//! stranger, who cannot sign, gets no read. It decides nothing else.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{client_assertion::Assertion, client_key::VerifyingKey, names::ClientId};

/// Keys remembered at once, of all clients (an 8192-bit RSA key takes
/// about 1 KiB, so at most about 10 MiB).
const CAPACITY: u64 = 10_000;

pub struct KnownKeys {
    entries: moka::sync::Cache<ClientId, Arc<Vec<VerifyingKey>>>,
}

impl std::fmt::Debug for KnownKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownKeys")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl KnownKeys {
    /// A memory whose entries last `idle` after their last use.
    pub fn new(idle: Duration) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .weigher(|_, keys: &Arc<Vec<VerifyingKey>>| {
                    u32::try_from(keys.len()).unwrap_or(u32::MAX)
                })
                .time_to_idle(idle)
                .build(),
        }
    }

    /// Whether a key that verified an assertion of `client_id` lately
    /// verifies this one: one verification, no database read.
    pub fn signed_by_known_key(&self, client_id: ClientId, assertion: &Assertion<'_>) -> bool {
        self.entries.get(&client_id).is_some_and(|keys| {
            keys.iter()
                .filter(|key| {
                    key.algorithm == assertion.algorithm
                        && assertion.kid.as_deref().is_none_or(|kid| key.is_named(kid))
                })
                .any(|key| key.verifies(assertion.signed, assertion.signature))
        })
    }

    /// Notes that `key` verified an assertion of `client_id`.
    pub fn remember(&self, client_id: ClientId, key: &VerifyingKey) {
        let known = self.entries.get(&client_id);
        if known
            .as_ref()
            .is_some_and(|keys| keys.iter().any(|k| k.id == key.id))
        {
            return;
        }
        // A client holds at most ten keys; the oldest remembered goes first.
        let mut keys: Vec<VerifyingKey> = known.map(|k| k.as_ref().clone()).unwrap_or_default();
        keys.push(key.clone());
        if keys.len() > crate::domain::client_key::MAX_KEYS {
            keys.remove(0);
        }
        self.entries.insert(client_id, Arc::new(keys));
    }
}
