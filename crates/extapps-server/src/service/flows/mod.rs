//! The OAuth 2.0 flows (SPEC section 4), one file each, in the order a
//! request meets them: how a client proves who it is
//! ([`client_auth`]), the client credentials grant, the authorization
//! endpoint and the sign-in front end's answer, the authorization code and
//! refresh token grants, introspection, revocation, and a user's view of
//! what they authorized. What several flows share lives here: the settings,
//! the shape of an issued token, and the rules of a user grant.
//!
//! A new grant type or client authentication method gets its own file
//! here; the HTTP side (`crate::oauth`) only parses and answers.

mod authorize;
mod client_assertion;
mod client_auth;
mod client_credentials;
mod code_grant;
mod introspection;
mod refresh_grant;
mod revocation;
mod signin_handoff;
#[cfg(test)]
mod tests;
mod user_authorizations;

use std::collections::BTreeSet;

use secrecy::SecretString;
use time::OffsetDateTime;

use super::{Service, SourceKey};
use crate::domain::{
    Error,
    audit::{AuditAction, NewAuditEvent},
    catalog::OFFLINE_ACCESS,
    clock::to_micros,
    oauth::OAuthError,
    token::{FreshToken, TokenClaims},
};
use crate::domain::{client_state::ClientState, user_grant::UserGrant};
use crate::store::UserGrantsOf;

pub use authorize::{AuthorizeOutcome, AuthorizeParams};
use client_auth::AuthenticatedClient;
pub use introspection::ActiveToken;
pub use signin_handoff::{AuthorizationRequestView, ScopeView};

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
    pub user: UserAccessSettings,
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

/// A client's credentials as presented, and where they came from.
#[derive(Debug)]
pub struct ClientCredentials {
    /// Empty when the client sent only a client assertion, which names it.
    pub client_id: String,
    /// `None` for a client that sent only its ID (a non-confidential one).
    pub secret: Option<SecretString>,
    /// A signed JWT instead of a secret (RFC 7523 section 2.2): single-use
    /// and short-lived, but kept out of `Debug` like a secret.
    pub assertion: Option<SecretString>,
    /// The paths of the endpoints whose URL a client assertion may name as
    /// its audience (beside the issuer): the endpoint the request came to,
    /// and the token endpoint.
    pub audience_paths: &'static [&'static str],
    /// The source address's budget key; `None` where there is no peer
    /// address (in-process callers).
    pub source: Option<SourceKey>,
}

/// Settings of user-context access.
#[derive(Debug, Clone)]
pub struct UserAccessSettings {
    /// Where browsers are sent to sign in and consent; without it,
    /// `/oauth2/authorize` answers that user access is not set up.
    pub signin_url: Option<String>,
    /// How long a pending authorization request waits for its answer.
    pub request_ttl: time::Duration,
    /// How long an authorization code may be redeemed.
    pub code_ttl: time::Duration,
    /// A refresh token unused this long stops working.
    pub refresh_idle: time::Duration,
    /// Nothing of a grant with `offline_access` works after this.
    pub refresh_lifetime: time::Duration,
    /// How long the refresh token just replaced still gets its successor
    /// again, for a client that lost the response.
    pub refresh_grace: time::Duration,
}

impl Default for UserAccessSettings {
    fn default() -> Self {
        Self {
            signin_url: None,
            request_ttl: time::Duration::minutes(10),
            code_ttl: time::Duration::seconds(60),
            refresh_idle: time::Duration::days(30),
            refresh_lifetime: time::Duration::days(90),
            refresh_grace: time::Duration::seconds(30),
        }
    }
}

fn invalid_grant(why: &str) -> OAuthError {
    OAuthError::InvalidGrant(why.into())
}

impl Service {
    fn user(&self) -> &UserAccessSettings {
        &self.tokens.user
    }

    /// Revokes a grant whose code or refresh token came back after use,
    /// with its access tokens, and records it.
    async fn user_grant_replayed(
        &self,
        state: &ClientState,
        grant: &UserGrant,
        what: &str,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let ended = self
            .store
            .revoke_user_grants(
                UserGrantsOf::One(grant.id),
                now + self.tokens.ttl,
                |_| NewAuditEvent {
                    organization: Some(state.organization.clone()),
                    application: Some(grant.client_id),
                    actor: format!("client:{}", grant.client_id),
                    action: AuditAction::GrantReplayed,
                    before: None,
                    after: None,
                    details: [
                        ("grant".to_owned(), grant.id.to_string()),
                        ("subject".to_owned(), grant.subject.clone()),
                        ("replayed".to_owned(), what.to_owned()),
                    ]
                    .into(),
                },
                now,
            )
            .await?;
        if ended > 0 {
            tracing::warn!(client_id = %grant.client_id, replayed = what,
                "a used credential was presented again: the grant is revoked");
        }
        Ok(())
    }

    /// An access token for the grant's user, never outliving the grant.
    fn issue_user_token(
        &self,
        client: &AuthenticatedClient,
        grant: &UserGrant,
        scopes: BTreeSet<String>,
        refresh_token: Option<SecretString>,
        now: OffsetDateTime,
    ) -> Result<IssuedToken, OAuthError> {
        let issued_at = to_micros(now);
        let expires_at = (issued_at + micros(self.tokens.ttl)).min(to_micros(grant.expire_time));
        let (access_token, mut shown) = self.seal_access_token(
            client,
            Some(grant),
            scopes.into_iter().collect(),
            issued_at,
            expires_at,
        )?;
        if refresh_token.is_some() {
            shown.push(OFFLINE_ACCESS.to_owned());
        }
        Ok(IssuedToken {
            access_token,
            expires_in: (expires_at - issued_at).div_euclid(1_000_000),
            scopes: shown,
            refresh_token,
        })
    }

    /// A new access token for `client`, for the user of `grant` if there is
    /// one: its ID and nonce drawn together, decided under the client's
    /// credential at the revision its state was read at. Hands back the
    /// scopes it carries.
    fn seal_access_token(
        &self,
        client: &AuthenticatedClient,
        grant: Option<&UserGrant>,
        scopes: Vec<String>,
        issued_at: i64,
        expires_at: i64,
    ) -> Result<(SecretString, Vec<String>), OAuthError> {
        let fresh = FreshToken::draw()?;
        let claims = TokenClaims {
            id: fresh.id(),
            client_id: client.id,
            subject: grant.map(|g| g.subject.clone()),
            grant: grant.map(|g| g.id),
            credential: client.credential,
            revision: client.state.revision,
            scopes,
            issued_at,
            expires_at,
        };
        let token = self.seals.access_tokens.seal_fresh(&claims, fresh)?;
        Ok((token, claims.scopes))
    }
}

/// A duration in microseconds, saturating.
fn micros(duration: time::Duration) -> i64 {
    i64::try_from(duration.whole_microseconds()).unwrap_or(i64::MAX)
}
