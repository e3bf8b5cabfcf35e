//! The use cases of extapps, independent of transport: authenticate the
//! caller, check its role and organization, validate, then call the store.
//! gRPC handlers (and the operator CLI) only convert to and from these.

mod applications;
mod audit;
mod client_keys;
mod federation;
mod flows;
mod keys;
mod machinery;
mod secrets;

use std::sync::Arc;

use secrecy::SecretString;

pub use applications::{ApplicationUpdate, WithSecret};
pub use client_keys::KeyRequest;
pub use federation::FederatedRequest;
pub use flows::{
    ActiveToken, AuthorizationRequestView, AuthorizeOutcome, AuthorizeParams, ClientCredentials,
    IssuedToken, MAX_TOKEN_TTL, ScopeView, TokenSettings, UserAccessSettings,
};
pub use keys::CreatedKey;
pub use machinery::auth_budget::{BudgetSettings, SourceKey};
pub use machinery::verify_pool::PoolSettings;
pub use secrets::SecretRequest;

/// Bounds on the work unauthenticated clients can cause.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientAuthSettings {
    pub pool: PoolSettings,
    pub budget: BudgetSettings,
    /// Proxies whose `X-Forwarded-For` entries are trusted (0: none).
    pub trusted_proxies: usize,
    /// Which outside identity providers' keys may be fetched, and how.
    pub federation: crate::issuers::FederationSettings,
}

use crate::domain::{
    Error, Reason,
    authorization::AuthorizationRequests,
    caller::Caller,
    catalog::Catalog,
    clock::Clock,
    credential::{self, CredentialKind},
    key_ring::{KeyRing, Purpose, PurposeKeys},
    page_token::PageTokens,
    refresh_token::RefreshTokens,
    token::TokenSealer,
};
use crate::store::Store;
use machinery::paces::RecentCallers;

/// Everything a call needs, shared by every handler. axum hands each
/// request its own clone of the state, so a clone is one reference count,
/// whatever the service holds (a test keeps it so).
#[derive(Debug, Clone)]
pub struct Service(Arc<Shared>);

impl std::ops::Deref for Service {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What every clone of a [`Service`] shares; nothing outside reads it.
#[derive(Debug)]
#[doc(hidden)]
pub struct Shared {
    store: Store,
    catalog: Catalog,
    clock: Arc<dyn Clock>,
    /// What the tokens this server issues are like.
    tokens: TokenSettings,
    /// The keys that seal what this server hands out.
    seals: Seals,
    /// Budgets, pools and caches: how much work a request may cost.
    machinery: machinery::Machinery,
    client_auth: ClientAuthSettings,
    /// Outside identity providers' keys, for federated credentials.
    issuers: crate::issuers::IssuerKeys,
    metrics: crate::metrics::Metrics,
}

/// What this server hands out sealed under the key ring, each under keys
/// of its own purpose: nothing sealed for one purpose opens as another.
#[derive(Debug)]
struct Seals {
    access_tokens: TokenSealer,
    refresh_tokens: RefreshTokens,
    /// Pending authorization requests, sealed into their IDs.
    authorization_requests: AuthorizationRequests,
    page_tokens: PageTokens,
    /// Saved responses of creating calls.
    idempotency: PurposeKeys,
}

impl Service {
    pub async fn new(
        store: Store,
        catalog: Catalog,
        clock: Arc<dyn Clock>,
        ring: &KeyRing,
        tokens: TokenSettings,
        client_auth: ClientAuthSettings,
    ) -> Result<Self, Error> {
        let seals = Seals {
            access_tokens: TokenSealer::new(&ring.keys_for(Purpose::AccessToken)?),
            refresh_tokens: RefreshTokens::new(ring.keys_for(Purpose::RefreshToken)?),
            authorization_requests: AuthorizationRequests::new(
                &ring.keys_for(Purpose::AuthorizationRequest)?,
            ),
            page_tokens: PageTokens::new(ring.keys_for(Purpose::PageToken)?),
            idempotency: ring.keys_for(Purpose::Idempotency)?,
        };
        // Twice a token's lifetime, and at least ten minutes.
        let remembered = std::time::Duration::try_from(tokens.ttl * 2)
            .unwrap_or_default()
            .max(std::time::Duration::from_secs(600));
        let verified = machinery::verified_secrets::VerifiedSecrets::new(
            *ring.keys_for(Purpose::VerifiedSecrets)?.sealing().1,
            remembered,
        );
        let machinery = machinery::Machinery::new(
            verified,
            client_auth.budget,
            client_auth.pool,
            clock.clone(),
        )?;
        let metrics = crate::metrics::Metrics::default();
        let issuers =
            crate::issuers::IssuerKeys::new(client_auth.federation.clone(), metrics.clone())
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot make the HTTP client of federated issuers");
                    Error::Internal
                })?;
        store.count_in(metrics.clone());
        Ok(Self(Arc::new(Shared {
            store,
            catalog,
            clock,
            tokens,
            seals,
            machinery,
            client_auth,
            issuers,
            metrics,
        })))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// The bounds on client authentication this server runs with.
    pub fn client_auth(&self) -> &ClientAuthSettings {
        &self.client_auth
    }

    /// The issuer identifier of this server.
    pub fn issuer(&self) -> &str {
        &self.tokens.issuer
    }

