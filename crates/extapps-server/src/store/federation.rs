//! An application's federated credentials: adding and deleting one (one
//! transaction with its audit event, which every replica hears about), and
//! noting their use.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
};

use super::applications::{ChangeOf, Written, apply_revision, load, next_revision};
use super::entities::federated_credential;
use super::{Store, db_error, is_unique_violation};
use crate::domain::{
    Error,
    application::{Application, FederatedInfo},
    audit::AuditAction,
    clock::to_micros,
    federation::{self, FederatedCredential},
};

/// A federated credential to add.
#[derive(Debug, Clone)]
pub struct NewFederated {
    pub credential: FederatedCredential,
    pub description: String,
}

impl Store {
    /// Adds a federated credential to an application, checked by
    /// `precondition` against the application as it is in the transaction.
    pub async fn add_federated(
        &self,
        of: ChangeOf<'_>,
        new: &NewFederated,
        precondition: impl FnOnce(&Application) -> Result<(), Error>,
    ) -> Result<(Application, FederatedInfo), Error> {
        let ChangeOf {
            organization,
            client_id,
            now,
            ..
        } = of;
        let write = async |txn: &DatabaseTransaction, before: &Application| {
            precondition(before)?;
            let app_id = client_id.to_string();
            // `before` was read in this transaction, with its credentials;
            // a concurrent change fails the revision check below.
            federation::check_count(before.federated.len() + 1)?;
            let credential = &new.credential;
            let inserted =
                federated_credential::Entity::insert(federated_credential::ActiveModel {
                    id: Set(credential.id.to_string()),
                    application_id: Set(app_id.clone()),
                    issuer: Set(credential.issuer.clone()),
                    subject: Set(credential.subject.clone()),
                    audience: Set(credential.audience.clone()),
                    description: Set(new.description.clone()),
                    create_time: Set(to_micros(now)),
                    last_use_time: Set(None),
                })
                .exec(txn)
                .await;
            match inserted {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(federation::already_exists()),
                Err(e) => return Err(db_error(e)),
            }
            apply_revision(txn, next_revision(before, now), &app_id, before).await?;
            let after = load(txn, organization, client_id, now)
                .await?
                .ok_or(Error::Internal)?;
            let id = credential.id.to_string();
            let info = after
                .federated
                .iter()
                .find(|f| f.credential_id == id)
                .cloned()
                .ok_or(Error::Internal)?;
            let details = [
                ("credential_id".to_owned(), id),
                ("issuer".to_owned(), credential.issuer.clone()),
                ("subject".to_owned(), credential.subject.clone()),
                ("audience".to_owned(), credential.audience.clone()),
            ]
            .into();
            Ok(Some(Written {
                action: AuditAction::FederatedCredentialAdded,
                after: Some(after.clone()),
                details,
                answer: (after, info),
            }))
        };
        self.change_application(of, write)
            .await?
            .ok_or(Error::Internal)
    }
}

/// Deletes the federated credentials of an application being deleted.
pub(super) async fn delete_federated_of(
    conn: &impl ConnectionTrait,
    app_id: &str,
) -> Result<(), Error> {
    federated_credential::Entity::delete_many()
        .filter(federated_credential::Column::ApplicationId.eq(app_id))
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}
