//! Applications: registration (with the first secret), reads, edits and
//! deletion, each one transaction with its audit event; what the secret
//! rotation in [`super::secrets`] shares with them.

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, UpdateMany, sea_query::Expr,
};
use time::OffsetDateTime;

use super::audit::insert_audit;
use super::convert::{
    application_from_row, application_row, grants_json, redirect_urls_from_json, redirect_urls_json,
};
use super::entities::{
    application, application_key, application_secret, federated_credential, idempotency_record,
};
use super::shared_cache::Change;
use super::{Credential, Store, commit, db_error, is_unique_violation};
use crate::domain::{
    Error, Reason,
    application::{Application, Etag},
    audit::{AuditAction, NewAuditEvent},
    client_key::key_not_found,
    clock::to_micros,
    federation,
    idempotency::RETENTION,
    names::{ClientId, OrganizationId},
    secret_rules::secret_not_found,
    token_rules::{CredentialCutoffs, ScopeRemovals},
};

/// A client secret to store: its ID and argon2id PHC string, never the
/// secret, with what it is for and when it ends by itself.
#[derive(Clone)]
pub struct NewSecret {
    pub id: String,
    pub phc: String,
    pub description: String,
    pub expire_time: Option<OffsetDateTime>,
}

/// Without the hash: a hash of a secret is not for logs either.
impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret")
            .field("id", &self.id)
            .field("phc", &"[REDACTED]")
            .field("description", &self.description)
            .field("expire_time", &self.expire_time)
            .finish()
    }
}

/// Which application a change is for, who makes it and when.
#[derive(Debug, Clone, Copy)]
pub struct ChangeOf<'a> {
    pub organization: &'a OrganizationId,
    pub client_id: ClientId,
    /// The caller's etag; `None` applies the change whatever the revision.
    pub etag: Option<Etag>,
    pub actor: &'a str,
    pub now: OffsetDateTime,
}

/// A response saved for retries, written with the change it answers.
#[derive(Debug, Clone)]
pub struct IdempotencyWrite {
    pub lookup: String,
    pub request_digest: String,
    pub sealed_response: Vec<u8>,
}

/// The outcome of an insert that carried a request ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Done,
    /// Another call with the same request ID got there first: replay it.
    AlreadyRecorded,
}

fn display_name_taken() -> Error {
    Error::AlreadyExists {
        reason: Reason::DisplayNameTaken,
        message: "an application with this display name already exists in the organization".into(),
    }
}

fn concurrent_change() -> Error {
    Error::etag_mismatch()
}

