//! Registering, reading, editing and deleting applications.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::Duration;
use uuid::Uuid;

use super::{Service, new_client_secret};
use crate::domain::{
    Error, Reason, Violations,
    application::{
        Application, Etag, RegistrationInput, check_display_name, check_redirect_urls,
        check_redirect_urls_needed,
    },
    application_type::ApplicationType,
    audit::{AuditAction, NewAuditEvent},
    caller::Caller,
    idempotency::{IdempotencyKey, request_digest},
    names::{ApplicationName, ClientId, OrganizationId},
    page_token::page_size,
    scope_grants::{ResourceGrantInput, ScopeGrants},
};
use crate::store::{ChangeOf, IdempotencyWrite, Inserted, NewSecret};

/// An application with the secret a call just created (shown once).
#[derive(Debug)]
pub struct WithSecret {
    pub application: Application,
    pub client_secret: Option<SecretString>,
}

/// What an idempotency record holds, sealed.
#[derive(Serialize, Deserialize)]
struct SavedResponse {
    application: Application,
    client_secret: Option<String>,
}

impl WithSecret {
    pub(super) fn save(
        &self,
        key: &IdempotencyKey,
        request_digest: String,
    ) -> Result<IdempotencyWrite, Error> {
        let saved = SavedResponse {
            application: self.application.clone(),
            client_secret: self
                .client_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
        };
        let json = serde_json::to_vec(&saved).map_err(|_| Error::Internal)?;
        Ok(IdempotencyWrite {
            lookup: key.lookup.clone(),
            request_digest,
            sealed_response: key.seal(&json)?,
        })
    }

    fn restore(key: &IdempotencyKey, sealed: &[u8]) -> Result<Self, Error> {
        let opened = key.open(sealed).ok_or_else(|| Error::FailedPrecondition {
            reason: Reason::SavedResponseUnavailable,
            message: "this request was already carried out, but its saved response can no \
                      longer be opened (the key that sealed it was retired): read the \
                      application instead, and generate a new secret if you need one"
                .into(),
        })?;
        let saved: SavedResponse = serde_json::from_slice(&opened).map_err(|_| Error::Internal)?;
        Ok(Self {
            application: saved.application,
            client_secret: saved.client_secret.map(SecretString::from),
        })
    }
}

/// The fields an `UpdateApplication` call changes; `None` keeps the field.
#[derive(Debug, Clone, Default)]
pub struct ApplicationUpdate {
    pub display_name: Option<String>,
    pub redirect_urls: Option<Vec<String>>,
}

/// The most a rotation's grace period may be (SPEC rule 7).
pub const MAX_GRACE_PERIOD: Duration = Duration::days(7);

fn request_id_reused(field: &str) -> Error {
    Error::InvalidArgument {
        reason: Reason::RequestIdReused,
        message: format!("{field} was already used for a different request"),
        violations: vec![crate::domain::FieldViolation::new(
            field,
            "was already used for a different request; use a new UUID for a new request",
        )],
    }
}

impl Service {
    /// Admin role, and the organization visible: else `NOT_FOUND` with
    /// `not_found` (what the caller would see if the data did not exist).
    pub(super) fn authorize(
        &self,
        caller: &Caller,
        call: &str,
        organization: &OrganizationId,
        not_found: fn() -> Error,
    ) -> Result<(), Error> {
        caller.require_admin(call)?;
        if caller.sees(organization) {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    pub(super) fn change_of<'a>(
        &self,
        caller: &'a Caller,
        name: &'a ApplicationName,
        etag: Option<Etag>,
    ) -> ChangeOf<'a> {
        ChangeOf {
            organization: &name.organization,
            client_id: name.client_id,
            etag,
            actor: &caller.key_id,
            now: self.clock.now(),
        }
    }

