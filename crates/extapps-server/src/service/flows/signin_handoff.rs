//! The sign-in handoff (SPEC section 4, steps 2 and 3; the model of ORY
//! Hydra's login and consent flow): the platform's sign-in front end reads
//! a pending authorization request to render consent, then accepts it for
//! a signed-in user (the redirect carries a single-use code) or rejects it.
//! extapps keeps the whole OAuth protocol; the front end keeps the users.

use std::sync::Arc;

use secrecy::ExposeSecret;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::client_state::ClientState;
use crate::domain::{
    Error, Reason, Violations,
    application_type::ApplicationType,
    audit::{AuditAction, NewAuditEvent},
    authorization::{self, PendingAuthorization},
    caller::{Caller, Role},
    catalog::ScopeSet,
    clock::{from_micros, to_micros},
    credential::{self, CredentialKind},
    names::{ClientId, OrganizationId},
    scope_rules,
};
use crate::service::Service;
use crate::store::{Answer, NewGrant};

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

impl Service {
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
            .seals
            .authorization_requests
            .open(id)
            .ok_or_else(request_not_found)?;
        let state = self
            .store
            .client_state(pending.client_id, self.clock.now())
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
        let scopes = state
            .still_granted(&pending.scopes)
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
        let requested = state.still_granted(&pending.scopes);
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
}

/// How long the answer of a request is kept: past its expiry by a margin,
/// so that a replica whose clock lags cannot take it for unanswered.
fn answer_kept_until(pending: &PendingAuthorization) -> OffsetDateTime {
    from_micros(pending.expires_at) + time::Duration::minutes(5)
}