impl Store {
    /// The saved response of a request ID, if one younger than the retention
    /// period exists: `(request digest, sealed response)`.
    pub async fn find_idempotency(
        &self,
        lookup: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(String, Vec<u8>)>, Error> {
        let row = idempotency_record::Entity::find_by_id(lookup.to_owned())
            .filter(idempotency_record::Column::CreateTime.gt(to_micros(now - RETENTION)))
            .one(&self.db)
            .await
            .map_err(db_error)?;
        Ok(row.map(|r| (r.request_digest, r.response)))
    }

    /// Writes a new application, its first secret, its audit event and its
    /// idempotency record in one transaction.
    pub async fn insert_application(
        &self,
        app: &Application,
        secret: Option<&NewSecret>,
        audit: NewAuditEvent,
        idempotency: Option<IdempotencyWrite>,
        now: OffsetDateTime,
    ) -> Result<Inserted, Error> {
        let txn = self.write().await?;
        if let Some(record) = idempotency
            && insert_idempotency(&txn, record, now).await? == Inserted::AlreadyRecorded
        {
            return Ok(Inserted::AlreadyRecorded);
        }
        let row: application::ActiveModel = application_row(app)?.into();
        match application::Entity::insert(row).exec(&txn).await {
            Err(e) if is_unique_violation(&e) => return Err(display_name_taken()),
            other => other.map_err(db_error)?,
        };
        if let Some(secret) = secret {
            insert_secret(&txn, &app.client_id, secret, now).await?;
        }
        insert_audit(&txn, audit, now).await?;
        commit(txn).await?;
        Ok(Inserted::Done)
    }

    /// One application of `organization`, with its live secrets.
    pub async fn get_application(
        &self,
        organization: &OrganizationId,
        client_id: ClientId,
        now: OffsetDateTime,
    ) -> Result<Option<Application>, Error> {
        load(&self.db, organization, client_id, now).await
    }

    /// Up to `limit` applications of `organization` whose display name sorts
    /// after `after`, in display-name order.
    pub async fn list_applications(
        &self,
        organization: &OrganizationId,
        after: Option<&str>,
        limit: u64,
        now: OffsetDateTime,
    ) -> Result<Vec<Application>, Error> {
        let mut query = application::Entity::find()
            .filter(application::Column::Organization.eq(organization.as_str()));
        if let Some(after) = after {
            query = query.filter(application::Column::DisplayName.gt(after));
        }
        let rows = query
            .order_by_asc(application::Column::DisplayName)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut secrets: HashMap<String, Vec<application_secret::Model>> = HashMap::new();
        let mut keys: HashMap<String, Vec<application_key::Model>> = HashMap::new();
        let mut federated: HashMap<String, Vec<federated_credential::Model>> = HashMap::new();
        if !ids.is_empty() {
            for credential in federated_credential::Entity::find()
                .filter(federated_credential::Column::ApplicationId.is_in(ids.clone()))
                .all(&self.db)
                .await
                .map_err(db_error)?
            {
                federated
                    .entry(credential.application_id.clone())
                    .or_default()
                    .push(credential);
            }
            for secret in live_secrets(now)
                .filter(application_secret::Column::ApplicationId.is_in(ids.clone()))
                .all(&self.db)
                .await
                .map_err(db_error)?
            {
                secrets
                    .entry(secret.application_id.clone())
                    .or_default()
                    .push(secret);
            }
            for key in live_keys(now)
                .filter(application_key::Column::ApplicationId.is_in(ids))
                .all(&self.db)
                .await
                .map_err(db_error)?
            {
                keys.entry(key.application_id.clone())
                    .or_default()
                    .push(key);
            }
        }
        rows.into_iter()
            .map(|row| {
                let own = secrets.remove(&row.id).unwrap_or_default();
                let own_keys = keys.remove(&row.id).unwrap_or_default();
                let own_federated = federated.remove(&row.id).unwrap_or_default();
                application_from_row(row, own, own_keys, own_federated)
            })
            .collect()
    }

    /// The course of every change to an existing application: one
    /// transaction that loads it (checking the caller's etag), lets `write`
    /// make the change (guarded by the revision it loaded: see
    /// [`guarded`]), records the audit event and announces the change to
    /// every replica's caches. `write` returns `None` to roll back without
    /// an error (a retry whose answer another call already recorded).
    pub(super) async fn change_application<T>(
        &self,
        of: ChangeOf<'_>,
        write: impl AsyncFnOnce(&DatabaseTransaction, &Application) -> Result<Option<Written<T>>, Error>,
    ) -> Result<Option<T>, Error> {
        let txn = self.write().await?;
        let before = load_for_change(&txn, &of).await?;
        let Some(written) = write(&txn, &before).await? else {
            return Ok(None);
        };
        insert_audit(
            &txn,
            NewAuditEvent {
                organization: Some(of.organization.clone()),
                application: Some(of.client_id),
                actor: of.actor.to_owned(),
                action: written.action,
                before: Some(before),
                after: written.after,
                details: written.details,
            },
            of.now,
        )
        .await?;
        self.commit_change(txn, Change::Application(of.client_id))
            .await?;
        Ok(Some(written.answer))
    }

    /// Applies `change` to an application (display name, redirect URLs or
    /// grants), checking the etag and writing the audit event.
    pub async fn update_application(
        &self,
        of: ChangeOf<'_>,
        action: AuditAction,
        change: impl FnOnce(&Application) -> Result<Application, Error>,
    ) -> Result<Application, Error> {
        let write = async |txn: &DatabaseTransaction, before: &Application| {
            let mut after = change(before)?;
            after.revision = before.revision + 1;
            after.update_time = of.now;
            let mut update = application::Entity::update_many().col_expr(
                application::Column::DisplayName,
                Expr::value(after.display_name.as_str()),
            );
            if after.grants != before.grants {
                let (mut removals, _) = token_rules(txn, of.client_id).await?;
                removals.record(&before.grants, &after.grants, after.revision);
                update = update.col_expr(
                    application::Column::ScopeRemovals,
                    Expr::value(to_json(&removals)?),
                );
            }
            // Only a new name takes a new key: a name kept from before the
            // keys existed may hold a key of its own (see the migrations).
            // Any new name does, even one whose key equals the old name's:
            // the stored key may be such a key of its own, and the name
            // must now meet the others on the plain one.
            if after.display_name != before.display_name {
                update = update.col_expr(
                    application::Column::DisplayNameKey,
                    Expr::value(after.display_name.key()),
                );
            }
            let updated = update
                .col_expr(
                    application::Column::RedirectUrls,
                    Expr::value(redirect_urls_json(&after.redirect_urls)?),
                )
                .col_expr(
                    application::Column::Grants,
                    Expr::value(grants_json(&after.grants)?),
                )
                .col_expr(application::Column::Revision, Expr::value(after.revision))
                .col_expr(
                    application::Column::UpdateTime,
                    Expr::value(to_micros(of.now)),
                )
                .filter(application::Column::Id.eq(of.client_id.to_string()))
                .filter(application::Column::Revision.eq(before.revision))
                .exec(txn)
                .await;
            match updated {
                Err(e) if is_unique_violation(&e) => return Err(display_name_taken()),
                updated => guarded(updated.map_err(db_error)?.rows_affected)?,
            }
            Ok(Some(Written {
                action,
                after: Some(after.clone()),
                details: Default::default(),
                answer: after,
            }))
        };
        self.change_application(of, write)
            .await?
            .ok_or(Error::Internal)
    }

    /// Deletes an application, its secrets and its user grants (SPEC rule
    /// 9).
    pub async fn delete_application(&self, of: ChangeOf<'_>) -> Result<(), Error> {
        let write = async |txn: &DatabaseTransaction, before: &Application| {
            let app_id = of.client_id.to_string();
            application_secret::Entity::delete_many()
                .filter(application_secret::Column::ApplicationId.eq(app_id.clone()))
                .exec(txn)
                .await
                .map_err(db_error)?;
            super::client_keys::delete_keys_of(txn, &app_id).await?;
            super::federation::delete_federated_of(txn, &app_id).await?;
            super::user_grants::delete_user_grants_of(txn, of.client_id).await?;
            let deleted = application::Entity::delete_many()
                .filter(application::Column::Id.eq(app_id))
                .filter(application::Column::Revision.eq(before.revision))
                .exec(txn)
                .await
                .map_err(db_error)?;
            guarded(deleted.rows_affected)?;
            Ok(Some(Written {
                action: AuditAction::ApplicationDeleted,
                after: None,
                details: Default::default(),
                answer: (),
            }))
        };
        self.change_application(of, write)
            .await?
            .ok_or(Error::Internal)
    }
}

impl Store {
    /// Applications holding redirect URLs that today's rules refuse
    /// (registered under the looser rules of earlier versions), with how
    /// many each holds: for the report at start-up.
    pub async fn applications_with_invalid_redirect_urls(
        &self,
    ) -> Result<Vec<(OrganizationId, ClientId, usize)>, Error> {
        let rows: Vec<(String, String, String)> = application::Entity::find()
            .select_only()
            .columns([
                application::Column::Organization,
                application::Column::Id,
                application::Column::RedirectUrls,
            ])
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_error)?;
        let mut found = Vec::new();
        for (organization, id, urls) in rows {
            let invalid = redirect_urls_from_json(&urls, &id)?
                .iter()
                .filter(|url| url.problem().is_some())
                .count();
            if invalid > 0
                && let (Ok(organization), Some(client_id)) =
                    (OrganizationId::parse(&organization), ClientId::parse(&id))
            {
                found.push((organization, client_id, invalid));
            }
        }
        Ok(found)
    }
}