    /// A saved response for `request_id`, if this is a retry.
    pub(super) async fn replay(
        &self,
        key: &IdempotencyKey,
        digest: &str,
        field: &str,
    ) -> Result<Option<WithSecret>, Error> {
        match self
            .store
            .find_idempotency(&key.lookup, self.clock.now())
            .await?
        {
            Some((saved_digest, _)) if saved_digest != digest => Err(request_id_reused(field)),
            Some((_, sealed)) => WithSecret::restore(key, &sealed).map(Some),
            None => Ok(None),
        }
    }

    pub async fn register_application(
        &self,
        caller: &Caller,
        organization: &OrganizationId,
        input: RegistrationInput,
        request_id: Option<Uuid>,
    ) -> Result<WithSecret, Error> {
        self.authorize(
            caller,
            "RegisterApplication",
            organization,
            Error::organization_not_found,
        )?;
        let registration = input.validate("application", &self.catalog)?;

        let idempotency = match request_id {
            Some(id) => {
                let key = IdempotencyKey::derive(
                    &self.seals.idempotency,
                    organization,
                    "RegisterApplication",
                    id,
                )?;
                let canonical = serde_json::to_vec(&registration).map_err(|_| Error::Internal)?;
                let digest = request_digest(&canonical);
                if let Some(saved) = self.replay(&key, &digest, "request_id").await? {
                    return Ok(saved);
                }
                Some((key, digest))
            }
            None => None,
        };

        let secret = match registration.app_type {
            ApplicationType::Confidential => Some(new_client_secret()?),
            ApplicationType::NonConfidential => None,
        };
        let now = self.clock.now();
        let new_secret = secret.as_ref().map(|(_, phc)| NewSecret {
            id: Uuid::new_v4().to_string(),
            phc: phc.clone(),
            description: String::new(),
            expire_time: None,
        });
        let application = Application {
            organization: organization.clone(),
            client_id: ClientId::generate(),
            display_name: registration.display_name,
            app_type: registration.app_type,
            grants: registration.grants,
            redirect_urls: registration.redirect_urls,
            secrets: new_secret
                .iter()
                .map(|s| crate::domain::application::SecretInfo {
                    secret_id: s.id.clone(),
                    create_time: now,
                    expire_time: None,
                    last_use_time: None,
                    description: String::new(),
                })
                .collect(),
            keys: Vec::new(),
            federated: Vec::new(),
            revision: 1,
            create_time: now,
            update_time: now,
        };
        let result = WithSecret {
            application,
            client_secret: secret.map(|(s, _)| s),
        };
        let record = match &idempotency {
            Some((key, digest)) => Some(result.save(key, digest.clone())?),
            None => None,
        };
        let audit = NewAuditEvent {
            organization: Some(organization.clone()),
            application: Some(result.application.client_id),
            actor: caller.key_id.clone(),
            action: AuditAction::ApplicationRegistered,
            before: None,
            after: Some(result.application.clone()),
            details: Default::default(),
        };
        match self
            .store
            .insert_application(&result.application, new_secret.as_ref(), audit, record, now)
            .await?
        {
            Inserted::Done => Ok(result),
            Inserted::AlreadyRecorded => {
                // A concurrent retry committed first: answer as it did.
                let (key, digest) = idempotency.ok_or(Error::Internal)?;
                self.replay(&key, &digest, "request_id")
                    .await?
                    .ok_or(Error::Internal)
            }
        }
    }

    pub async fn get_application(
        &self,
        caller: &Caller,
        name: &ApplicationName,
    ) -> Result<Application, Error> {
        self.authorize(
            caller,
            "GetApplication",
            &name.organization,
            Error::application_not_found,
        )?;
        self.store
            .get_application(&name.organization, name.client_id, self.clock.now())
            .await?
            .ok_or_else(Error::application_not_found)
    }

