//! Client authentication (RFC 6749 section 2.3), every way a client
//! proves who it is, in one place: a confidential client by one of its
//! secrets (`client_secret_basic` or `client_secret_post`), a
//! non-confidential client by its ID alone (section 2.3 does not apply: it
//! has nothing to prove, and PKCE or the refresh token's binding stand in).
//! Failures count against the source address, never against the client.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

use super::ClientCredentials;
use crate::domain::client_state::{ClientState, StoredSecret};
use crate::domain::user_grant::IssuedUnder;
use crate::domain::{
    application_type::ApplicationType,
    credential::{self, CredentialKind},
    names::ClientId,
    oauth::OAuthError,
};
use crate::service::Service;
use crate::store::Credential;

/// A client that proved who it is, and how.
#[derive(Debug)]
pub(super) struct AuthenticatedClient {
    pub id: ClientId,
    pub state: Arc<ClientState>,
    /// The secret that authenticated it, recorded in the tokens it gets so
    /// that ending the secret's tokens ends exactly those; `None` for a
    /// non-confidential client, identified by its ID alone.
    pub credential: Option<Uuid>,
}

impl AuthenticatedClient {
    /// What is issued to this client now is issued under its credential,
    /// decided at the revision of the state it authenticated against.
    pub fn issued_under(&self) -> IssuedUnder {
        IssuedUnder {
            credential: self.credential,
            revision: self.state.revision,
        }
    }
}

impl Service {
    /// Authenticates a client by its secret, cheapest check first, counting
    /// failures against the source address (never against the client: a
    /// budget anyone who knows a client ID could spend would let strangers
    /// lock it out). A malformed client ID or secret, an unknown client and
    /// a client without secrets are refused without any verification
    /// (client IDs are public in OAuth: telling whether one exists reveals
    /// nothing secret).
    pub(super) async fn authenticate_client(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let result = match &credentials.assertion {
            Some(assertion) => self.check_assertion(credentials, assertion).await,
            None => self.check_client(credentials).await,
        };
        if matches!(
            result,
            Err(OAuthError::InvalidClient | OAuthError::InvalidAssertion(_))
        ) {
            self.machinery.budget.record_failure(credentials.source);
        }
        result
    }

