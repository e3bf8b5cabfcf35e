//! Caller keys, managed by the operator on the server host.

use secrecy::SecretString;
use uuid::Uuid;

use super::Service;
use crate::domain::{
    Error,
    caller::Role,
    credential::{self, CredentialKind},
    names::OrganizationId,
};
use crate::store::{CallerKeyRecord, NewCallerKey};

/// A new key: its ID, and the key itself, to print once.
#[derive(Debug)]
pub struct CreatedKey {
    pub id: String,
    pub key: SecretString,
}

impl Service {
    /// Creates a key. Operator keys belong to no organization, admin keys to
    /// one; `introspect` and `signin` keys to one, or, without an
    /// organization, to the whole platform. Only `introspect` keys may be
    /// bound to resources.
    pub async fn create_caller_key(
        &self,
        organization: Option<OrganizationId>,
        role: Role,
        resources: Vec<String>,
    ) -> Result<CreatedKey, Error> {
        match (role, &organization) {
            (Role::Operator, Some(_)) => {
                return Err(Error::invalid_field(
                    "organization",
                    "an operator key spans every organization: omit --organization",
                ));
            }
            (Role::Admin, None) => {
                return Err(Error::invalid_field(
                    "organization",
                    "an admin key needs --organization",
                ));
            }
            _ => {}
        }
        if role != Role::Introspect && !resources.is_empty() {
            return Err(Error::invalid_field(
                "resource",
                "only `introspect` keys can be bound to resources",
            ));
        }
        for resource in &resources {
            if self.catalog.resource(resource).is_none() {
                return Err(Error::invalid_field(
                    "resource",
                    format!("`{resource}` is not in the resource catalog"),
                ));
            }
        }
        let key = credential::generate(CredentialKind::CallerKey)?;
        let id = Uuid::new_v4().to_string();
        self.store
            .insert_caller_key(
                NewCallerKey {
                    id: id.clone(),
                    organization,
                    role,
                    resources,
                    digest: credential::digest(&key),
                },
                self.clock.now(),
            )
            .await?;
        Ok(CreatedKey { id, key })
    }

    pub async fn list_caller_keys(&self) -> Result<Vec<CallerKeyRecord>, Error> {
        self.store.list_caller_keys().await
    }

    pub async fn revoke_caller_key(&self, id: &str) -> Result<(), Error> {
        self.store.revoke_caller_key(id, self.clock.now()).await
    }
}
