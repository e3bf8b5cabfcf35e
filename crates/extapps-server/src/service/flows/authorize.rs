//! The authorization endpoint (RFC 6749 section 4.1.1, RFC 7636 section
//! 4.3): checks everything it can about a request, then sends the browser
//! to the sign-in front end with the request sealed into its ID. An error
//! found before the redirect URL is trusted is shown as a page; later ones
//! go back to the application (RFC 6749 section 4.1.2.1).

use std::collections::BTreeSet;
use std::sync::Arc;

use uuid::Uuid;

use crate::domain::client_state::ClientState;
use crate::domain::{
    application_type::ApplicationType,
    authorization::{self, MAX_STATE_BYTES, PendingAuthorization},
    catalog::ScopeSet,
    clock::to_micros,
    names::ClientId,
    oauth::OAuthError,
    pkce, scope_rules,
};
use crate::service::{Service, SourceKey};

use super::micros;

/// The parameters of `GET /oauth2/authorize`, as sent.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
}

/// What `GET /oauth2/authorize` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeOutcome {
    /// Send the browser to the sign-in front end.
    SignIn(String),
    /// Send the browser back to the application with an error.
    Redirect(String),
    /// Show an error page: the redirect URL cannot be trusted (or the
    /// server cannot serve users at all).
    Page(OAuthError),
}

fn no_user_scopes() -> OAuthError {
    OAuthError::UnauthorizedClient(
        "this application has no user scopes, so it may not ask users for access".into(),
    )
}

impl Service {
    /// `GET /oauth2/authorize`: checks everything it can, then sends the
    /// browser to sign in with the request sealed into its ID. Writes
    /// nothing: a flood of requests fills no table.
    pub async fn start_authorization(
        &self,
        params: &AuthorizeParams,
        source: Option<SourceKey>,
    ) -> AuthorizeOutcome {
        let Some(signin_url) = &self.user().signin_url else {
            return AuthorizeOutcome::Page(OAuthError::TemporarilyUnavailable(
                "user sign-in is not set up on this server: the operator must set `--signin-url` (EXTAPPS_SIGNIN_URL)".into(),
            ));
        };
        let (client_id, state, redirect_uri, redirect_given) =
            match self.trusted_redirect(params, source).await {
                Ok(found) => found,
                Err(error) => return AuthorizeOutcome::Page(error),
            };
        let back = |error: OAuthError| {
            let state = params
                .state
                .as_deref()
                .filter(|s| s.len() <= MAX_STATE_BYTES);
            let description = error.description();
            let params = [("error", error.code()), ("error_description", &description)];
            AuthorizeOutcome::Redirect(authorization::answer(
                &redirect_uri,
                &params,
                state,
                &self.tokens.issuer,
            ))
        };
        match self.check_authorization(params, client_id, &state, &redirect_uri, redirect_given) {
            Ok(pending) => match self.seals.authorization_requests.seal(&pending) {
                Ok(id) => {
                    let url = authorization::redirect_with(
                        signin_url,
                        &[("authorization_request", id.as_str())],
                    );
                    AuthorizeOutcome::SignIn(url)
                }
                Err(_) => back(OAuthError::ServerError),
            },
            Err(error) => back(error),
        }
    }

    /// The client and the redirect URL of an authorization request, checked
    /// before anything is sent back to that URL.
    async fn trusted_redirect(
        &self,
        params: &AuthorizeParams,
        source: Option<SourceKey>,
    ) -> Result<(ClientId, Arc<ClientState>, String, bool), OAuthError> {
        let Some(raw_id) = params.client_id.as_deref() else {
            return Err(OAuthError::InvalidRequest(
                "parameter `client_id` is missing".into(),
            ));
        };
        let unknown = || OAuthError::InvalidRequest("`client_id` names no application".into());
        let Some(client_id) = ClientId::parse(raw_id) else {
            self.machinery.budget.record_failure(source);
            return Err(unknown());
        };
        if let Some(retry_after) = self.machinery.budget.refused_for(source) {
            return Err(OAuthError::TooManyAttempts { retry_after });
        }
        let Some(state) = self.store.client_state(client_id, self.clock.now()).await? else {
            self.machinery.budget.record_failure(source);
            return Err(unknown());
        };
        // An application that may not ask users at all gets the page: its
        // registered URL is no reason to send a browser anywhere (RFC 9700
        // section 4.11.2, open redirectors).
        if !state.grants.has_user_scopes() {
            return Err(no_user_scopes());
        }
        let native = state.app_type == ApplicationType::NonConfidential;
        let (redirect_uri, given) = authorization::resolve_redirect(
            &state.redirect_urls,
            params.redirect_uri.as_deref(),
            native,
        )?;
        Ok((client_id, state, redirect_uri, given))
    }

    /// Everything else about an authorization request, once its redirect
    /// URL is trusted: errors from here go back to the application.
    fn check_authorization(
        &self,
        params: &AuthorizeParams,
        client_id: ClientId,
        state: &ClientState,
        redirect_uri: &str,
        redirect_uri_given: bool,
    ) -> Result<PendingAuthorization, OAuthError> {
        match params.response_type.as_deref() {
            None => {
                return Err(OAuthError::InvalidRequest(
                    "parameter `response_type` is missing".into(),
                ));
            }
            Some("code") => {}
            Some(_) => return Err(OAuthError::UnsupportedResponseType),
        }
        let stated = params.state.as_deref();
        if stated.is_some_and(|s| s.len() > MAX_STATE_BYTES) {
            return Err(OAuthError::InvalidRequest(format!(
                "`state` is longer than {MAX_STATE_BYTES} bytes"
            )));
        }
        let code_challenge = pkce::challenge_of_request(
            params.code_challenge.as_deref(),
            params.code_challenge_method.as_deref(),
            state.app_type == ApplicationType::NonConfidential,
        )?;
        let granted: BTreeSet<&str> = state
            .grants
            .iter()
            .flat_map(|(_, g)| g.user_scopes.iter().map(String::as_str))
            .collect();
        let (scopes, offline_access) =
            scope_rules::authorization_scopes(params.scope.as_deref(), &granted).map_err(
                |scope| scope_rules::scope_refused(&self.catalog, scope, ScopeSet::User),
            )?;
        let now = to_micros(self.clock.now());
        Ok(PendingAuthorization {
            id: Uuid::new_v4(),
            client_id,
            redirect_uri: redirect_uri.to_owned(),
            redirect_uri_given,
            scopes,
            offline_access,
            state: stated.map(str::to_owned),
            code_challenge,
            expires_at: now.saturating_add(micros(self.user().request_ttl)),
        })
    }
}
