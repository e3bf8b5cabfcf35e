//! The use cases of extapps, independent of transport: authenticate the
//! caller, check its role and organization, validate, then call the store.
//! gRPC handlers (and the operator CLI) only convert to and from these.

mod applications;
mod audit;
mod failed_auth;
mod keys;
mod tokens;
mod verified_secrets;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use time::OffsetDateTime;

use secrecy::SecretString;

pub use applications::{ApplicationUpdate, WithSecret};
pub use failed_auth::FAILURES_PER_MINUTE;
pub use keys::CreatedKey;
pub use tokens::{ActiveToken, ClientCredentials, IssuedToken, TokenSettings};

use crate::domain::{
    Error, Reason,
    caller::Caller,
    catalog::Catalog,
    clock::Clock,
    credential::{self, CredentialKind},
    page_token::PageTokens,
    token::TokenSealer,
};
use crate::store::Store;

/// Everything a call needs, shared by every handler.
#[derive(Debug, Clone)]
pub struct Service {
    store: Store,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    page_tokens: PageTokens,
    sealer: TokenSealer,
    tokens: TokenSettings,
    /// Hash of a random secret, verified against when a client has none, so
    /// unknown clients cost what known ones do.
    dummy_hash: String,
    /// Secrets verified recently, to skip argon2id on repeat requests.
    verified: Arc<verified_secrets::VerifiedSecrets>,
    /// Refuses clients that fail authentication too often.
    failed_auth: Arc<failed_auth::FailedAuthLimiter>,
    metrics: crate::metrics::Metrics,
    /// When each secret's last use was last written, per replica.
    secret_use: Arc<Mutex<HashMap<String, OffsetDateTime>>>,
}

impl Service {
    pub async fn new(
        store: Store,
        catalog: Catalog,
        clock: Arc<dyn Clock>,
        tokens: TokenSettings,
    ) -> Result<Self, Error> {
        let page_tokens = PageTokens::new(store.server_key("page_token").await?);
        let sealer = TokenSealer::new(store.server_key("access_token").await?);
        let verified = Arc::new(verified_secrets::VerifiedSecrets::new(
            store.server_key("verified_secrets").await?,
        ));
        let (_, dummy_hash) = new_client_secret().await?;
        let metrics = crate::metrics::Metrics::default();
        store.count_in(metrics.clone());
        Ok(Self {
            store,
            catalog: Arc::new(catalog),
            clock,
            page_tokens,
            sealer,
            tokens,
            dummy_hash,
            verified,
            failed_auth: Arc::default(),
            metrics,
            secret_use: Arc::default(),
        })
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

    /// The issuer identifier of this server.
    pub fn issuer(&self) -> &str {
        &self.tokens.issuer
    }

    /// Identifies the caller from its `authorization` metadata value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Arc<Caller>, Error> {
        let Some(value) = authorization else {
            return Err(Error::Unauthenticated {
                reason: Reason::MissingCredentials,
                message: "missing `authorization: Bearer <key>` metadata".into(),
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
                message: "the `authorization` metadata must be `Bearer <key>`".into(),
            })?;
        // A mistyped or foreign key fails its checksum without a database hit.
        if !credential::is_well_formed(CredentialKind::CallerKey, key) {
            return Err(invalid());
        }
        self.store
            .find_caller(&credential::digest_str(key))
            .await?
            .ok_or_else(invalid)
    }
}

/// Runs CPU-heavy work (argon2id) off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "blocking task failed");
        Error::Internal
    })?
}

/// Generates a client secret and its hash.
async fn new_client_secret() -> Result<(SecretString, String), Error> {
    blocking(|| {
        let secret = credential::generate(CredentialKind::ClientSecret)?;
        let phc = credential::hash_secret(&secret)?;
        Ok((secret, phc))
    })
    .await
}
