//! Client authentication by a signed JWT (RFC 7521, RFC 7523 section 2.2):
//! `private_key_jwt`, signed by the client with a key registered on its
//! application, or an outside provider's token for one of its federated
//! credentials. Cheapest first: everything the assertion says about itself
//! (`domain::client_assertion`), the issuer allowlist, the source's budget,
//! the application; then the signature, with the key's own algorithm; last,
//! its single use, recorded for every replica.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

use super::ClientCredentials;
use super::client_auth::AuthenticatedClient;
use crate::domain::{
    application_type::ApplicationType,
    client_assertion::{self, Assertion, Refusal},
    client_state::ClientState,
    names::ClientId,
    oauth::OAuthError,
};
use crate::service::Service;
use crate::store::{Credential, FirstUse};

/// Why a credential could not be found for an assertion.
enum Miss {
    /// The assertion's fault: told to the client.
    Refused(Refusal),
    /// Ours or the provider's: retry later.
    Failed(OAuthError),
    /// Retry later too, but counted against the source: a `kid` the cached
    /// keys of the provider do not hold, when they may not be read again.
    FailedCharged(OAuthError),
}

impl From<Refusal> for Miss {
    fn from(refusal: Refusal) -> Self {
        Miss::Refused(refusal)
    }
}

/// Keys one assertion may be checked against.
const MAX_CANDIDATES: usize = 10;

/// How many signatures one request may have checked: every candidate key
/// (at most ten), or one for a source refused for its failures.
#[derive(Clone, Copy)]
enum Checks {
    All,
    /// Behind an address refused for its failures (which, when the header
    /// could mean several keys, is told to wait).
    One {
        retry_after: std::time::Duration,
    },
}

impl Service {
    pub(super) async fn check_assertion(
        &self,
        credentials: &ClientCredentials,
        text: &SecretString,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let now = self.clock.now();
        let refuse = |refusal: Refusal| {
            self.metrics.client_assertion(refusal.label());
            OAuthError::InvalidAssertion(refusal)
        };
        let issuer = self.issuer();
        let for_us = |aud: &str| {
            aud == issuer
                || aud
                    .strip_prefix(issuer)
                    .is_some_and(|path| credentials.audience_paths.contains(&path))
        };
        let named = Some(credentials.client_id.as_str()).filter(|id| !id.is_empty());
        let assertion =
            client_assertion::read(text.expose_secret(), named, &for_us, now).map_err(refuse)?;
        let client_id = match assertion.is_self_signed() {
            true => ClientId::parse(&assertion.subject).ok_or_else(|| refuse(Refusal::Subject))?,
            false => {
                // Never a network call for an issuer the operator did not
                // allow.
                if !self.issuers.allows(&assertion.issuer) {
                    return Err(refuse(Refusal::IssuerNotAllowed));
                }
                named
                    .and_then(ClientId::parse)
                    .ok_or(OAuthError::InvalidClient)?
            }
        };
        // A refused source gets no database read unless this replica holds
        // the client in memory, or the assertion verifies (once) under a
        // key it verified lately; and at most one signature check.
        let refused = self.machinery.budget.refused_for(credentials.source);
        let checks = match refused {
            Some(retry_after) => Checks::One { retry_after },
            None => Checks::All,
        };
        let (state, remembered) = match (refused, self.store.cached_client_state(client_id)) {
            (_, Some(state)) => (state, true),
            (Some(retry_after), None) if !self.verifies_under_known_key(client_id, &assertion) => {
                return Err(OAuthError::TooManyAttempts { retry_after });
            }
            _ => self
                .store
                .client_state_and_origin(client_id, now)
                .await?
                .ok_or(OAuthError::InvalidClient)?,
        };
        let (state, credential) = match self.credential_of(&state, &assertion, checks, now).await {
            Ok(credential) => (state, credential),
            // A key or credential added a moment ago through another
            // replica may not have reached this one's memory yet: read once
            // more, at most once per client in a while, as for secrets. A
            // provider's signature that failed does not depend on it.
            Err(Miss::Refused(refusal))
                if remembered
                    && refused.is_none()
                    && (assertion.is_self_signed() || refusal != Refusal::Signature)
                    && self.machinery.rereads.claim(client_id, now) =>
            {
                let fresh = self
                    .store
                    .reread_client_state(client_id, now)
                    .await?
                    .ok_or(OAuthError::InvalidClient)?;
                match self.credential_of(&fresh, &assertion, checks, now).await {
                    Ok(credential) => (fresh, credential),
                    Err(Miss::Refused(_)) => return Err(refuse(refusal)),
                    Err(Miss::Failed(error)) => return Err(error),
                    Err(Miss::FailedCharged(error)) => {
                        self.machinery.budget.record_failure(credentials.source);
                        return Err(error);
                    }
                }
            }
            Err(Miss::Refused(refusal)) => return Err(refuse(refusal)),
            Err(Miss::Failed(error)) => return Err(error),
            Err(Miss::FailedCharged(error)) => {
                self.machinery.budget.record_failure(credentials.source);
                return Err(error);
            }
        };
        // Expired while it was checked: its `jti` may be forgotten already.
        if assertion.expire_time <= self.clock.now() {
            return Err(refuse(Refusal::Expired));
        }
        match self
            .store
            .first_use_of_assertion(
                *client_id.as_uuid(),
                &assertion.issuer,
                &assertion.jti,
                assertion.expire_time,
            )
            .await?
        {
            FirstUse::Yes => {}
            FirstUse::No => return Err(refuse(Refusal::Replayed)),
        }
        self.metrics.client_assertion("accepted");
        self.note_assertion_use(client_id, &state, &assertion, credential, now)
            .await;
        Ok(AuthenticatedClient {
            id: client_id,
            state,
            credential: Some(credential),
        })
    }

