//! Access tokens: issuing them to clients (RFC 6749 section 4.4), telling
//! resource servers about them (RFC 7662) and revoking them (RFC 7009).

use std::{collections::BTreeSet, sync::Arc};

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Service, auth_budget::SourceKey};
use crate::domain::{
    Error,
    application::ApplicationType,
    caller::Caller,
    catalog::ScopeSet,
    clock::{from_micros, to_micros},
    credential::{self, CredentialKind},
    names::ClientId,
    oauth::OAuthError,
    token::TokenClaims,
};
use crate::store::ClientState;

/// Settings of the tokens this server issues.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// Lifetime of an access token.
    pub ttl: time::Duration,
    /// The issuer identifier (`iss`), this server's base URL.
    pub issuer: String,
    /// User-context access: sign-in, codes and refresh tokens.
    pub user: super::UserAccessSettings,
}

/// A token just issued.
#[derive(Debug)]
pub struct IssuedToken {
    pub access_token: SecretString,
    pub expires_in: i64,
    pub scopes: Vec<String>,
    /// For a user grant with `offline_access`.
    pub refresh_token: Option<SecretString>,
}

/// What introspection tells about an active token (RFC 7662 section 2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveToken {
    pub scopes: Vec<String>,
    pub client_id: String,
    pub exp: i64,
    pub iat: i64,
    pub sub: String,
    pub aud: Vec<String>,
    pub iss: String,
    pub jti: String,
    /// The organization of the token's application, told only to callers
    /// that span organizations (platform-wide keys and operators).
    pub organization: Option<String>,
}

/// A client's credentials as presented, and where they came from.
#[derive(Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    /// `None` for a client that sent only its ID (a non-confidential one).
    pub secret: Option<SecretString>,
    /// The source address's budget key; `None` where there is no peer
    /// address (in-process callers).
    pub source: Option<SourceKey>,
}

fn seconds(micros: i64) -> i64 {
    micros.div_euclid(1_000_000)
}

