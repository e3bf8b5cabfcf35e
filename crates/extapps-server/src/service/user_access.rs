//! User-context access (SPEC section 4): the authorization request an
//! application starts, the sign-in front end's answer, the authorization
//! code and refresh token grants, and a user's view of what they
//! authorized.

use std::{collections::BTreeSet, sync::Arc};

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ClientCredentials, IssuedToken, Service, tokens::AuthenticatedClient};
use crate::domain::{
    Error, Reason, Violations,
    application::ApplicationType,
    audit::{AuditAction, NewAuditEvent},
    authorization::{self, MAX_STATE_BYTES, PendingAuthorization},
    caller::{Caller, Role},
    catalog::{OFFLINE_ACCESS, ScopeSet},
    clock::{from_micros, to_micros},
    credential::{self, CredentialKind},
    names::{ApplicationName, ClientId, OrganizationId},
    oauth::OAuthError,
    page_token::checked_page_size,
    pkce, scope_rules,
    token::TokenClaims,
};
use crate::store::{Answer, ClientState, GrantsOf, NewGrant, UserAuthorizationRecord, UserGrant};

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

/// An authorization request as a consent screen shows it.
#[derive(Debug, Clone)]
pub struct AuthorizationRequestView {
    pub id: String,
    pub organization: OrganizationId,
    pub client_id: ClientId,
    pub display_name: String,
    pub app_type: ApplicationType,
    pub scopes: Vec<ScopeView>,
    pub offline_access: bool,
    pub redirect_host: String,
    pub expire_time: OffsetDateTime,
}

/// One requested scope, with the catalog's words for it.
#[derive(Debug, Clone)]
pub struct ScopeView {
    pub scope: String,
    pub resource: String,
    pub resource_display_name: String,
    pub description: String,
}

/// The errors the sign-in front end may answer a request with (RFC 6749
/// section 4.1.2.1).
const REJECTION_ERRORS: [&str; 4] = [
    "access_denied",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
];
const MAX_DESCRIPTION_CHARS: usize = 200;

fn request_not_found() -> Error {
    Error::NotFound {
        reason: Reason::AuthorizationRequestNotFound,
        message: "authorization request not found".into(),
    }
}

fn no_user_scopes() -> OAuthError {
    OAuthError::UnauthorizedClient(
        "this application has no user scopes, so it may not ask users for access".into(),
    )
}

fn invalid_grant(why: &str) -> OAuthError {
    OAuthError::InvalidGrant(why.into())
}

/// The user scopes of a request still granted to the application.
fn still_granted(state: &ClientState, scopes: &BTreeSet<String>) -> BTreeSet<String> {
    scopes
        .iter()
        .filter(|s| state.grants.grants(ScopeSet::User, s))
        .cloned()
        .collect()
}

/// The scopes of a user grant that still hold: granted to the application
/// now, and not removed since the user consented (a scope removed and
/// granted again does not come back to grants made before its removal).
fn grant_scopes(state: &ClientState, grant: &UserGrant) -> BTreeSet<String> {
    still_granted(state, &grant.scopes)
        .into_iter()
        .filter(|s| state.scope_removals.kept(ScopeSet::User, s, grant.revision))
        .collect()
}

impl Service {
    fn user(&self) -> &UserAccessSettings {
        &self.tokens.user
    }