    /// The key or federated credential of the client that `assertion`
    /// proves: checked against at most ten keys, or one (`Checks::One`).
    async fn credential_of(
        &self,
        state: &ClientState,
        assertion: &Assertion<'_>,
        checks: Checks,
        now: OffsetDateTime,
    ) -> Result<Uuid, Miss> {
        if state.app_type != ApplicationType::Confidential {
            return Err(Refusal::NoKey.into());
        }
        if assertion.is_self_signed() {
            let candidates: Vec<_> = state
                .live_keys(now)
                .filter(|key| {
                    key.algorithm == assertion.algorithm
                        && assertion.kid.as_deref().is_none_or(|kid| key.is_named(kid))
                })
                .collect();
            let key = self.first_verifying(&candidates, checks, |key| {
                key.verifies(assertion.signed, assertion.signature)
            })?;
            return Ok(key.id);
        }
        // An outside provider's token: its issuer, subject and audience must
        // be those of one credential, exactly, before any network call.
        let credential = state
            .federated
            .iter()
            .find(|c| {
                c.issuer == assertion.issuer
                    && c.subject == assertion.subject
                    && assertion.audiences.contains(&c.audience)
            })
            .ok_or(Refusal::NoFederatedCredential)?;
        let kid = assertion.kid.as_deref();
        // Keys cached but without this `kid`, and none may be read now: a
        // stranger's made-up `kid` costs the source as a failure does.
        let cached = self.issuers.cached(&assertion.issuer).is_some();
        let unavailable = |_| {
            let error = OAuthError::TemporarilyUnavailable(
                "the identity provider's signing keys cannot be read now; retry later".into(),
            );
            match cached {
                true => Miss::FailedCharged(error),
                false => Miss::Failed(error),
            }
        };
        // A source refused for its failures makes no outbound request: the
        // keys cached, or told to wait.
        let keys = match checks {
            Checks::One { retry_after } => self
                .issuers
                .cached(&assertion.issuer)
                .ok_or(Miss::Failed(OAuthError::TooManyAttempts { retry_after }))?,
            Checks::All => self
                .issuers
                .key_set(&assertion.issuer, kid, false, now)
                .await
                .map_err(unavailable)?,
        };
        let candidates: Vec<_> = keys.candidates(kid).collect();
        match self.first_verifying(&candidates, checks, |key| {
            key.verifies(assertion.signed, assertion.signature)
        }) {
            Ok(_) => {}
            // A token without a `kid` may be signed by a key the provider
            // added since: its keys are read again (at most once a minute).
            // Only for a source within its budget; and when no fetch may
            // run now, the refusal stands (and is charged to the source).
            Err(Miss::Refused(Refusal::Signature))
                if kid.is_none() && matches!(checks, Checks::All) =>
            {
                let Ok(keys) = self
                    .issuers
                    .key_set(&assertion.issuer, None, true, now)
                    .await
                else {
                    return Err(Refusal::Signature.into());
                };
                let candidates: Vec<_> = keys.candidates(None).collect();
                self.first_verifying(&candidates, checks, |key| {
                    key.verifies(assertion.signed, assertion.signature)
                })?;
            }
            Err(miss) => return Err(miss),
        }
        Ok(credential.id)
    }

    /// The first of `candidates` that `verifies`, each check counted; none
    /// at all is `NoKey`; more candidates than checks allowed refuse the
    /// source instead of checking them.
    fn first_verifying<'k, K>(
        &self,
        candidates: &[&'k K],
        checks: Checks,
        verifies: impl Fn(&K) -> bool,
    ) -> Result<&'k K, Miss> {
        // An application holds at most ten keys; a provider's set may hold
        // more, and a token must then name its key.
        if candidates.is_empty() || candidates.len() > MAX_CANDIDATES {
            return Err(Refusal::NoKey.into());
        }
        if let Checks::One { retry_after } = checks
            && candidates.len() > 1
        {
            // Behind an address refused for its failures, an assertion
            // must name its key (`kid`): one check, not ten.
            return Err(Miss::Failed(OAuthError::TooManyAttempts { retry_after }));
        }
        candidates
            .iter()
            .find(|key| {
                self.metrics.signature_checked();
                verifies(key)
            })
            .copied()
            .ok_or(Refusal::Signature.into())
    }

    /// Whether the assertion verifies, with one check and no database read,
    /// under the one key that verified the client lately (`private_key_jwt`
    /// only).
    fn verifies_under_known_key(&self, client_id: ClientId, assertion: &Assertion<'_>) -> bool {
        let (signed, signature) = (assertion.signed, assertion.signature);
        let check = |verifies: bool| {
            self.metrics.signature_checked();
            verifies
        };
        if assertion.is_self_signed() {
            self.machinery
                .known_keys
                .candidate(client_id, assertion)
                .is_some_and(|key| check(key.verifies(signed, signature)))
        } else {
            // A provider's token proves nothing about the client: anyone
            // may hold one of a public provider's.
            false
        }
    }

    /// Remembers the key that verified, and records the credential's last
    /// use: one small write at most every few minutes.
    async fn note_assertion_use(
        &self,
        client_id: ClientId,
        state: &Arc<ClientState>,
        assertion: &Assertion<'_>,
        credential: Uuid,
        now: OffsetDateTime,
    ) {
        if assertion.is_self_signed()
            && let Some(key) = state.keys.iter().find(|key| key.id == credential)
        {
            self.machinery.known_keys.remember(client_id, key);
        }
        let credential = match assertion.is_self_signed() {
            true => Credential::Key(credential),
            false => Credential::Federated(credential),
        };
        self.note_credential_use(credential, now).await;
    }
}
