//! Token revocation (RFC 7009): a client ends one of its access tokens, or
//! a refresh token with its whole grant. Whatever the token, the answer is
//! the same, so revocation tells nothing about other clients' tokens.

use super::ClientCredentials;
use crate::domain::client_state::ClientState;
use crate::domain::{
    Error,
    audit::{AuditAction, NewAuditEvent},
    clock::from_micros,
    names::ClientId,
    oauth::OAuthError,
    refresh_token::REFRESH_TOKEN_PREFIX,
};
use crate::service::Service;
use crate::store::UserGrantsOf;

impl Service {
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
        if token.starts_with(REFRESH_TOKEN_PREFIX) {
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

    /// Revokes a refresh token its client presents (RFC 7009), with its
    /// whole grant: the current token or any earlier one, so that a client
    /// that lost a rotation's answer can still end it. Anything else is
    /// ignored, as for access tokens.
    async fn revoke_refresh_token(
        &self,
        client_id: ClientId,
        state: &ClientState,
        token: &str,
    ) -> Result<(), Error> {
        let Some((grant_id, generation)) = self.seals.refresh_tokens.open(token) else {
            return Ok(());
        };
        let Some(grant) = self.store.find_user_grant(grant_id).await? else {
            return Ok(());
        };
        let issued = grant
            .refresh_generation
            .is_some_and(|current| generation <= current);
        let now = self.clock.now();
        // A grant already ended has nothing to revoke: a repeated
        // revocation costs a read, not a write.
        let ended = grant.revoke_time.is_some() || grant.expire_time <= now;
        if grant.client_id != client_id || !issued || ended {
            return Ok(());
        }
        self.store
            .revoke_user_grants(
                UserGrantsOf::One(grant.id),
                now + self.tokens.ttl,
                |_| NewAuditEvent {
                    organization: Some(state.organization.clone()),
                    application: Some(client_id),
                    actor: format!("client:{client_id}"),
                    action: AuditAction::UserAuthorizationRevoked,
                    before: None,
                    after: None,
                    details: [
                        ("grant".to_owned(), grant.id.to_string()),
                        ("subject".to_owned(), grant.subject.clone()),
                        ("grants".to_owned(), "1".to_owned()),
                    ]
                    .into(),
                },
                now,
            )
            .await?;
        Ok(())
    }
}
