//! Token introspection (RFC 7662) for resource servers, and for a client
//! about its own tokens: a token is active while it is live, its
//! application and credential stand, and at least one of its scopes is
//! still granted; what the caller may see narrows that further (its
//! organization, the resources its key is bound to; for a client, its own
//! tokens only).

use std::collections::BTreeSet;

use time::OffsetDateTime;

use crate::domain::{
    Error,
    caller::{Caller, Role},
    catalog::ScopeSet,
    clock::to_micros,
    names::ClientId,
    oauth::OAuthError,
    token::TokenClaims,
};
use crate::service::Service;
use crate::store::IntrospectionState;

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

fn seconds(micros: i64) -> i64 {
    micros.div_euclid(1_000_000)
}

impl Service {
    /// Introspects a token for `caller`: a key of one organization sees only
    /// that organization's tokens, a key bound to resources only tokens for
    /// one of them. `None` means inactive, with no reason given, as RFC 7662
    /// requires.
    pub async fn introspect(
        &self,
        token: &str,
        caller: &Caller,
    ) -> Result<Option<ActiveToken>, Error> {
        let answer = self.introspect_inner(token, caller, None).await;
        if let Ok(active) = &answer {
            self.metrics.introspection(active.is_some());
        }
        answer
    }

    /// Introspects a token for the client it was issued to, authenticated
    /// as at the token endpoint (a secret or a client assertion): another
    /// client's token is inactive to it.
    pub async fn introspect_as_client(
        &self,
        credentials: &super::ClientCredentials,
        token: &str,
    ) -> Result<Option<ActiveToken>, OAuthError> {
        let client = self.authenticate_client(credentials).await?;
        let viewer = Caller {
            key_id: format!("client:{}", client.id),
            role: Role::Introspect,
            organization: Some(client.state.organization.clone()),
            resources: Vec::new(),
        };
        let answer = self.introspect_inner(token, &viewer, Some(client.id)).await;
        if let Ok(active) = &answer {
            self.metrics.introspection(active.is_some());
        }
        Ok(answer?)
    }

    async fn introspect_inner(
        &self,
        token: &str,
        caller: &Caller,
        only_client: Option<ClientId>,
    ) -> Result<Option<ActiveToken>, Error> {
        let now = self.clock.now();
        let Some(claims) = self.open_live_token(token, now) else {
            return Ok(None);
        };
        if only_client.is_some_and(|client| client != claims.client_id) {
            return Ok(None);
        }
        let Some(found) = self
            .store
            .introspection_state(claims.client_id, claims.id, claims.grant, now)
            .await?
        else {
            return Ok(None);
        };
        let IntrospectionState {
            client: state,
            revoked,
        } = found;
        if revoked || !caller.sees(&state.organization) || state.ended_with_credential(&claims) {
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
            .filter(|s| state.holds(set, s, claims.revision))
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
    pub(super) fn open_live_token(&self, token: &str, now: OffsetDateTime) -> Option<TokenClaims> {
        const CLOCK_SKEW: i64 = 60_000_000;
        let claims = self.seals.access_tokens.open(token)?;
        let now = to_micros(now);
        let lifetime = claims.expires_at.checked_sub(claims.issued_at)?;
        let max = i64::try_from(self.tokens.ttl.whole_microseconds()).ok()?;
        (claims.expires_at > now && claims.issued_at <= now + CLOCK_SKEW && lifetime <= max)
            .then_some(claims)
    }
}
