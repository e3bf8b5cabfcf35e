//! An application's public keys for `private_key_jwt` (RFC 7523): adding
//! one, and deleting one.

use uuid::Uuid;

use super::Service;
use super::applications::confidential;
use super::secrets::tokens_all_expired_by;
use crate::domain::{
    Error, Violations,
    application::{Application, Etag, KeyInfo},
    caller::Caller,
    client_key::parse_public_jwk,
    names::{ApplicationName, KeyName},
    secret_rules::{self, Expiration},
};
use crate::store::{Credential, NewKey};

/// What `AddApplicationKey` asks for.
#[derive(Debug, Clone)]
pub struct KeyRequest {
    /// The JWK as given.
    pub jwk: String,
    /// As given (trimmed and checked here).
    pub description: String,
    pub expiration: Expiration,
    pub etag: Option<Etag>,
}

impl Service {
    pub async fn add_application_key(
        &self,
        caller: &Caller,
        name: &ApplicationName,
        request: KeyRequest,
    ) -> Result<(Application, KeyInfo), Error> {
        self.authorize(
            caller,
            "AddApplicationKey",
            &name.organization,
            Error::application_not_found,
        )?;
        let now = self.clock.now();
        let mut violations = Violations::default();
        let key = violations.check(parse_public_jwk("jwk", &request.jwk));
        let description = violations.check(secret_rules::description(
            "description",
            &request.description,
        ));
        let expire_time = violations.check(request.expiration.resolve(now));
        violations.into_result()?;
        let (Some(key), Some(description), Some(expire_time)) = (key, description, expire_time)
        else {
            return Err(Error::Internal);
        };
        let new = NewKey {
            id: Uuid::new_v4(),
            key,
            description,
            expire_time,
        };
        self.store
            .add_key(
                self.change_of(caller, name, request.etag),
                &new,
                confidential(
                    "a non-confidential application cannot keep a private key, so it has no keys",
                ),
            )
            .await
    }

    /// Deletes one key; with `revoke_tokens`, the tokens it authenticated
    /// end with it.
    pub async fn delete_application_key(
        &self,
        caller: &Caller,
        name: &KeyName,
        etag: Option<Etag>,
        revoke_tokens: bool,
    ) -> Result<Application, Error> {
        self.authorize(
            caller,
            "DeleteApplicationKey",
            &name.application.organization,
            Error::application_not_found,
        )?;
        let now = self.clock.now();
        self.store
            .delete_credential(
                self.change_of(caller, &name.application, etag),
                Credential::Key(name.key_id),
                revoke_tokens.then(|| tokens_all_expired_by(now)),
            )
            .await
    }
}