    /// One page of applications, and the token of the next (empty at the end).
    pub async fn list_applications(
        &self,
        caller: &Caller,
        organization: &OrganizationId,
        page_size_value: i32,
        page_token: &str,
    ) -> Result<(Vec<Application>, String), Error> {
        self.authorize(
            caller,
            "ListApplications",
            organization,
            Error::organization_not_found,
        )?;
        let limit = page_size(page_size_value)?;
        let page = self.seals.page_tokens.request::<String>(
            format!("applications\n{organization}"),
            limit,
            page_token,
        )?;
        let apps = self
            .store
            .list_applications(
                organization,
                page.after.as_deref(),
                page.rows_to_read(),
                self.clock.now(),
            )
            .await?;
        self.seals
            .page_tokens
            .page(&page, apps, |app| app.display_name.as_str().to_owned())
    }

    pub async fn update_application(
        &self,
        caller: &Caller,
        name: &ApplicationName,
        etag: Option<Etag>,
        update: ApplicationUpdate,
    ) -> Result<Application, Error> {
        self.authorize(
            caller,
            "UpdateApplication",
            &name.organization,
            Error::application_not_found,
        )?;
        let mut violations = Violations::default();
        let display_name = update
            .display_name
            .as_deref()
            .map(|n| check_display_name("application", n, &mut violations));
        let redirect_urls = update
            .redirect_urls
            .as_deref()
            .map(|u| check_redirect_urls("application", u, &mut violations));
        violations.into_result()?;
        self.store
            .update_application(
                self.change_of(caller, name, etag),
                AuditAction::ApplicationUpdated,
                |current| {
                    let mut next = current.clone();
                    if let Some(Some(display_name)) = display_name {
                        next.display_name = display_name;
                    }
                    if let Some(Some(urls)) = redirect_urls {
                        next.redirect_urls = urls;
                    }
                    let mut violations = Violations::default();
                    check_redirect_urls_needed(
                        "application.redirect_urls",
                        &next.grants,
                        &next.redirect_urls,
                        &mut violations,
                    );
                    violations.into_result().map(|()| next)
                },
            )
            .await
    }

    pub async fn update_application_scopes(
        &self,
        caller: &Caller,
        name: &ApplicationName,
        etag: Option<Etag>,
        grants: Vec<ResourceGrantInput>,
    ) -> Result<Application, Error> {
        self.authorize(
            caller,
            "UpdateApplicationScopes",
            &name.organization,
            Error::application_not_found,
        )?;
        let catalog = self.catalog.clone();
        self.store
            .update_application(
                self.change_of(caller, name, etag),
                AuditAction::ApplicationScopesUpdated,
                move |current| {
                    let mut violations = Violations::default();
                    let grants = ScopeGrants::validate(
                        "grants",
                        &grants,
                        Some(current.app_type),
                        &catalog,
                        &mut violations,
                    );
                    if let Some(grants) = &grants
                        && grants.has_user_scopes()
                        && current.redirect_urls.is_empty()
                    {
                        violations.push(
                            "grants",
                            "user scopes need at least one redirect URL: add one with UpdateApplication first",
                        );
                    }
                    violations.into_result()?;
                    let mut next = current.clone();
                    next.grants = grants.ok_or(Error::Internal)?;
                    Ok(next)
                },
            )
            .await
    }

    pub async fn delete_application(
        &self,
        caller: &Caller,
        name: &ApplicationName,
        etag: Option<Etag>,
    ) -> Result<(), Error> {
        self.authorize(
            caller,
            "DeleteApplication",
            &name.organization,
            Error::application_not_found,
        )?;
        self.store
            .delete_application(self.change_of(caller, name, etag))
            .await
    }
}

/// The check that an application is confidential, for a change to its
/// credentials: only a confidential application authenticates at all (SPEC
/// rule 2); a non-confidential one is told, in `message`, why it has none.
pub(super) fn confidential(
    message: &'static str,
) -> impl FnOnce(&Application) -> Result<(), Error> {
    move |app| match app.app_type {
        ApplicationType::Confidential => Ok(()),
        ApplicationType::NonConfidential => Err(Error::FailedPrecondition {
            reason: Reason::ApplicationNotConfidential,
            message: message.into(),
        }),
    }
}
