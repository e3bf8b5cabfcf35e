//! The use cases of extapps, independent of transport: authenticate the
//! caller, check its role and organization, validate, then call the store.
//! gRPC handlers (and the operator CLI) only convert to and from these.

mod applications;
mod audit;
mod keys;

use std::sync::Arc;

use secrecy::SecretString;

pub use applications::{ApplicationUpdate, WithSecret};
pub use keys::CreatedKey;

use crate::domain::{
    Error, Reason,
    caller::Caller,
    catalog::Catalog,
    clock::Clock,
    credential::{self, CredentialKind},
    page_token::PageTokens,
};
use crate::store::Store;

/// Everything a call needs, shared by every handler.
#[derive(Debug, Clone)]
pub struct Service {
    store: Store,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    page_tokens: PageTokens,
}

impl Service {
    pub async fn new(store: Store, catalog: Catalog, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        let page_tokens = PageTokens::new(store.server_key("page_token").await?);
        Ok(Self {
            store,
            catalog: Arc::new(catalog),
            clock,
            page_tokens,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Identifies the caller from its `authorization` metadata value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, Error> {
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
        let key = SecretString::from(key.to_owned());
        self.store
            .find_caller(&credential::digest(&key))
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
