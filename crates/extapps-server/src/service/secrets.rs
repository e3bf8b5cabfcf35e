//! An application's secrets (SPEC rules 6a and 7): generating one, which
//! replaces the others or joins them, and deleting one.

use time::Duration;
use uuid::Uuid;

use super::applications::{MAX_GRACE_PERIOD, WithSecret, confidential};
use super::{MAX_TOKEN_TTL, Service, new_client_secret};
use crate::domain::{
    Error, Violations,
    application::{Application, Etag},
    caller::Caller,
    idempotency::{IdempotencyKey, request_digest},
    names::{ApplicationName, SecretName},
    secret_rules::{self, Expiration},
};
use crate::store::{Credential, NewSecret, RotateSecret};

/// What `GenerateApplicationSecret` asks for.
#[derive(Debug, Clone)]
pub struct SecretRequest {
    pub etag: Option<Etag>,
    /// Replacing: how long the other secrets keep working.
    pub grace_period: Duration,
    /// Replacing: end every token the other secrets authenticated.
    pub revoke_tokens: bool,
    /// Add the secret beside the others instead of replacing them.
    pub keep_existing: bool,
    /// As given (trimmed and checked here).
    pub description: String,
    pub expiration: Expiration,
    pub request_id: Option<Uuid>,
}

impl SecretRequest {
    /// The request's own fields as a retry must repeat them. A request
    /// without the fields added for several secrets reads as it did before
    /// them, so a retry across an upgrade still matches its record.
    fn canonical(&self, name: &ApplicationName) -> String {
        let mut canonical = format!(
            "{name}\n{}\n{}\n{:?}",
            self.grace_period.whole_microseconds(),
            self.revoke_tokens,
            self.etag
        );
        if self.keep_existing
            || !self.description.is_empty()
            || self.expiration != Expiration::Never
        {
            canonical.push_str(&format!(
                "\n{}\n{:?}\n{:?}",
                self.keep_existing, self.description, self.expiration
            ));
        }
        canonical
    }
}

/// The tokens a change ends were decided before it, so all expire within a
/// token lifetime of now, plus the seconds a request lasts and the clock
/// skew between replicas: twice the longest lifetime any replica may give
/// is beyond every one.
pub(super) fn tokens_all_expired_by(now: time::OffsetDateTime) -> time::OffsetDateTime {
    now + MAX_TOKEN_TTL * 2
}