/// What ends an application's tokens besides their expiry, as stored.
pub(super) async fn token_rules(
    txn: &DatabaseTransaction,
    client_id: ClientId,
) -> Result<(ScopeRemovals, CredentialCutoffs), Error> {
    let row = application::Entity::find_by_id(client_id.to_string())
        .one(txn)
        .await
        .map_err(db_error)?
        .ok_or(Error::Internal)?;
    let corrupt = || {
        tracing::error!(application = %row.id, "stored token rules do not parse");
        Error::Internal
    };
    Ok((
        serde_json::from_str(&row.scope_removals).map_err(|_| corrupt())?,
        serde_json::from_str(&row.credential_cutoffs).map_err(|_| corrupt())?,
    ))
}

pub(super) fn to_json(value: &impl serde::Serialize) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|_| Error::Internal)
}

/// What a change wrote, for its audit event, and what it answers.
pub(super) struct Written<T> {
    pub(super) action: AuditAction,
    pub(super) after: Option<Application>,
    pub(super) details: std::collections::BTreeMap<String, String>,
    pub(super) answer: T,
}

/// The outcome of a write guarded by the revision the change loaded (`...
/// WHERE revision = ?`): no row means another change came first.
pub(super) fn guarded(rows_affected: u64) -> Result<(), Error> {
    if rows_affected == 0 {
        return Err(concurrent_change());
    }
    Ok(())
}

