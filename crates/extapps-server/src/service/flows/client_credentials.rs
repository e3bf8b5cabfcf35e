//! The client credentials grant (RFC 6749 section 4.4): a token for a
//! confidential application itself, carrying application scopes.

use std::collections::BTreeSet;

use super::{ClientCredentials, IssuedToken, micros};
use crate::domain::{
    application_type::ApplicationType, catalog::ScopeSet, clock::to_micros, oauth::OAuthError,
    scope_rules,
};
use crate::service::Service;

impl Service {
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
        if credentials.secret.is_none() && credentials.assertion.is_none() {
            // Authenticated by its ID alone (its failure counted once,
            // there), it is a non-confidential client.
            self.authenticate_any_client(credentials).await?;
            return Err(OAuthError::UnauthorizedClient(
                "a non-confidential application may not use client_credentials".into(),
            ));
        }
        let client = self.authenticate_client(credentials).await?;
        let state = &client.state;
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
        let issued_at = to_micros(self.clock.now());
        let expires_at = issued_at.saturating_add(micros(self.tokens.ttl));
        let (access_token, scopes) =
            self.seal_access_token(&client, None, scopes, issued_at, expires_at)?;
        Ok(IssuedToken {
            access_token,
            expires_in: self.tokens.ttl.whole_seconds(),
            scopes,
            refresh_token: None,
        })
    }
}