    /// Starts what runs beside the requests: following other replicas'
    /// changes (unless `caches` is off: a replica that does not follow them
    /// never trusts its caches), and housekeeping once a minute.
    pub fn start_background(&self, caches: bool) {
        const EVERY: std::time::Duration = std::time::Duration::from_secs(60);
        if caches {
            self.store.listen_for_changes(self.clock.clone());
        }
        let service = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                ticks.tick().await;
                service.housekeeping().await;
            }
        });
    }

    /// Forgets revocations of tokens that have expired, in memory and in
    /// the database, grants that ended, answers of expired authorization
    /// requests, secrets and keys that expired, the `jti` of expired client
    /// assertions, and budgets that are full again;
    /// counts the secrets about to expire. A failure is logged and retried at the next round.
    pub async fn housekeeping(&self) {
        self.machinery.budget.prune();
        let now = self.clock.now();
        match self.store.purge_expired_revocations(now).await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "purged revocations of expired tokens"),
            Err(e) => {
                tracing::warn!(error = %e, "could not purge expired revocations; retrying later")
            }
        }
        // A revoked grant's access tokens are revoked by ID until they
        // expire; the grant itself is kept as long again, then dropped.
        match self
            .store
            .purge_ended_user_grants(now, now - self.tokens.ttl)
            .await
        {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "purged ended grants and answered requests"),
            Err(e) => tracing::warn!(error = %e, "could not purge ended grants; retrying later"),
        }
        // An expired secret or key is kept as long as an access token it
        // got can live, on any replica (whatever its own token lifetime)
        // and across their clocks, so that deleting it can still end that
        // token.
        let credentials_expired_by = now - MAX_TOKEN_TTL * 2;
        match self
            .store
            .purge_expired_secrets(credentials_expired_by)
            .await
        {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "purged expired secrets"),
            Err(e) => tracing::warn!(error = %e, "could not purge expired secrets; retrying later"),
        }
        match self
            .store
            .purge_expired_assertions_and_keys(now, credentials_expired_by)
            .await
        {
            Ok((0, 0)) => {}
            Ok((assertions, keys)) => {
                tracing::debug!(
                    assertions,
                    keys,
                    "forgot expired client assertions and keys"
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not purge expired client assertions and keys; retrying later")
            }
        }
        let horizons = crate::metrics::EXPIRY_HORIZONS.map(|(_, horizon)| horizon);
        match self.store.secrets_expiring(now, &horizons).await {
            Ok(counts) => {
                for ((within, _), count) in crate::metrics::EXPIRY_HORIZONS.iter().zip(counts) {
                    self.metrics.secrets_expiring(within, count);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not count expiring secrets; retrying later")
            }
        }
    }

    /// Identifies the caller from its `authorization` metadata value, sent
    /// from `source`. Failures count against the source like failed client
    /// authentications: past its budget, a source gets no database read
    /// except for a key that authenticated recently.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        source: Option<SourceKey>,
    ) -> Result<Arc<Caller>, Error> {
        let result = self.identify(authorization, source).await;
        if matches!(
            result,
            Err(Error::Unauthenticated {
                reason: Reason::InvalidCredentials,
                ..
            })
        ) {
            self.machinery.budget.record_failure(source);
        }
        result
    }

    async fn identify(
        &self,
        authorization: Option<&str>,
        source: Option<SourceKey>,
    ) -> Result<Arc<Caller>, Error> {
        let Some(value) = authorization else {
            return Err(Error::Unauthenticated {
                reason: Reason::MissingCredentials,
                message: "no caller key: send `authorization: Bearer <key>`".into(),
            });
        };
        let invalid = || Error::Unauthenticated {
            reason: Reason::InvalidCredentials,
            message: "the caller key is malformed, unknown or revoked".into(),
        };
        let key = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| Error::Unauthenticated {
                reason: Reason::MissingCredentials,
                message: "`authorization` must be `Bearer <key>`".into(),
            })?;
        // A mistyped or foreign key fails its checksum without a database hit.
        if !credential::is_well_formed(CredentialKind::CallerKey, key) {
            return Err(invalid());
        }
        let digest = credential::digest_str(key);
        let now = self.clock.now();
        let recent_callers = &self.machinery.recent_callers;
        let last_seen = recent_callers.last_seen(&digest);
        if let Some(retry_after) = self.machinery.budget.refused_for(source)
            && !RecentCallers::lately(last_seen, now)
        {
            return Err(Error::ResourceExhausted {
                reason: Reason::TooManyFailures,
                message: format!(
                    "too many failed authentications from this address; retry in {} s",
                    retry_after.as_secs().max(1)
                ),
                retry_after,
            });
        }
        let caller = self.store.find_caller(&digest).await?.ok_or_else(invalid)?;
        recent_callers.note(digest, last_seen, now);
        Ok(caller)
    }
}

/// Generates a client secret and its hash.
fn new_client_secret() -> Result<(SecretString, String), Error> {
    let secret = credential::generate(CredentialKind::ClientSecret)?;
    let phc = credential::hash_secret(&secret)?;
    Ok((secret, phc))
}

#[cfg(test)]
mod tests {
    /// axum hands every request its own clone of the service: that clone
    /// must stay one reference count, not a copy of all it holds (a
    /// profile once found 38 % of the server's CPU there).
    #[test]
    fn a_clone_of_the_service_is_one_reference_count() {
        assert_eq!(
            std::mem::size_of::<super::Service>(),
            std::mem::size_of::<usize>()
        );
    }
}
