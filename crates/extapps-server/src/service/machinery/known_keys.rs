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

    /// The one key that verified an assertion of `client_id` lately and
    /// that this assertion's header can mean, if there is exactly one: the
    /// caller checks it with one verification and no database read.
    pub fn candidate(
        &self,
        client_id: ClientId,
        assertion: &Assertion<'_>,
    ) -> Option<VerifyingKey> {
        let keys = self.entries.get(&client_id)?;
        let mut candidates = keys.iter().filter(|key| {
            key.algorithm == assertion.algorithm
                && assertion.kid.as_deref().is_none_or(|kid| key.is_named(kid))
        });
        match (candidates.next(), candidates.next()) {
            (Some(only), None) => Some(only.clone()),
            _ => None,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::client_assertion;

    /// An Ed25519 key (RFC 8037 A.2) and an assertion it signed, read
    /// with the assertion rules.
    const JWK: &str =
        r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

    fn key(id: u128) -> VerifyingKey {
        VerifyingKey::from_stored(uuid::Uuid::from_u128(id), JWK, None).unwrap()
    }

    #[test]
    fn remembers_each_key_once_and_names_a_candidate_only_when_one_fits() {
        let known = KnownKeys::new(Duration::from_secs(60));
        let client = ClientId::generate();
        let text = "eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJjIiwic3ViIjoiYyIsImF1ZCI6ImEiLCJpYXQiOjEsImV4cCI6MiwianRpIjoiaiJ9.c2ln";
        let now = time::OffsetDateTime::from_unix_timestamp(1).unwrap();
        let assertion = client_assertion::read(text, None, &|_| true, now).unwrap();
        assert!(
            known.candidate(client, &assertion).is_none(),
            "nothing known"
        );
        known.remember(client, &key(1));
        known.remember(client, &key(1));
        assert_eq!(known.candidate(client, &assertion).unwrap().id, key(1).id);
        assert!(
            known.candidate(ClientId::generate(), &assertion).is_none(),
            "per client"
        );
        // Two keys the header could mean: none is tried.
        known.remember(client, &key(2));
        assert!(known.candidate(client, &assertion).is_none());
    }
}