impl Service {
    /// Authenticates a client by its secret, cheapest check first, counting
    /// failures against the source: a malformed client ID or secret, an
    /// unknown client and a client without secrets are refused without any
    /// verification (client IDs are public
    /// in OAuth: telling whether one exists reveals nothing secret). A secret
    /// this replica verified before is accepted from its cache without
    /// touching any budget. Only then is one verification reserved from the
    /// client's and the source's budgets, and run on the bounded pool.
    async fn authenticate_client(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<(ClientId, Arc<ClientState>), OAuthError> {
        let result = self.check_client(credentials).await;
        if matches!(result, Err(OAuthError::InvalidClient)) {
            self.budget.record_failure(credentials.source);
        }
        result
    }

    /// [`Service::authenticate_client`], but a non-confidential client may
    /// also identify itself by its ID alone: it has no secret.
    pub(super) async fn authenticate_any_client(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<(ClientId, Arc<ClientState>), OAuthError> {
        if credentials.secret.is_some() {
            return self.authenticate_client(credentials).await;
        }
        let result = self.identify_public_client(credentials).await;
        if matches!(result, Err(OAuthError::InvalidClient)) {
            self.budget.record_failure(credentials.source);
        }
        result
    }

    async fn check_client(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<(ClientId, Arc<ClientState>), OAuthError> {
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
        // it presents a secret verified before (whose owner it may share
        // an address with).
        if let Some(retry_after) = self.budget.refused_for(credentials.source)
            && !self.verified.known(client_id, secret, self.clock.now())
        {
            return Err(OAuthError::TooManyAttempts { retry_after });
        }
        let Some(state) = self.store.client_state(client_id).await? else {
            return Err(OAuthError::InvalidClient);
        };
        let now = self.clock.now();
        if let Some(secret_id) = self.verified.lookup(client_id, secret, &state, now) {
            self.metrics.secret_cache(true);
            self.note_secret_use(&secret_id, now).await;
            return Ok((client_id, state));
        }
        self.metrics.secret_cache(false);
        let hashes: Vec<(String, String)> = state
            .live_secrets(now)
            .map(|x| (x.id.clone(), x.phc.clone()))
            .collect();
        if hashes.is_empty() {
            return Err(OAuthError::InvalidClient);
        }
        // Requests presenting the same secret meanwhile share this one
        // verification and its outcome.
        let (key, in_flight, started) = self
            .verified
            .verification(client_id, secret)
            .ok_or(OAuthError::ServerError)?;
        // Whoever runs the verification (the starter, or a joiner if the
        // starter's request was cancelled) also clears it.
        let ran = std::sync::atomic::AtomicBool::new(false);
        let outcome = in_flight
            .get_or_init(|| async {
                ran.store(true, std::sync::atomic::Ordering::Relaxed);
                // A place in the pool first: refused at once, it costs no
                // budget.
                let admitted = self.pool.admit().ok_or(OAuthError::Busy)?;
                self.budget
                    .reserve(client_id, credentials.source)
                    .map_err(|retry_after| OAuthError::TooManyAttempts { retry_after })?;
                let presented = secret.clone();
                let matched = self
                    .pool
                    .run_admitted(admitted, move || {
                        hashes
                            .into_iter()
                            .find(|(_, phc)| {
                                credential::verify_secret_on_this_thread(&presented, phc)
                            })
                            .map(|(id, _)| id)
                    })
                    .await?;
                if let Some(secret_id) = &matched {
                    self.verified
                        .remember(client_id, secret, secret_id, state.revision, now);
                }
                Ok(matched)
            })
            .await
            .clone();
        if started || ran.load(std::sync::atomic::Ordering::Relaxed) {
            self.verified.finished(key, &in_flight);
        }
        // A request that joined a verification started against older state
        // accepts its outcome only for a secret still live in its own.
        let Some(secret_id) = outcome? else {
            return Err(OAuthError::InvalidClient);
        };
        if !state.live_secrets(now).any(|s| s.id == secret_id) {
            return Err(OAuthError::InvalidClient);
        }
        self.note_secret_use(&secret_id, now).await;
        Ok((client_id, state))
    }

    /// Records a secret's last use: one small write at most every few
    /// minutes per secret and replica, not one per request.
    async fn note_secret_use(&self, secret_id: &str, now: OffsetDateTime) {
        const EVERY: time::Duration = time::Duration::minutes(5);
        {
            let Ok(mut written) = self.secret_use.lock() else {
                return;
            };
            if written
                .get(secret_id)
                .is_some_and(|last| now - *last < EVERY)
            {
                return;
            }
            written.insert(secret_id.to_owned(), now);
        }
        // Failing to record a use must not fail the request.
        if let Err(e) = self.store.touch_secret(secret_id, now).await {
            tracing::warn!(error = %e, "could not record a secret's last use");
        }
    }

    /// The client credentials grant (RFC 6749 section 4.4): a token for the
    /// application itself, carrying the requested application scopes (all of
    /// them if none are requested).
    pub async fn issue_client_credentials(
        &self,
        credentials: &ClientCredentials,
        scope: Option<&str>,
    ) -> Result<IssuedToken, OAuthError> {
        // A non-confidential client is told that it may not use this grant,
        // not that it failed to authenticate.
        if credentials.secret.is_none() {
            // Authenticated by its ID alone (its failure counted once,
            // there), it is a non-confidential client.
            self.authenticate_any_client(credentials).await?;
            return Err(OAuthError::UnauthorizedClient(
                "a non-confidential application may not use client_credentials".into(),
            ));
        }
        let (client_id, state) = self.authenticate_client(credentials).await?;
        if state.app_type != ApplicationType::Confidential || !state.grants.has_application_scopes()
        {
            return Err(OAuthError::UnauthorizedClient(
                "this application has no application scopes, so it may not use client_credentials"
                    .into(),
            ));
        }
        let granted: BTreeSet<&str> = state
            .grants
            .iter()
            .flat_map(|(_, g)| g.application_scopes.iter().map(String::as_str))
            .collect();
        let scopes: Vec<String> = match scope.map(str::split_whitespace) {
            None => granted.iter().map(|s| s.to_string()).collect(),
            Some(requested) => {
                let mut chosen = BTreeSet::new();
                for s in requested {
                    if !granted.contains(s) {
                        return Err(self.scope_refused(s, ScopeSet::Application));
                    }
                    chosen.insert(s.to_owned());
                }
                if chosen.is_empty() {
                    granted.iter().map(|s| s.to_string()).collect()
                } else {
                    chosen.into_iter().collect()
                }
            }
        };
        let now = to_micros(self.clock.now());
        let ttl = self.tokens.ttl.whole_microseconds() as i64;
        let claims = TokenClaims {
            id: Uuid::new_v4(),
            client_id,
            subject: None,
            grant: None,
            scopes: scopes.clone(),
            issued_at: now,
            expires_at: now + ttl,
        };
        Ok(IssuedToken {
            access_token: self.sealer.seal(&claims)?,
            expires_in: self.tokens.ttl.whole_seconds(),
            scopes,
            refresh_token: None,
        })
    }

    /// Introspects a token for `caller`: a key of one organization sees only
    /// that organization's tokens, a key bound to resources only tokens for
    /// one of them. `None` means inactive, with no reason given, as RFC 7662
    /// requires.
    pub async fn introspect(
        &self,
        token: &str,
        caller: &Caller,
    ) -> Result<Option<ActiveToken>, Error> {
        let answer = self.introspect_inner(token, caller).await;
        if let Ok(active) = &answer {
            self.metrics.introspection(active.is_some());
        }
        answer
    }

    async fn introspect_inner(
        &self,
        token: &str,
        caller: &Caller,
    ) -> Result<Option<ActiveToken>, Error> {
        let now = self.clock.now();
        let Some(claims) = self.open_live_token(token, now) else {
            return Ok(None);
        };
        let Some(state) = self
            .store
            .introspection_state(claims.client_id, claims.id, claims.grant)
            .await?
        else {
            return Ok(None);
        };
        let revoked_on_rotation = state
            .tokens_not_before
            .is_some_and(|t| from_micros(claims.issued_at) < t);
        if state.revoked || revoked_on_rotation || !caller.sees(&state.organization) {
            return Ok(None);
        }
        // Scopes removed since issuance no longer count.
        let set = match claims.subject {
            None => ScopeSet::Application,
            Some(_) => ScopeSet::User,
        };
        let scopes: Vec<String> = claims
            .scopes
            .iter()
            .filter(|s| {
                state.grants.iter().any(|(_, g)| match set {
                    ScopeSet::Application => g.application_scopes.contains(*s),
                    ScopeSet::User => g.user_scopes.contains(*s),
                })
            })
            .cloned()
            .collect();
        let aud: BTreeSet<String> = scopes
            .iter()
            .filter_map(|s| self.catalog.owner_of(set, s).map(str::to_owned))
            .collect();
        if aud.is_empty() {
            return Ok(None);
        }
        let resources = &caller.resources;
        if !resources.is_empty() && !resources.iter().any(|r| aud.contains(r)) {
            return Ok(None);
        }
        Ok(Some(ActiveToken {
            scopes,
            client_id: claims.client_id.to_string(),
            exp: seconds(claims.expires_at),
            iat: seconds(claims.issued_at),
            sub: claims
                .subject
                .unwrap_or_else(|| claims.client_id.to_string()),
            aud: aud.into_iter().collect(),
            iss: self.tokens.issuer.clone(),
            jti: claims.id.to_string(),
            organization: caller
                .spans_organizations()
                .then(|| state.organization.to_string()),
        }))
    }

    /// The claims of a token this server sealed that is live at `now`: not
    /// expired, not issued in the future, and not living longer than this
    /// server issues tokens for (whoever sealed it, the bound holds).
    fn open_live_token(&self, token: &str, now: OffsetDateTime) -> Option<TokenClaims> {
        const CLOCK_SKEW: i64 = 60_000_000;
        let claims = self.sealer.open(token)?;
        let now = to_micros(now);
        let lifetime = claims.expires_at.checked_sub(claims.issued_at)?;
        let max = i64::try_from(self.tokens.ttl.whole_microseconds()).ok()?;
        (claims.expires_at > now && claims.issued_at <= now + CLOCK_SKEW && lifetime <= max)
            .then_some(claims)
    }

    /// Revokes a token of the authenticated client (RFC 7009): an access
    /// token, or a refresh token with its whole grant. A non-confidential
    /// client identifies itself by its ID. A token that is unknown, expired
    /// or another client's is ignored: the answer is the same, so revocation
    /// tells nothing about other clients' tokens.
    pub async fn revoke(
        &self,
        credentials: &ClientCredentials,
        token: &str,
    ) -> Result<(), OAuthError> {
        let (client_id, state) = self.authenticate_any_client(credentials).await?;
        if token.starts_with(crate::domain::refresh_token::REFRESH_TOKEN_PREFIX) {
            return Ok(self.revoke_refresh_token(client_id, &state, token).await?);
        }
        let now = self.clock.now();
        let Some(claims) = self.open_live_token(token, now) else {
            return Ok(());
        };
        // Another client's token, or one revoked already: nothing to write
        // (a repeated revocation costs a read, not a write and a message to
        // every replica).
        if claims.client_id != client_id || self.store.token_revoked(claims.id).await? {
            return Ok(());
        }
        self.store
            .revoke_token(claims.id, client_id, from_micros(claims.expires_at))
            .await?;
        Ok(())
    }
}