    /// `GET /oauth2/authorize`: checks everything it can, then sends the
    /// browser to sign in with the request sealed into its ID. Writes
    /// nothing: a flood of requests fills no table.
    pub async fn start_authorization(
        &self,
        params: &AuthorizeParams,
        source: Option<super::SourceKey>,
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
            Ok(pending) => match self.authorization_requests.seal(&pending) {
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
        source: Option<super::SourceKey>,
    ) -> Result<(ClientId, Arc<ClientState>, String, bool), OAuthError> {
        let Some(raw_id) = params.client_id.as_deref() else {
            return Err(OAuthError::InvalidRequest(
                "parameter `client_id` is missing".into(),
            ));
        };
        let unknown = || OAuthError::InvalidRequest("`client_id` names no application".into());
        let Some(client_id) = ClientId::parse(raw_id) else {
            self.budget.record_failure(source);
            return Err(unknown());
        };
        if let Some(retry_after) = self.budget.refused_for(source) {
            return Err(OAuthError::TooManyAttempts { retry_after });
        }
        let Some(state) = self.store.client_state(client_id).await? else {
            self.budget.record_failure(source);
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

    /// The pending request `name` names, for the sign-in front end: checked
    /// for role, organization and expiry. `violations` holds what is wrong
    /// with the call's other fields, for the caller to report together with
    /// what it finds wrong next; a malformed name, or a request not found
    /// beside other bad fields, reports them at once.
    async fn pending_request(
        &self,
        caller: &Caller,
        name: &str,
        call: &str,
        violations: &mut Violations,
    ) -> Result<(String, PendingAuthorization, Arc<ClientState>), Error> {
        caller.require_role(&[Role::Signin], call)?;
        let invalid = |violations: &mut Violations| match std::mem::take(violations).into_result() {
            Err(invalid) => Err(invalid),
            Ok(()) => Err(Error::Internal),
        };
        let Some(id) = name
            .strip_prefix("authorizationRequests/")
            .filter(|id| !id.is_empty())
        else {
            violations.push(
                "name",
                "must be `authorizationRequests/{authorization_request}`",
            );
            return invalid(violations);
        };
        match self.find_pending_request(caller, id).await {
            Err(Error::NotFound { .. } | Error::FailedPrecondition { .. })
                if !violations.is_empty() =>
            {
                invalid(violations)
            }
            found => found,
        }
    }

    async fn find_pending_request(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<(String, PendingAuthorization, Arc<ClientState>), Error> {
        let pending = self
            .authorization_requests
            .open(id)
            .ok_or_else(request_not_found)?;
        let state = self
            .store
            .client_state(pending.client_id)
            .await?
            .ok_or_else(request_not_found)?;
        if !caller.sees(&state.organization) {
            return Err(request_not_found());
        }
        // The redirect URL was checked when the request was made; it is
        // checked again before anything is sent to it.
        let native = state.app_type == ApplicationType::NonConfidential;
        if !authorization::pending_redirect_usable(
            &state.redirect_urls,
            &pending.redirect_uri,
            native,
        ) {
            return Err(request_not_found());
        }
        if pending.expires_at <= to_micros(self.clock.now()) {
            return Err(Error::FailedPrecondition {
                reason: Reason::AuthorizationRequestExpired,
                message: "the authorization request expired: the application must start again"
                    .into(),
            });
        }
        Ok((id.to_owned(), pending, state))
    }

    /// `GetAuthorizationRequest`.
    pub async fn get_authorization_request(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<AuthorizationRequestView, Error> {
        let (id, pending, state) = self
            .pending_request(
                caller,
                name,
                "GetAuthorizationRequest",
                &mut Violations::default(),
            )
            .await?;
        if self
            .store
            .authorization_request_answered(pending.id)
            .await?
        {
            return Err(Error::authorization_request_answered());
        }
        let scopes = still_granted(&state, &pending.scopes)
            .into_iter()
            .filter_map(|scope| {
                let resource_id = self.catalog.owner_of(ScopeSet::User, &scope)?;
                let resource = self.catalog.resource(resource_id)?;
                Some(ScopeView {
                    description: resource.user_scopes.get(&scope)?.clone(),
                    resource: resource_id.to_owned(),
                    resource_display_name: resource.display_name.clone(),
                    scope,
                })
            })
            .collect();
        Ok(AuthorizationRequestView {
            id,
            organization: state.organization.clone(),
            client_id: pending.client_id,
            display_name: state.display_name.clone(),
            app_type: state.app_type,
            scopes,
            offline_access: pending.offline_access,
            redirect_host: authorization::redirect_host(&pending.redirect_uri),
            expire_time: from_micros(pending.expires_at),
        })
    }

    /// `AcceptAuthorizationRequest`: the redirect URL with the code.
    pub async fn accept_authorization_request(
        &self,
        caller: &Caller,
        name: &str,
        subject: &str,
        consented: &[String],
    ) -> Result<String, Error> {
        let mut violations = Violations::default();
        if let Err(why) = authorization::check_subject(subject) {
            violations.push("subject", why);
        }
        if consented.is_empty() {
            violations.push(
                "scopes",
                "is required: name the scopes the user consented to",
            );
        }
        let (_, pending, state) = self
            .pending_request(caller, name, "AcceptAuthorizationRequest", &mut violations)
            .await?;
        let requested = still_granted(&state, &pending.scopes);
        let (scopes, offline_access) = scope_rules::consented_scopes(
            consented,
            &requested,
            pending.offline_access,
            &mut violations,
        );
        violations.into_result()?;
        let now = self.clock.now();
        let grant = Uuid::new_v4();
        let code = credential::generate_for_grant(CredentialKind::AuthorizationCode, &grant)?;
        let code_expire_time = now + self.user().code_ttl;
        let audit = NewAuditEvent {
            organization: Some(state.organization.clone()),
            application: Some(pending.client_id),
            actor: caller.key_id.clone(),
            action: AuditAction::AuthorizationAccepted,
            before: None,
            after: None,
            details: [
                ("subject".to_owned(), subject.to_owned()),
                (
                    "scopes".to_owned(),
                    scopes.iter().cloned().collect::<Vec<_>>().join(" "),
                ),
                ("offline_access".to_owned(), offline_access.to_string()),
                ("grant".to_owned(), grant.to_string()),
            ]
            .into(),
        };
        self.store
            .accept_authorization(
                Answer {
                    request: pending.id,
                    keep_until: answer_kept_until(&pending),
                    audit,
                },
                NewGrant {
                    id: grant,
                    client_id: pending.client_id,
                    subject: subject.to_owned(),
                    scopes,
                    offline_access,
                    expire_time: if offline_access {
                        now + self.user().refresh_lifetime
                    } else {
                        code_expire_time
                    },
                    code_digest: credential::digest(&code),
                    code_expire_time,
                    redirect_uri: pending.redirect_uri.clone(),
                    redirect_uri_given: pending.redirect_uri_given,
                    code_challenge: pending.code_challenge.clone(),
                    revision: state.revision,
                },
                now,
            )
            .await?;
        Ok(authorization::answer(
            &pending.redirect_uri,
            &[("code", code.expose_secret())],
            pending.state.as_deref(),
            &self.tokens.issuer,
        ))
    }

    /// `RejectAuthorizationRequest`: the redirect URL with the error.
    pub async fn reject_authorization_request(
        &self,
        caller: &Caller,
        name: &str,
        error: &str,
        description: &str,
    ) -> Result<String, Error> {
        let mut violations = Violations::default();
        let error = match error {
            "" => "access_denied",
            known if REJECTION_ERRORS.contains(&known) => known,
            _ => {
                violations.push(
                    "error",
                    format!("must be one of {}", REJECTION_ERRORS.join(", ")),
                );
                ""
            }
        };
        let allowed = |c: char| matches!(c, ' '..='~') && c != '"' && c != '\\';
        if description.chars().count() > MAX_DESCRIPTION_CHARS || !description.chars().all(allowed)
        {
            violations.push(
                "error_description",
                format!(
                    "must be at most {MAX_DESCRIPTION_CHARS} printable ASCII characters without `\"` and `\\`"
                ),
            );
        }
        let (_, pending, state) = self
            .pending_request(caller, name, "RejectAuthorizationRequest", &mut violations)
            .await?;
        violations.into_result()?;
        let now = self.clock.now();
        let audit = NewAuditEvent {
            organization: Some(state.organization.clone()),
            application: Some(pending.client_id),
            actor: caller.key_id.clone(),
            action: AuditAction::AuthorizationRejected,
            before: None,
            after: None,
            details: [("error".to_owned(), error.to_owned())].into(),
        };
        self.store
            .reject_authorization(
                Answer {
                    request: pending.id,
                    keep_until: answer_kept_until(&pending),
                    audit,
                },
                now,
            )
            .await?;
        let mut answer = vec![("error", error)];
        if !description.is_empty() {
            answer.push(("error_description", description));
        }
        Ok(authorization::answer(
            &pending.redirect_uri,
            &answer,
            pending.state.as_deref(),
            &self.tokens.issuer,
        ))
    }

    /// The client of a code or refresh token request: a confidential one
    /// by its secret, a non-confidential one by its ID alone (it has no
    /// secret; PKCE or the refresh token's binding stand in). Either must
    /// have user scopes.
    async fn authenticate_user_client(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let client = self.authenticate_any_client(credentials).await?;
        if !client.state.grants.has_user_scopes() {
            return Err(OAuthError::UnauthorizedClient(
                "this application has no user scopes, so it may not use this grant".into(),
            ));
        }
        Ok(client)
    }

    /// A non-confidential client by its ID: one that may authenticate
    /// without a secret.
    pub(super) async fn identify_public_client(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let client_id = ClientId::parse(&credentials.client_id).ok_or(OAuthError::InvalidClient)?;
        if let Some(retry_after) = self.budget.refused_for(credentials.source) {
            return Err(OAuthError::TooManyAttempts { retry_after });
        }
        let state = self
            .store
            .client_state(client_id)
            .await?
            .ok_or(OAuthError::InvalidClient)?;
        if state.app_type != ApplicationType::NonConfidential {
            return Err(OAuthError::InvalidClient);
        }
        Ok(AuthenticatedClient {
            id: client_id,
            state,
            credential: None,
        })
    }

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
            self.budget.record_failure(credentials.source);
            refused()
        };
        let grant_id =
            credential::grant_of(CredentialKind::AuthorizationCode, code).ok_or_else(failed)?;
        let grant = self.store.find_grant(grant_id).await?.ok_or_else(failed)?;
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
                self.grant_replayed(state, &grant, "authorization_code")
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
        let scopes = grant_scopes(state, &grant);
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
            self.grant_replayed(state, &grant, "authorization_code")
                .await?;
            return Err(refused());
        }
        let refresh = match grant.offline_access {
            true => Some(self.refresh_tokens.make(&grant.id, 0)?),
            false => None,
        };
        let mut grant = grant;
        grant.expire_time = expire_time;
        self.issue_user_token(&client, &grant, scopes, refresh, now)
    }

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
            self.budget.record_failure(credentials.source);
            refused()
        };
        // Forged and mistyped tokens stop here, before any read: they cost
        // nothing, so they count against no budget (a genuine one under a
        // retired key must not lock its client's address out either).
        let (grant_id, generation) = self.refresh_tokens.open(token).ok_or_else(refused)?;
        let grant = self.store.find_grant(grant_id).await?.ok_or_else(failed)?;
        let now = self.clock.now();
        if grant.client_id != client_id {
            return Err(failed());
        }
        // A refresh token issued to a client whose credential has since
        // ended its tokens (a rotation with `revoke_tokens`) ended with it.
        let ended = grant.refresh_issued.credential.is_some_and(|credential| {
            state
                .credential_cutoffs
                .ended(credential, grant.refresh_issued.revision)
        });
        if grant.revoke_time.is_some() || grant.expire_time <= now || ended {
            return Err(refused());
        }
        let Some(current) = grant.refresh_generation else {
            return Err(refused());
        };
        let scopes = scope_rules::refresh_scopes(grant_scopes(state, &grant), &grant.scopes, scope)
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
                let next = self.refresh_tokens.make(&grant.id, next_generation)?;
                return self.issue_user_token(&client, &grant, scopes, Some(next), now);
            }
            // Rotated by a request just before this one: answered below as
            // a retry of it.
            let grant = self.store.find_grant(grant_id).await?.ok_or_else(refused)?;
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
            let successor = self.refresh_tokens.make(&grant.id, current)?;
            return self.issue_user_token(client, grant, scopes, Some(successor), now);
        }
        self.grant_replayed(&client.state, grant, "refresh_token")
            .await?;
        Err(refused())
    }

    /// Revokes a grant whose code or refresh token came back after use,
    /// with its access tokens, and records it.
    async fn grant_replayed(
        &self,
        state: &ClientState,
        grant: &UserGrant,
        what: &str,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let ended = self
            .store
            .revoke_grants(
                GrantsOf::One(grant.id),
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
        let scopes: Vec<String> = scopes.into_iter().collect();
        let fresh = crate::domain::token::FreshToken::draw()?;
        let claims = TokenClaims {
            id: fresh.id(),
            client_id: client.id,
            subject: Some(grant.subject.clone()),
            grant: Some(grant.id),
            credential: client.credential,
            revision: client.state.revision,
            scopes: scopes.clone(),
            issued_at,
            expires_at,
        };
        let mut shown = scopes;
        if refresh_token.is_some() {
            shown.push(OFFLINE_ACCESS.to_owned());
        }
        Ok(IssuedToken {
            access_token: self.sealer.seal_fresh(&claims, fresh)?,
            expires_in: (expires_at - issued_at).div_euclid(1_000_000),
            scopes: shown,
            refresh_token,
        })
    }

    /// Revokes a refresh token its client presents (RFC 7009), with its
    /// whole grant: the current token or any earlier one, so that a client
    /// that lost a rotation's answer can still end it. Anything else is
    /// ignored, as for access tokens.
    pub(super) async fn revoke_refresh_token(
        &self,
        client_id: ClientId,
        state: &ClientState,
        token: &str,
    ) -> Result<(), Error> {
        let Some((grant_id, generation)) = self.refresh_tokens.open(token) else {
            return Ok(());
        };
        let Some(grant) = self.store.find_grant(grant_id).await? else {
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
            .revoke_grants(
                GrantsOf::One(grant.id),
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

    /// `ListUserAuthorizations`.
    pub async fn list_user_authorizations(
        &self,
        caller: &Caller,
        subject: &str,
        page_size_value: i32,
        page_token: &str,
    ) -> Result<(Vec<UserAuthorizationRecord>, String), Error> {
        caller.require_role(&[Role::Signin], "ListUserAuthorizations")?;
        let mut violations = Violations::default();
        if let Err(why) = authorization::check_subject(subject) {
            violations.push("subject", why);
        }
        let limit = violations.check(checked_page_size(page_size_value));
        violations.into_result()?;
        let limit = limit.ok_or(Error::Internal)?;
        let query = format!(
            "user-authorizations\n{subject}\n{}",
            caller
                .organization
                .as_ref()
                .map(OrganizationId::as_str)
                .unwrap_or_default()
        );
        let after = self
            .page_tokens
            .decode(&query, page_token)?
            .map(|cursor| String::from_utf8(cursor).map_err(|_| Error::Internal))
            .transpose()?;
        let mut page = self
            .store
            .list_user_authorizations(
                subject,
                caller.organization.as_ref(),
                after.as_deref(),
                limit + 1,
                self.clock.now(),
            )
            .await?;
        let next = if page.len() as u64 > limit {
            page.truncate(limit as usize);
            match page.last() {
                Some(last) => self
                    .page_tokens
                    .encode(&query, last.client_id.to_string().as_bytes())?,
                None => String::new(),
            }
        } else {
            String::new()
        };
        Ok((page, next))
    }

    /// `RevokeUserAuthorization`.
    pub async fn revoke_user_authorization(
        &self,
        caller: &Caller,
        subject: &str,
        application: &str,
    ) -> Result<(), Error> {
        caller.require_role(&[Role::Signin], "RevokeUserAuthorization")?;
        let mut violations = Violations::default();
        if let Err(why) = authorization::check_subject(subject) {
            violations.push("subject", why);
        }
        let application = violations.check(ApplicationName::parse("application", application));
        violations.into_result()?;
        let application = application.ok_or(Error::Internal)?;
        let not_found = || Error::NotFound {
            reason: Reason::UserAuthorizationNotFound,
            message: "this user has no live authorization of this application".into(),
        };
        if !caller.sees(&application.organization) {
            return Err(not_found());
        }
        let state = self
            .store
            .client_state(application.client_id)
            .await?
            .filter(|s| s.organization == application.organization)
            .ok_or_else(not_found)?;
        let now = self.clock.now();
        let ended = self
            .store
            .revoke_grants(
                GrantsOf::User {
                    client_id: application.client_id,
                    subject,
                },
                now + self.tokens.ttl,
                |count| NewAuditEvent {
                    organization: Some(state.organization.clone()),
                    application: Some(application.client_id),
                    actor: caller.key_id.clone(),
                    action: AuditAction::UserAuthorizationRevoked,
                    before: None,
                    after: None,
                    details: [
                        ("subject".to_owned(), subject.to_owned()),
                        ("grants".to_owned(), count.to_string()),
                    ]
                    .into(),
                },
                now,
            )
            .await?;
        if ended == 0 {
            return Err(not_found());
        }
        Ok(())
    }
}

/// How long the answer of a request is kept: past its expiry by a margin,
/// so that a replica whose clock lags cannot take it for unanswered.
fn answer_kept_until(pending: &PendingAuthorization) -> OffsetDateTime {
    from_micros(pending.expires_at) + time::Duration::minutes(5)
}

/// A duration in microseconds, saturating.
fn micros(duration: time::Duration) -> i64 {
    i64::try_from(duration.whole_microseconds()).unwrap_or(i64::MAX)
}