    /// [`Service::authenticate_client`], but a non-confidential client may
    /// also identify itself by its ID alone: it has no secret.
    pub(super) async fn authenticate_any_client(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<AuthenticatedClient, OAuthError> {
        if credentials.secret.is_some() || credentials.assertion.is_some() {
            return self.authenticate_client(credentials).await;
        }
        let result = self.identify_public_client(credentials).await;
        if matches!(result, Err(OAuthError::InvalidClient)) {
            self.machinery.budget.record_failure(credentials.source);
        }
        result
    }

    async fn check_client(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let Some(client_id) = ClientId::parse(&credentials.client_id) else {
            return Err(OAuthError::InvalidClient);
        };
        let Some(secret) = &credentials.secret else {
            return Err(OAuthError::InvalidClient);
        };
        // A mistyped secret fails its checksum before any database read.
        if !credential::is_well_formed(CredentialKind::ClientSecret, secret.expose_secret()) {
            return Err(OAuthError::InvalidClient);
        }
        // A source refused for its failures gets no database read, unless
        // it presents a secret this replica verified before. A client this
        // replica holds in memory is still checked, at the cost of one cheap
        // verification. Either way its owner is served even from an address
        // it shares with whoever failed there.
        let refused = self.machinery.budget.refused_for(credentials.source);
        let cached = match refused {
            Some(_) => self.store.cached_client_state(client_id),
            None => None,
        };
        let (state, remembered) = match (refused, cached) {
            (_, Some(state)) => (state, true),
            (Some(retry_after), None)
                if !self
                    .machinery
                    .verified
                    .known(client_id, secret, self.clock.now()) =>
            {
                return Err(OAuthError::TooManyAttempts { retry_after });
            }
            _ => self
                .store
                .client_state_and_origin(client_id, self.clock.now())
                .await?
                .ok_or(OAuthError::InvalidClient)?,
        };
        let wrong = || match refused {
            Some(retry_after) => OAuthError::TooManyAttempts { retry_after },
            None => OAuthError::InvalidClient,
        };
        let now = self.clock.now();
        if let Some(secret_id) = self
            .machinery
            .verified
            .lookup(client_id, secret, &state, now)
        {
            self.metrics.secret_cache(true);
            return self.secret_accepted(client_id, state, secret_id, now).await;
        }
        self.metrics.secret_cache(false);
        if let Some(secret_id) = self.verify_current(client_id, secret, &state, now) {
            return self.secret_accepted(client_id, state, secret_id, now).await;
        }
        // What this replica remembers may predate a secret generated a
        // moment ago through another replica (whose change is still on its
        // way): read the application once more before refusing, at most
        // once per client in a while, so strangers who send wrong secrets
        // for a client cost a few reads a second, not one each.
        let state = match (remembered, refused) {
            (true, None) if self.machinery.rereads.claim(client_id, now) => {
                let fresh = self
                    .store
                    .reread_client_state(client_id, now)
                    .await?
                    .ok_or(OAuthError::InvalidClient)?;
                if let Some(secret_id) = self.verify_current(client_id, secret, &fresh, now) {
                    return self.secret_accepted(client_id, fresh, secret_id, now).await;
                }
                fresh
            }
            _ => state,
        };
        let slow: Vec<&StoredSecret> = state
            .live_secrets(now)
            .filter(|s| !credential::is_current_hash(&s.phc))
            .collect();
        if slow.is_empty() {
            return Err(wrong());
        }
        // A hash from before the parameters for generated secrets: ~15 ms
        // each, so a refused source gets none, and the others pay for each
        // in advance, on the bounded pool.
        if let Some(retry_after) = refused {
            return Err(OAuthError::TooManyAttempts { retry_after });
        }
        let admitted = self.machinery.pool.admit().ok_or(OAuthError::Busy)?;
        self.machinery
            .budget
            .reserve_slow(credentials.source)
            .map_err(|retry_after| OAuthError::TooManyAttempts { retry_after })?;
        let candidates: Vec<StoredSecret> = slow.into_iter().cloned().collect();
        let presented = secret.clone();
        let matched = self
            .machinery
            .pool
            .run_admitted(admitted, move || {
                candidates
                    .into_iter()
                    .find(|s| credential::verify_secret_on_this_thread(&presented, &s.phc))
            })
            .await?;
        let Some(matched) = matched else {
            return Err(OAuthError::InvalidClient);
        };
        self.upgrade_hash(client_id, secret, &matched).await;
        self.machinery
            .verified
            .remember(client_id, secret, matched.id, state.revision, now);
        self.secret_accepted(client_id, state, matched.id, now)
            .await
    }

    /// The ID of the live secret of today's hash parameters that `secret`
    /// is, remembered for the next request.
    fn verify_current(
        &self,
        client_id: ClientId,
        secret: &SecretString,
        state: &ClientState,
        now: OffsetDateTime,
    ) -> Option<Uuid> {
        let matched = state
            .live_secrets(now)
            .filter(|s| credential::is_current_hash(&s.phc))
            .find(|s| credential::verify_secret(secret, &s.phc))?;
        self.machinery
            .verified
            .remember(client_id, secret, matched.id, state.revision, now);
        Some(matched.id)
    }

    /// The client a secret just authenticated: its use noted, and its ID
    /// made the token's credential.
    async fn secret_accepted(
        &self,
        client_id: ClientId,
        state: Arc<ClientState>,
        secret_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<AuthenticatedClient, OAuthError> {
        self.note_credential_use(Credential::Secret(secret_id), now)
            .await;
        Ok(AuthenticatedClient {
            id: client_id,
            state,
            credential: Some(secret_id),
        })
    }

    /// Replaces a password-grade hash with one of today's parameters, now
    /// that the secret is known to be right. A failure only means the next
    /// use verifies the slow way again.
    async fn upgrade_hash(
        &self,
        client_id: ClientId,
        secret: &SecretString,
        stored: &StoredSecret,
    ) {
        let upgraded = match credential::hash_secret(secret) {
            Ok(phc) => phc,
            Err(_) => return,
        };
        match self
            .store
            .replace_secret_hash(client_id, stored.id, &stored.phc, &upgraded)
            .await
        {
            Ok(true) => {
                self.metrics.secret_hash_upgraded();
                tracing::info!(client_id = %client_id, "a client secret's hash now has the parameters for generated secrets");
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not replace a client secret's hash"),
        }
    }

    /// Records a credential's last use: one small write at most every few
    /// minutes per credential and replica, not one per request.
    pub(super) async fn note_credential_use(&self, credential: Credential, now: OffsetDateTime) {
        if !self.machinery.credential_use.due(credential.id(), now) {
            return;
        }
        // Failing to record a use must not fail the request.
        if let Err(e) = self.store.touch_credential(credential, now).await {
            tracing::warn!(error = %e, "could not record a credential's last use");
        }
    }

    /// The client of a code or refresh token request: a confidential one
    /// by its secret, a non-confidential one by its ID alone (it has no
    /// secret; PKCE or the refresh token's binding stand in). Either must
    /// have user scopes.
    pub(super) async fn authenticate_user_client(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let client = self.authenticate_any_client(credentials).await?;
        if !client.state.grants.has_user_scopes() {
            return Err(OAuthError::UnauthorizedClient(
                "this application has no user scopes, so it may not use this grant".into(),
            ));
        }
        Ok(client)
    }

    /// A non-confidential client by its ID: one that may authenticate
    /// without a secret.
    async fn identify_public_client(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let client_id = ClientId::parse(&credentials.client_id).ok_or(OAuthError::InvalidClient)?;
        if let Some(retry_after) = self.machinery.budget.refused_for(credentials.source) {
            return Err(OAuthError::TooManyAttempts { retry_after });
        }
        let state = self
            .store
            .client_state(client_id, self.clock.now())
            .await?
            .ok_or(OAuthError::InvalidClient)?;
        if state.app_type != ApplicationType::NonConfidential {
            return Err(OAuthError::InvalidClient);
        }
        Ok(AuthenticatedClient {
            id: client_id,
            state,
            credential: None,
        })
    }
}
