//! The authorization code grant (RFC 6749 section 4.1.3, RFC 7636 section
//! 4.6): a code is single-use, short-lived, bound to its client, its
//! redirect URL and its PKCE challenge; one presented a second time revokes
//! everything issued from it (RFC 6749 section 4.1.2).

use super::{ClientCredentials, IssuedToken, invalid_grant};
use crate::domain::{
    application_type::ApplicationType,
    authorization,
    credential::{self, CredentialKind},
    oauth::OAuthError,
    pkce,
};
use crate::service::Service;

impl Service {
    /// The authorization code grant (RFC 6749 section 4.1.3, RFC 7636
    /// section 4.6). A code presented a second time revokes everything
    /// issued from it.
    pub async fn redeem_code(
        &self,
        credentials: &ClientCredentials,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
    ) -> Result<IssuedToken, OAuthError> {
        let client = self.authenticate_user_client(credentials).await?;
        let (client_id, state) = (client.id, &client.state);
        let refused = || invalid_grant("the authorization code is invalid, expired or used");
        // Unknown and foreign codes cost a read each: they count against
        // the source like failed authentications.
        let failed = || {
            self.machinery.budget.record_failure(credentials.source);
            refused()
        };
        let grant_id =
            credential::grant_of(CredentialKind::AuthorizationCode, code).ok_or_else(failed)?;
        let grant = self
            .store
            .find_user_grant(grant_id)
            .await?
            .ok_or_else(failed)?;
        if grant.client_id != client_id
            || !credential::digests_match(&credential::digest_str(code), &grant.code_digest)
        {
            return Err(failed());
        }
        let now = self.clock.now();
        if grant.code_redeem_time.is_some() {
            // Only the first replay has anything to end: later ones cost a
            // read, not a write.
            if grant.revoke_time.is_none() && grant.expire_time > now {
                self.user_grant_replayed(state, &grant, "authorization_code")
                    .await?;
            }
            return Err(refused());
        }
        let native = state.app_type == ApplicationType::NonConfidential;
        let still_registered =
            authorization::choose_redirect(&state.redirect_urls, Some(&grant.redirect_uri), native)
                .is_some();
        if grant.revoke_time.is_some() || grant.code_expire_time <= now || !still_registered {
            return Err(refused());
        }
        authorization::check_token_redirect(
            grant.redirect_uri_given,
            &grant.redirect_uri,
            redirect_uri,
        )?;
        pkce::check_verifier(grant.code_challenge.as_deref(), verifier)?;
        let scopes = state.user_grant_scopes(&grant);
        if scopes.is_empty() {
            return Err(invalid_grant(
                "no scope of this authorization is still granted",
            ));
        }
        let refresh_expire_time = grant
            .offline_access
            .then(|| (now + self.user().refresh_idle).min(grant.expire_time));
        let expire_time = match refresh_expire_time {
            Some(_) => grant.expire_time,
            None => now + self.tokens.ttl,
        };
        if !self
            .store
            .redeem_code(
                grant.id,
                refresh_expire_time,
                expire_time,
                client.issued_under(),
                now,
            )
            .await?
        {
            // Redeemed by a request just before this one: a replay too.
            self.user_grant_replayed(state, &grant, "authorization_code")
                .await?;
            return Err(refused());
        }
        let refresh = match grant.offline_access {
            true => Some(self.seals.refresh_tokens.make(&grant.id, 0)?),
            false => None,
        };
        let mut grant = grant;
        grant.expire_time = expire_time;
        self.issue_user_token(&client, &grant, scopes, refresh, now)
    }
}
