//! Access tokens: issuing them to clients (RFC 6749 section 4.4), telling
//! resource servers about them (RFC 7662) and revoking them (RFC 7009).

use std::{collections::BTreeSet, sync::Arc};

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{REREAD_EVERY, Service, auth_budget::SourceKey};
use crate::domain::{
    Error,
    application::ApplicationType,
    caller::Caller,
    catalog::ScopeSet,
    clock::{from_micros, to_micros},
    credential::{self, CredentialKind},
    names::ClientId,
    oauth::OAuthError,
    scope_rules,
    token::{FreshToken, TokenClaims},
};
use crate::store::{ClientState, IntrospectionState, IssuedUnder, StoredSecret};

/// The longest lifetime any replica may give an access token
/// (`--token-ttl` is at most this).
pub const MAX_TOKEN_TTL: time::Duration = time::Duration::DAY;

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

/// Whether the end of the token's credential ended the token: by the
/// application revision it was decided at, for a token that names its
/// credential; by the time of the last secret rotation that revoked tokens,
/// for one issued before tokens named it.
pub(super) fn ended_with_credential(claims: &TokenClaims, state: &ClientState) -> bool {
    match claims.credential {
        Some(credential) => state.credential_cutoffs.ended(credential, claims.revision),
        None => state
            .tokens_not_before
            .is_some_and(|t| from_micros(claims.issued_at) < t),
    }
}

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
    async fn authenticate_client(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<AuthenticatedClient, OAuthError> {
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
    ) -> Result<AuthenticatedClient, OAuthError> {
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
        let refused = self.budget.refused_for(credentials.source);
        let cached = match refused {
            Some(_) => self.store.cached_client_state(client_id),
            None => None,
        };
        let (state, remembered) = match (refused, cached) {
            (_, Some(state)) => (state, true),
            (Some(retry_after), None)
                if !self.verified.known(client_id, secret, self.clock.now()) =>
            {
                return Err(OAuthError::TooManyAttempts { retry_after });
            }
            _ => self
                .store
                .client_state_and_origin(client_id)
                .await?
                .ok_or(OAuthError::InvalidClient)?,
        };
        let wrong = || match refused {
            Some(retry_after) => OAuthError::TooManyAttempts { retry_after },
            None => OAuthError::InvalidClient,
        };
        let now = self.clock.now();
        if let Some(secret_id) = self.verified.lookup(client_id, secret, &state, now) {
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
            (true, None) if self.claim_reread(client_id, now) => {
                let fresh = self
                    .store
                    .reread_client_state(client_id)
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
        let admitted = self.pool.admit().ok_or(OAuthError::Busy)?;
        self.budget
            .reserve_slow(credentials.source)
            .map_err(|retry_after| OAuthError::TooManyAttempts { retry_after })?;
        let candidates: Vec<StoredSecret> = slow.into_iter().cloned().collect();
        let presented = secret.clone();
        let matched = self
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
        self.verified
            .remember(client_id, secret, matched.id, state.revision, now);
        self.secret_accepted(client_id, state, matched.id, now)
            .await
    }

    /// Whether this request may read `client_id`'s application again to
    /// check a secret the remembered copy does not know: one request per
    /// client in each [`REREAD_EVERY`], decided in one atomic step, so a
    /// burst of wrong secrets costs one read.
    fn claim_reread(&self, client_id: ClientId, now: OffsetDateTime) -> bool {
        use moka::ops::compute::{CompResult, Op};
        let claimed = self
            .rereads
            .entry(client_id)
            .and_compute_with(|last| match last {
                Some(last) if now - *last.value() < REREAD_EVERY => Op::Nop,
                _ => Op::Put(now),
            });
        matches!(
            claimed,
            CompResult::Inserted(_) | CompResult::ReplacedWith(_)
        )
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
        self.verified
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
        self.note_secret_use(secret_id, now).await;
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

    /// Records a secret's last use: one small write at most every few
    /// minutes per secret and replica, not one per request.
    async fn note_secret_use(&self, secret_id: Uuid, now: OffsetDateTime) {
        const EVERY: time::Duration = time::Duration::minutes(5);
        {
            let Ok(mut written) = self.secret_use.lock() else {
                return;
            };
            if written
                .get(&secret_id)
                .is_some_and(|last| now - *last < EVERY)
            {
                return;
            }
            written.insert(secret_id, now);
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
        let client = self.authenticate_client(credentials).await?;
        let (client_id, state) = (client.id, &client.state);
        if state.app_type != ApplicationType::Confidential || !state.grants.has_application_scopes()
        {
            return Err(OAuthError::UnauthorizedClient(
                "this application has no application scopes, so it may not use client_credentials"
                    .into(),
            ));
        }
        let granted: BTreeSet<&str> = state.grants.scopes(ScopeSet::Application).collect();
        let scopes = scope_rules::client_credentials_scopes(scope, &granted)
            .map_err(|s| scope_rules::scope_refused(&self.catalog, s, ScopeSet::Application))?;
        let now = to_micros(self.clock.now());
        let ttl = self.tokens.ttl.whole_microseconds() as i64;
        let fresh = FreshToken::draw()?;
        let claims = TokenClaims {
            id: fresh.id(),
            client_id,
            subject: None,
            grant: None,
            credential: client.credential,
            revision: state.revision,
            scopes: scopes.clone(),
            issued_at: now,
            expires_at: now + ttl,
        };
        Ok(IssuedToken {
            access_token: self.sealer.seal_fresh(&claims, fresh)?,
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
        let Some(found) = self
            .store
            .introspection_state(claims.client_id, claims.id, claims.grant)
            .await?
        else {
            return Ok(None);
        };
        let IntrospectionState {
            client: state,
            revoked,
        } = found;
        if revoked || !caller.sees(&state.organization) || ended_with_credential(&claims, &state) {
            return Ok(None);
        }
        // Scopes removed since the token was decided no longer count, even
        // once granted again.
        let set = match claims.subject {
            None => ScopeSet::Application,
            Some(_) => ScopeSet::User,
        };
        let scopes: Vec<String> = claims
            .scopes
            .iter()
            .filter(|s| {
                state.grants.grants(set, s) && state.scope_removals.kept(set, s, claims.revision)
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
        let client = self.authenticate_any_client(credentials).await?;
        let (client_id, state) = (client.id, client.state);
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
