//! An application's public keys for `private_key_jwt`, and the assertions
//! they signed: adding and deleting a key (one transaction with its audit
//! event, which every replica hears about), and remembering each accepted
//! assertion's `jti` until it expires, so that it is accepted once on any
//! replica.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, QueryFilter,
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::applications::{ChangeOf, Written, apply_revision, load, next_revision};
use super::entities::{application_key, used_assertion};
use super::{Store, db_error, is_unique_violation};
use crate::domain::{
    Error,
    application::{Application, KeyInfo},
    audit::AuditAction,
    client_key::{PublicKey, check_key_count, key_already_registered},
    clock::to_micros,
};

/// A key to add.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: Uuid,
    pub key: PublicKey,
    pub description: String,
    pub expire_time: Option<OffsetDateTime>,
}

/// Whether an assertion's `jti` was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstUse {
    Yes,
    /// Seen before: a replay.
    No,
}

/// How long past its expiry an assertion's `jti` is kept: replicas whose
/// clocks run this much apart still all refuse its replay.
const USED_ASSERTION_MARGIN: time::Duration = time::Duration::minutes(10);

impl Store {
    /// Adds a public key to an application, checked by `precondition`
    /// against the application as it is in the transaction; answers the
    /// application after the change and the new key's metadata.
    pub async fn add_key(
        &self,
        of: ChangeOf<'_>,
        new: &NewKey,
        precondition: impl FnOnce(&Application) -> Result<(), Error>,
    ) -> Result<(Application, KeyInfo), Error> {
        let ChangeOf {
            organization,
            client_id,
            now,
            ..
        } = of;
        let write = async |txn: &DatabaseTransaction, before: &Application| {
            precondition(before)?;
            let app_id = client_id.to_string();
            // `before` was read in this transaction, with its live keys; a
            // concurrent change fails the revision check below.
            check_key_count(before.keys.len() + 1)?;
            // An expired key with the same thumbprint is kept a while, so
            // that deleting it can still end its tokens: added again, it
            // comes back with its ID, and deleting it later ends the tokens
            // of both its lives.
            let expired_twin = application_key::Entity::find()
                .filter(application_key::Column::ApplicationId.eq(app_id.clone()))
                .filter(application_key::Column::Thumbprint.eq(new.key.thumbprint.clone()))
                .filter(application_key::Column::ExpireTime.lte(to_micros(now)))
                .one(txn)
                .await
                .map_err(db_error)?;
            let key_id = expired_twin
                .as_ref()
                .map_or_else(|| new.id.to_string(), |twin| twin.id.clone());
            let row = application_key::ActiveModel {
                id: Set(key_id.clone()),
                application_id: Set(app_id.clone()),
                algorithm: Set(new.key.algorithm.as_str().to_owned()),
                thumbprint: Set(new.key.thumbprint.clone()),
                jwk: Set(new.key.jwk.clone()),
                description: Set(new.description.clone()),
                create_time: Set(to_micros(now)),
                expire_time: Set(new.expire_time.map(to_micros)),
                last_use_time: match &expired_twin {
                    Some(twin) => Set(twin.last_use_time),
                    None => Set(None),
                },
            };
            // Purged meanwhile (its retention ended), the twin is simply
            // gone, and the key goes in as a new row.
            let revived = match expired_twin {
                Some(_) => match row.clone().update(txn).await {
                    Ok(_) => true,
                    Err(sea_orm::DbErr::RecordNotUpdated) => false,
                    Err(e) => return Err(db_error(e)),
                },
                None => false,
            };
            let written = match revived {
                true => Ok(()),
                false => application_key::Entity::insert(row)
                    .exec(txn)
                    .await
                    .map(|_| ()),
            };
            match written {
                Ok(()) => {}
                Err(e) if is_unique_violation(&e) => return Err(key_already_registered()),
                Err(e) => return Err(db_error(e)),
            }
            apply_revision(txn, next_revision(before, now), &app_id, before).await?;
            let after = load(txn, organization, client_id, now)
                .await?
                .ok_or(Error::Internal)?;
            let key = after
                .keys
                .iter()
                .find(|k| k.key_id == key_id)
                .cloned()
                .ok_or(Error::Internal)?;
            let details = [
                ("key_id".to_owned(), key_id),
                (
                    "algorithm".to_owned(),
                    new.key.algorithm.as_str().to_owned(),
                ),
                ("thumbprint".to_owned(), new.key.thumbprint.clone()),
            ]
            .into();
            Ok(Some(Written {
                action: AuditAction::ApplicationKeyAdded,
                after: Some(after.clone()),
                details,
                answer: (after, key),
            }))
        };
        self.change_application(of, write)
            .await?
            .ok_or(Error::Internal)
    }

    /// Remembers an accepted assertion's `jti` until `expire_time`; `No` if
    /// it was remembered already (by this replica or another).
    pub async fn first_use_of_assertion(
        &self,
        application_id: Uuid,
        issuer: &str,
        jti: &str,
        expire_time: OffsetDateTime,
    ) -> Result<FirstUse, Error> {
        self.used_assertions
            .first_use(
                &self.db,
                super::used_assertions::UsedAssertion {
                    application_id: application_id.to_string(),
                    issuer: issuer.to_owned(),
                    jti: jti.to_owned(),
                    expire_time: to_micros(expire_time),
                },
            )
            .await
    }

    /// Forgets the assertions that expired a while ago (they are refused
    /// for their `exp` now, by every replica whose clock is within the
    /// margin) and deletes the keys that expired at `keys_expired_by` or
    /// before (kept until then, one can still be deleted with the tokens it
    /// got while it worked): housekeeping. Returns how many of each went.
    pub async fn purge_expired_assertions_and_keys(
        &self,
        now: OffsetDateTime,
        keys_expired_by: OffsetDateTime,
    ) -> Result<(u64, u64), Error> {
        let assertions = used_assertion::Entity::delete_many()
            .filter(used_assertion::Column::ExpireTime.lte(to_micros(now - USED_ASSERTION_MARGIN)))
            .exec(&self.db)
            .await
            .map_err(db_error)?;
        let keys = application_key::Entity::delete_many()
            .filter(application_key::Column::ExpireTime.lte(to_micros(keys_expired_by)))
            .exec(&self.db)
            .await
            .map_err(db_error)?;
        Ok((assertions.rows_affected, keys.rows_affected))
    }
}

/// Deletes the keys of an application that is being deleted. Its used
/// assertions stay until they expire: an outside provider's token it used
/// must not become new again for another application.
pub(super) async fn delete_keys_of(conn: &impl ConnectionTrait, app_id: &str) -> Result<(), Error> {
    application_key::Entity::delete_many()
        .filter(application_key::Column::ApplicationId.eq(app_id))
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}
