//! The refresh token grant (RFC 6749 section 6, RFC 9700 section 4.14):
//! refresh tokens rotate on every use; the one just replaced gets the same
//! successor again for a short while (a client that lost the answer), and
//! any earlier one is reuse and revokes the whole grant.

use std::collections::BTreeSet;

use time::OffsetDateTime;

use super::client_auth::AuthenticatedClient;
use super::{ClientCredentials, IssuedToken, invalid_grant};
use crate::domain::user_grant::UserGrant;
use crate::domain::{catalog::ScopeSet, oauth::OAuthError, scope_rules};
use crate::service::Service;

impl Service {
    /// The refresh token grant (RFC 6749 section 6): rotates the token. The
    /// token just replaced gets the same successor again for a short while;
    /// any other token of an earlier generation is reuse and revokes the
    /// whole grant.
    pub async fn refresh(
        &self,
        credentials: &ClientCredentials,
        token: &str,
        scope: Option<&str>,
    ) -> Result<IssuedToken, OAuthError> {
        let client = self.authenticate_user_client(credentials).await?;
        let (client_id, state) = (client.id, &client.state);
        let refused = || invalid_grant("the refresh token is invalid, expired or revoked");
        let failed = || {
            self.machinery.budget.record_failure(credentials.source);
            refused()
        };
        // Forged and mistyped tokens stop here, before any read: they cost
        // nothing, so they count against no budget (a genuine one under a
        // retired key must not lock its client's address out either).
        let (grant_id, generation) = self.seals.refresh_tokens.open(token).ok_or_else(refused)?;
        let grant = self
            .store
            .find_user_grant(grant_id)
            .await?
            .ok_or_else(failed)?;
        let now = self.clock.now();
        if grant.client_id != client_id {
            return Err(failed());
        }
        // A refresh token issued to a client whose credential has since
        // ended its tokens (a rotation with `revoke_tokens`) ended with it.
        let ended = state.issue_ended(grant.refresh_issued);
        if grant.revoke_time.is_some() || grant.expire_time <= now || ended {
            return Err(refused());
        }
        let Some(current) = grant.refresh_generation else {
            return Err(refused());
        };
        let scopes =
            scope_rules::refresh_scopes(state.user_grant_scopes(&grant), &grant.scopes, scope)
                .map_err(|s| scope_rules::scope_refused(&self.catalog, s, ScopeSet::User))?;
        if scopes.is_empty() {
            return Err(invalid_grant(
                "no scope of this authorization is still granted",
            ));
        }
        if generation == current {
            if grant.refresh_expire_time.is_none_or(|end| end <= now) {
                return Err(refused());
            }
            let Some(next_generation) = current.checked_add(1) else {
                return Err(invalid_grant(
                    "this authorization has used all its refresh tokens: sign in again",
                ));
            };
            let idle_end = (now + self.user().refresh_idle).min(grant.expire_time);
            if self
                .store
                .rotate_refresh(grant.id, current, idle_end, client.issued_under(), now)
                .await?
            {
                let next = self.seals.refresh_tokens.make(&grant.id, next_generation)?;
                return self.issue_user_token(&client, &grant, scopes, Some(next), now);
            }
            // Rotated by a request just before this one: answered below as
            // a retry of it.
            let grant = self
                .store
                .find_user_grant(grant_id)
                .await?
                .ok_or_else(refused)?;
            return self
                .earlier_refresh_token(&client, &grant, generation, scopes, now)
                .await;
        }
        self.earlier_refresh_token(&client, &grant, generation, scopes, now)
            .await
    }

    /// A genuine refresh token that is not the grant's current one: the
    /// one just replaced, within the grace window, gets the current one
    /// again (its client lost the answer); an older one is reuse.
    async fn earlier_refresh_token(
        &self,
        client: &AuthenticatedClient,
        grant: &UserGrant,
        generation: u32,
        scopes: BTreeSet<String>,
        now: OffsetDateTime,
    ) -> Result<IssuedToken, OAuthError> {
        let refused = || invalid_grant("the refresh token is invalid, expired or revoked");
        let Some(current) = grant.refresh_generation else {
            return Err(refused());
        };
        if grant.revoke_time.is_some() {
            return Err(refused());
        }
        if generation > current {
            // Made by this server, but ahead of the grant: the database
            // was restored from an older copy.
            tracing::warn!(client_id = %grant.client_id,
                "a refresh token is ahead of its grant: was the database restored?");
            return Err(refused());
        }
        let within_grace = grant
            .rotate_time
            .is_some_and(|rotated| now - rotated <= self.user().refresh_grace);
        if generation.checked_add(1) == Some(current) && within_grace {
            let successor = self.seals.refresh_tokens.make(&grant.id, current)?;
            return self.issue_user_token(client, grant, scopes, Some(successor), now);
        }
        self.user_grant_replayed(&client.state, grant, "refresh_token")
            .await?;
        Err(refused())
    }
}