impl Service {
    pub async fn generate_application_secret(
        &self,
        caller: &Caller,
        name: &ApplicationName,
        request: SecretRequest,
    ) -> Result<WithSecret, Error> {
        self.authorize(
            caller,
            "GenerateApplicationSecret",
            &name.organization,
            Error::application_not_found,
        )?;
        // A saved answer first: it answered a request that was valid when it
        // came, and a retry must get it even once an expiry it named has
        // passed (checking first would refuse the retry and lose the secret).
        let idempotency = match request.request_id {
            Some(id) => {
                let key = IdempotencyKey::derive(
                    &self.seals.idempotency,
                    &name.organization,
                    "GenerateApplicationSecret",
                    id,
                )?;
                let digest = request_digest(request.canonical(name).as_bytes());
                if let Some(saved) = self.replay(&key, &digest, "request_id").await? {
                    return Ok(saved);
                }
                Some((key, digest))
            }
            None => None,
        };
        let now = self.clock.now();
        let mut violations = Violations::default();
        if request.grace_period.is_negative() || request.grace_period > MAX_GRACE_PERIOD {
            violations.push("grace_period", "must be between 0 and 7 days");
        } else if request.keep_existing && request.grace_period.is_positive() {
            violations.push(
                "grace_period",
                "is for replacing secrets: not with keep_existing_secrets",
            );
        }
        if request.keep_existing && request.revoke_tokens {
            violations.push(
                "revoke_tokens",
                "is for replacing secrets: not with keep_existing_secrets \
                 (DeleteApplicationSecret ends one secret's tokens)",
            );
        }
        let description = violations.check(secret_rules::description(
            "description",
            &request.description,
        ));
        let expire_time = violations.check(request.expiration.resolve(now));
        violations.into_result()?;
        let (Some(description), Some(expire_time)) = (description, expire_time) else {
            return Err(Error::Internal);
        };
        let (secret, phc) = new_client_secret()?;
        let rotation = RotateSecret {
            secret: NewSecret {
                id: Uuid::new_v4().to_string(),
                phc,
                description,
                expire_time,
            },
            keep_existing: request.keep_existing,
            grace_period: request.grace_period,
            revoke_tokens: request.revoke_tokens.then(|| tokens_all_expired_by(now)),
        };
        let outcome = self
            .store
            .rotate_secret(
                self.change_of(caller, name, request.etag),
                &rotation,
                confidential("a non-confidential application never has a secret"),
                |after| {
                    let Some((key, digest)) = &idempotency else {
                        return Ok(None);
                    };
                    let response = WithSecret {
                        application: after.clone(),
                        client_secret: Some(secret.clone()),
                    };
                    response.save(key, digest.clone()).map(Some)
                },
            )
            .await;
        match (outcome, &idempotency) {
            (Ok(Some(application)), _) => Ok(WithSecret {
                application,
                client_secret: Some(secret),
            }),
            // A concurrent retry won the race: answer as it did.
            (Ok(None) | Err(Error::Aborted { .. }), Some((key, digest))) => {
                match self.replay(key, digest, "request_id").await? {
                    Some(saved) => Ok(saved),
                    None => Err(Error::etag_mismatch()),
                }
            }
            (Ok(None), None) => Err(Error::Internal),
            (Err(e), _) => Err(e),
        }
    }

    /// Deletes one secret; with `revoke_tokens`, the tokens it
    /// authenticated end with it.
    pub async fn delete_application_secret(
        &self,
        caller: &Caller,
        name: &SecretName,
        etag: Option<Etag>,
        revoke_tokens: bool,
    ) -> Result<Application, Error> {
        self.authorize(
            caller,
            "DeleteApplicationSecret",
            &name.application.organization,
            Error::application_not_found,
        )?;
        let now = self.clock.now();
        self.store
            .delete_credential(
                self.change_of(caller, &name.application, etag),
                Credential::Secret(name.secret_id),
                revoke_tokens.then(|| tokens_all_expired_by(now)),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> SecretRequest {
        SecretRequest {
            etag: None,
            grace_period: Duration::hours(1),
            revoke_tokens: true,
            keep_existing: false,
            description: String::new(),
            expiration: Expiration::Never,
            request_id: None,
        }
    }

    #[test]
    fn a_retry_reads_as_before_and_new_fields_tell_requests_apart() {
        let name = ApplicationName::parse(
            "name",
            "organizations/acme/applications/6f1c1a36-4b1e-4c1e-9a0e-2b7d3c4d5e6f",
        )
        .unwrap();
        // Exactly the text requests had before secrets had descriptions.
        assert_eq!(
            request().canonical(&name),
            format!("{name}\n3600000000\ntrue\nNone")
        );
        let variants = [
            request(),
            SecretRequest {
                keep_existing: true,
                ..request()
            },
            SecretRequest {
                description: "CI".into(),
                ..request()
            },
            SecretRequest {
                description: "CI\nfalse".into(),
                ..request()
            },
            SecretRequest {
                expiration: Expiration::After(Duration::days(90)),
                ..request()
            },
            SecretRequest {
                expiration: Expiration::At(time::OffsetDateTime::UNIX_EPOCH + Duration::days(90)),
                ..request()
            },
        ];
        let texts: std::collections::HashSet<String> =
            variants.iter().map(|r| r.canonical(&name)).collect();
        assert_eq!(texts.len(), variants.len(), "no two collide");
    }
}
