//! A bounded memory of recently verified client secrets, so a client asking
//! for tokens again skips argon2id: even at the parameters for generated
//! secrets (~11 µs) a verification costs more than the rest of a token
//! request's own work, and a hit costs an HMAC (see BENCHMARKS.md). It
//! decides nothing a verification would not: a miss only costs a
//! verification. Behind an address refused for its failures, a secret
//! verified before still gets its application read, so an owner who shares
//! an address with a stranger is served.
//!
//! Entries are keyed by an HMAC of the client ID and secret under a key held
//! by the server, never by the secret. An entry only counts while the
//! application's revision is the one it was verified at and its secret is
//! still live: any edit, rotation or deletion (read fresh from the database on
//! every request) makes it a miss at once, on every replica.
//!
//! How long an entry lasts unused is decided on the service clock, so tests
//! move it; the cache's own expiry, in real time, only bounds memory.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use time::OffsetDateTime;

use uuid::Uuid;

use crate::domain::client_state::ClientState;
use crate::domain::{clock::to_micros, names::ClientId};

const CAPACITY: u64 = 100_000;

struct Verified {
    secret_id: Uuid,
    revision: i64,
    /// When the entry was last used, in microseconds on the service clock.
    last_use: AtomicI64,
}

impl Verified {
    /// Whether the entry was used within `idle` before `now`.
    fn fresh_at(&self, now: OffsetDateTime, idle: Duration) -> bool {
        let idle = i64::try_from(idle.as_micros()).unwrap_or(i64::MAX);
        to_micros(now).saturating_sub(self.last_use.load(Ordering::Relaxed)) <= idle
    }

    fn used_at(&self, now: OffsetDateTime) {
        self.last_use.fetch_max(to_micros(now), Ordering::Relaxed);
    }
}

pub struct VerifiedSecrets {
    key: [u8; 32],
    idle: Duration,
    entries: moka::sync::Cache<[u8; 32], Arc<Verified>>,
}

impl std::fmt::Debug for VerifiedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedSecrets")
            .field("entries", &self.entries.entry_count())
            .finish_non_exhaustive()
    }
}

impl VerifiedSecrets {
    /// A cache whose entries last `idle` after their last use: longer than
    /// a token lives, so a client that comes back for a new token when its
    /// old one expires still finds its secret here.
    pub fn new(key: [u8; 32], idle: Duration) -> Self {
        Self {
            key,
            idle,
            entries: moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_idle(idle)
                .build(),
        }
    }

    fn fingerprint(&self, client_id: ClientId, secret: &SecretString) -> Option<[u8; 32]> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).ok()?;
        mac.update(client_id.as_uuid().as_bytes());
        mac.update(secret.expose_secret().as_bytes());
        Some(mac.finalize().into_bytes().into())
    }

    /// Whether `secret` was verified for `client_id` and used within the
    /// idle time before `now` (it may have been rotated since:
    /// [`VerifiedSecrets::lookup`] decides, and only its hits count as use).
    pub fn known(&self, client_id: ClientId, secret: &SecretString, now: OffsetDateTime) -> bool {
        self.fingerprint(client_id, secret)
            .and_then(|key| self.entries.get(&key))
            .is_some_and(|hit| hit.fresh_at(now, self.idle))
    }

    /// The ID of the secret `secret` was verified as, if that still holds
    /// for `state` at `now`.
    pub fn lookup(
        &self,
        client_id: ClientId,
        secret: &SecretString,
        state: &ClientState,
        now: OffsetDateTime,
    ) -> Option<Uuid> {
        let hit = self.entries.get(&self.fingerprint(client_id, secret)?)?;
        let live = state.live_secrets(now).any(|s| s.id == hit.secret_id);
        if !(hit.fresh_at(now, self.idle) && hit.revision == state.revision && live) {
            return None;
        }
        hit.used_at(now);
        Some(hit.secret_id)
    }

    pub fn remember(
        &self,
        client_id: ClientId,
        secret: &SecretString,
        secret_id: Uuid,
        revision: i64,
        now: OffsetDateTime,
    ) {
        if let Some(fingerprint) = self.fingerprint(client_id, secret) {
            self.entries.insert(
                fingerprint,
                Arc::new(Verified {
                    secret_id,
                    revision,
                    last_use: AtomicI64::new(to_micros(now)),
                }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::client_state::StoredSecret;
    use crate::domain::{application_type::ApplicationType, names::OrganizationId};

    const S1: Uuid = Uuid::from_u128(1);

    fn state(revision: i64, expire_time: Option<OffsetDateTime>) -> ClientState {
        ClientState {
            organization: OrganizationId::parse("acme").unwrap(),
            display_name: "App".into(),
            app_type: ApplicationType::Confidential,
            redirect_urls: vec![],
            grants: Default::default(),
            tokens_not_before: None,
            revision,
            scope_removals: Default::default(),
            credential_cutoffs: Default::default(),
            secrets: vec![StoredSecret {
                id: S1,
                phc: String::new(),
                expire_time,
            }],
            keys: vec![],
            federated: vec![],
        }
    }

    #[test]
    fn hits_only_while_revision_and_secret_hold() {
        let cache = VerifiedSecrets::new([9; 32], Duration::from_secs(60));
        let client = ClientId::generate();
        let secret = SecretString::from("extapps_cs_example".to_owned());
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        assert_eq!(cache.lookup(client, &secret, &state(1, None), now), None);
        cache.remember(client, &secret, S1, 1, now);
        assert_eq!(
            cache.lookup(client, &secret, &state(1, None), now),
            Some(S1)
        );
        // Another secret, another client, a newer revision: misses.
        let other = SecretString::from("extapps_cs_other".to_owned());
        assert_eq!(cache.lookup(client, &other, &state(1, None), now), None);
        assert_eq!(
            cache.lookup(ClientId::generate(), &secret, &state(1, None), now),
            None
        );
        assert_eq!(cache.lookup(client, &secret, &state(2, None), now), None);
        // A secret past its grace period: miss.
        let ended = Some(now - time::Duration::SECOND);
        assert_eq!(cache.lookup(client, &secret, &state(1, ended), now), None);
    }

    #[test]
    fn entries_last_their_idle_time_on_the_service_clock() {
        let cache = VerifiedSecrets::new([9; 32], Duration::from_secs(60));
        let client = ClientId::generate();
        let secret = SecretString::from("extapps_cs_example".to_owned());
        let start = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        let at = |seconds: i64| start + time::Duration::seconds(seconds);
        cache.remember(client, &secret, S1, 1, start);
        // Each hit starts the idle time over; being known or a miss does not.
        assert!(cache.known(client, &secret, at(60)));
        let hit = cache.lookup(client, &secret, &state(1, None), at(60));
        assert_eq!(hit, Some(S1));
        assert_eq!(
            cache.lookup(client, &secret, &state(2, None), at(110)),
            None
        );
        assert!(cache.known(client, &secret, at(120)));
        assert!(!cache.known(client, &secret, at(121)));
        // Unused for longer than the idle time: gone, both ways.
        assert_eq!(
            cache.lookup(client, &secret, &state(1, None), at(121)),
            None
        );
    }
}