/// Writes an idempotency record, first clearing expired ones so an ID reused
/// after the retention period counts as new.
pub(super) async fn insert_idempotency(
    conn: &impl ConnectionTrait,
    record: IdempotencyWrite,
    now: OffsetDateTime,
) -> Result<Inserted, Error> {
    idempotency_record::Entity::delete_many()
        .filter(idempotency_record::Column::CreateTime.lte(to_micros(now - RETENTION)))
        .exec(conn)
        .await
        .map_err(db_error)?;
    let inserted = idempotency_record::Entity::insert(idempotency_record::ActiveModel {
        lookup: Set(record.lookup),
        request_digest: Set(record.request_digest),
        response: Set(record.sealed_response),
        create_time: Set(to_micros(now)),
    })
    .exec(conn)
    .await;
    match inserted {
        Ok(_) => Ok(Inserted::Done),
        Err(e) if is_unique_violation(&e) => Ok(Inserted::AlreadyRecorded),
        Err(e) => Err(db_error(e)),
    }
}

/// The secrets that still work at `now`.
pub(super) fn live_secrets(now: OffsetDateTime) -> sea_orm::Select<application_secret::Entity> {
    application_secret::Entity::find().filter(
        Condition::any()
            .add(application_secret::Column::ExpireTime.is_null())
            .add(application_secret::Column::ExpireTime.gt(to_micros(now))),
    )
}

pub(super) async fn load(
    conn: &impl ConnectionTrait,
    organization: &OrganizationId,
    client_id: ClientId,
    now: OffsetDateTime,
) -> Result<Option<Application>, Error> {
    let id = client_id.to_string();
    let Some(row) = application::Entity::find_by_id(id.clone())
        .filter(application::Column::Organization.eq(organization.as_str()))
        .one(conn)
        .await
        .map_err(db_error)?
    else {
        return Ok(None);
    };
    let secrets = live_secrets(now)
        .filter(application_secret::Column::ApplicationId.eq(id.clone()))
        .all(conn)
        .await
        .map_err(db_error)?;
    let keys = live_keys(now)
        .filter(application_key::Column::ApplicationId.eq(id.clone()))
        .all(conn)
        .await
        .map_err(db_error)?;
    let federated = federated_credential::Entity::find()
        .filter(federated_credential::Column::ApplicationId.eq(id))
        .all(conn)
        .await
        .map_err(db_error)?;
    application_from_row(row, secrets, keys, federated).map(Some)
}

/// The keys that still work at `now`.
pub(super) fn live_keys(now: OffsetDateTime) -> sea_orm::Select<application_key::Entity> {
    application_key::Entity::find().filter(
        Condition::any()
            .add(application_key::Column::ExpireTime.is_null())
            .add(application_key::Column::ExpireTime.gt(to_micros(now))),
    )
}

/// Loads an application to change it: `NOT_FOUND` if absent, `ABORTED` if the
/// caller's etag is stale.
async fn load_for_change(
    conn: &impl ConnectionTrait,
    of: &ChangeOf<'_>,
) -> Result<Application, Error> {
    let app = load(conn, of.organization, of.client_id, of.now)
        .await?
        .ok_or_else(Error::application_not_found)?;
    match of.etag {
        Some(Etag(revision)) if revision != app.revision => Err(Error::etag_mismatch()),
        _ => Ok(app),
    }
}

