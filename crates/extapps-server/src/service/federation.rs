//! An application's federated credentials: adding one (for an issuer the
//! operator allows), and deleting one.

use uuid::Uuid;

use super::Service;
use super::applications::confidential;
use super::secrets::tokens_all_expired_by;
use crate::domain::{
    Error, Violations,
    application::{Application, Etag, FederatedInfo},
    caller::Caller,
    federation::{self, FederatedCredential},
    names::{ApplicationName, FederatedCredentialName},
    secret_rules,
};
use crate::store::{Credential, NewFederated};

/// What `AddFederatedCredential` asks for, as given.
#[derive(Debug, Clone)]
pub struct FederatedRequest {
    pub issuer: String,
    pub subject: String,
    pub audience: String,
    pub description: String,
    pub etag: Option<Etag>,
}

impl Service {
    pub async fn add_federated_credential(
        &self,
        caller: &Caller,
        name: &ApplicationName,
        request: FederatedRequest,
    ) -> Result<(Application, FederatedInfo), Error> {
        self.authorize(
            caller,
            "AddFederatedCredential",
            &name.organization,
            Error::application_not_found,
        )?;
        let mut violations = Violations::default();
        let issuer = violations
            .check(federation::issuer_url("issuer", &request.issuer))
            .and_then(|issuer| {
                if self.issuers.allows(&issuer) {
                    Some(issuer)
                } else {
                    violations.push(
                        "issuer",
                        "is not an issuer this server's operator allows \
                         (--federation-allowed-issuers): its keys would never be read",
                    );
                    None
                }
            });
        let subject = violations.check(federation::claim_value("subject", &request.subject));
        let audience = violations.check(federation::claim_value("audience", &request.audience));
        let description = violations.check(secret_rules::description(
            "description",
            &request.description,
        ));
        violations.into_result()?;
        let (Some(issuer), Some(subject), Some(audience), Some(description)) =
            (issuer, subject, audience, description)
        else {
            return Err(Error::Internal);
        };
        let new = NewFederated {
            credential: FederatedCredential {
                id: Uuid::new_v4(),
                issuer,
                subject,
                audience,
            },
            description,
        };
        self.store
            .add_federated(
                self.change_of(caller, name, request.etag),
                &new,
                confidential(
                    "a non-confidential application does not authenticate, so it has no \
                     federated credentials",
                ),
            )
            .await
    }

    /// Deletes one federated credential; with `revoke_tokens`, the tokens
    /// it authenticated end with it.
    pub async fn delete_federated_credential(
        &self,
        caller: &Caller,
        name: &FederatedCredentialName,
        etag: Option<Etag>,
        revoke_tokens: bool,
    ) -> Result<Application, Error> {
        self.authorize(
            caller,
            "DeleteFederatedCredential",
            &name.application.organization,
            Error::application_not_found,
        )?;
        let now = self.clock.now();
        self.store
            .delete_credential(
                self.change_of(caller, &name.application, etag),
                Credential::Federated(name.credential_id),
                revoke_tokens.then(|| tokens_all_expired_by(now)),
            )
            .await
    }
}