/// Stores a new secret of an application.
pub(super) async fn insert_secret(
    conn: &impl ConnectionTrait,
    client_id: &ClientId,
    secret: &NewSecret,
    now: OffsetDateTime,
) -> Result<(), Error> {
    application_secret::Entity::insert(application_secret::ActiveModel {
        id: Set(secret.id.clone()),
        application_id: Set(client_id.to_string()),
        phc: Set(secret.phc.clone()),
        create_time: Set(to_micros(now)),
        expire_time: Set(secret.expire_time.map(to_micros)),
        last_use_time: Set(None),
        description: Set(secret.description.clone()),
        replace_time: Set(None),
    })
    .exec(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// The update that moves an application from `before` to its next revision
/// at `now`; callers add what else changes.
pub(super) fn next_revision(
    before: &Application,
    now: OffsetDateTime,
) -> UpdateMany<application::Entity> {
    application::Entity::update_many()
        .col_expr(
            application::Column::Revision,
            Expr::value(before.revision + 1),
        )
        .col_expr(application::Column::UpdateTime, Expr::value(to_micros(now)))
}

/// Applies `update` only if the application is still at the revision
/// `before` was read at (else `ABORTED`: another change came first).
pub(super) async fn apply_revision(
    txn: &DatabaseTransaction,
    update: UpdateMany<application::Entity>,
    app_id: &str,
    before: &Application,
) -> Result<(), Error> {
    let updated = update
        .filter(application::Column::Id.eq(app_id))
        .filter(application::Column::Revision.eq(before.revision))
        .exec(txn)
        .await
        .map_err(db_error)?;
    guarded(updated.rows_affected)
}
impl Store {
    /// Deletes one credential of an application: a secret or key (live, or
    /// expired and kept yet: its tokens may still be live) or a federated
    /// credential. With `revoke_tokens` (an instant after which none of its
    /// tokens can be live any more), every access and refresh token it
    /// authenticated ends, by the credential each records.
    pub async fn delete_credential(
        &self,
        of: ChangeOf<'_>,
        credential: Credential,
        revoke_tokens: Option<OffsetDateTime>,
    ) -> Result<Application, Error> {
        let ChangeOf {
            organization,
            client_id,
            now,
            ..
        } = of;
        let write = async |txn: &DatabaseTransaction, before: &Application| {
            let (id, app_id) = (credential.id().to_string(), client_id.to_string());
            let (deleted, action, id_field) = match credential {
                Credential::Secret(_) => (
                    application_secret::Entity::delete_many()
                        .filter(application_secret::Column::Id.eq(id))
                        .filter(application_secret::Column::ApplicationId.eq(app_id.clone()))
                        .exec(txn)
                        .await,
                    AuditAction::ApplicationSecretDeleted,
                    "secret_id",
                ),
                Credential::Key(_) => (
                    application_key::Entity::delete_many()
                        .filter(application_key::Column::Id.eq(id))
                        .filter(application_key::Column::ApplicationId.eq(app_id.clone()))
                        .exec(txn)
                        .await,
                    AuditAction::ApplicationKeyDeleted,
                    "key_id",
                ),
                Credential::Federated(_) => (
                    federated_credential::Entity::delete_many()
                        .filter(federated_credential::Column::Id.eq(id))
                        .filter(federated_credential::Column::ApplicationId.eq(app_id.clone()))
                        .exec(txn)
                        .await,
                    AuditAction::FederatedCredentialDeleted,
                    "credential_id",
                ),
            };
            if deleted.map_err(db_error)?.rows_affected == 0 {
                return Err(match credential {
                    Credential::Secret(_) => secret_not_found(),
                    Credential::Key(_) => key_not_found(),
                    Credential::Federated(_) => federation::not_found(),
                });
            }
            let mut update = next_revision(before, now);
            if let Some(kept_until) = revoke_tokens {
                // Not pruned here: a cut-off also ends refresh tokens, which
                // outlive `kept_until`, and only a rotation that revokes
                // every grant of the application may forget it.
                let (_, mut cutoffs) = token_rules(txn, client_id).await?;
                cutoffs.end(credential.id(), before.revision + 1, to_micros(kept_until));
                update = update.col_expr(
                    application::Column::CredentialCutoffs,
                    Expr::value(to_json(&cutoffs)?),
                );
            }
            apply_revision(txn, update, &app_id, before).await?;
            let after = load(txn, organization, client_id, now)
                .await?
                .ok_or(Error::Internal)?;
            let details = [
                (id_field.to_owned(), credential.id().to_string()),
                (
                    "revoke_tokens".to_owned(),
                    revoke_tokens.is_some().to_string(),
                ),
            ]
            .into();
            Ok(Some(Written {
                action,
                after: Some(after.clone()),
                details,
                answer: after,
            }))
        };
        self.change_application(of, write)
            .await?
            .ok_or(Error::Internal)
    }
}
