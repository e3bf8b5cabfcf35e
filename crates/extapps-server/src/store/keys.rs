//! Caller keys: stored as SHA-256 digests, looked up on every call.

use std::sync::Arc;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, sea_query::Expr,
};
use time::OffsetDateTime;

use super::audit::insert_audit;
use super::entities::caller_key;
use super::shared_cache::Change;
use super::{Store, commit, db_error};
use crate::domain::{
    Error, Reason,
    audit::{AuditAction, CLI_ACTOR, NewAuditEvent},
    caller::{Caller, Role},
    clock::{from_micros, to_micros},
    names::OrganizationId,
};

/// A key to store: its digest, never the key.
#[derive(Debug, Clone)]
pub struct NewCallerKey {
    pub id: String,
    pub organization: Option<OrganizationId>,
    pub role: Role,
    pub resources: Vec<String>,
    pub digest: String,
}

/// A stored key, as `keys list` shows it.
#[derive(Debug, Clone)]
pub struct CallerKeyRecord {
    pub id: String,
    pub organization: Option<OrganizationId>,
    pub role: Role,
    pub resources: Vec<String>,
    pub create_time: OffsetDateTime,
    pub revoke_time: Option<OffsetDateTime>,
}

fn key_event(organization: Option<OrganizationId>, id: &str, action: AuditAction) -> NewAuditEvent {
    NewAuditEvent {
        organization,
        application: None,
        actor: CLI_ACTOR.to_owned(),
        action,
        before: None,
        after: None,
        details: [("key_id".to_owned(), id.to_owned())].into(),
    }
}

fn record_from_row(row: caller_key::Model) -> Result<CallerKeyRecord, Error> {
    let corrupt = || {
        tracing::error!(key = %row.id, "stored caller key does not parse");
        Error::Internal
    };
    Ok(CallerKeyRecord {
        id: row.id.clone(),
        organization: row
            .organization
            .as_deref()
            .map(OrganizationId::parse)
            .transpose()
            .map_err(|_| corrupt())?,
        role: Role::parse(&row.role).ok_or_else(corrupt)?,
        resources: serde_json::from_str(&row.resources).map_err(|_| corrupt())?,
        create_time: from_micros(row.create_time),
        revoke_time: row.revoke_time.map(from_micros),
    })
}

impl Store {
    pub async fn insert_caller_key(
        &self,
        key: NewCallerKey,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let txn = self.write().await?;
        caller_key::Entity::insert(caller_key::ActiveModel {
            id: Set(key.id.clone()),
            organization: Set(key.organization.as_ref().map(|o| o.to_string())),
            role: Set(key.role.as_str().to_owned()),
            resources: Set(serde_json::to_string(&key.resources).map_err(|_| Error::Internal)?),
            digest: Set(key.digest),
            create_time: Set(to_micros(now)),
            revoke_time: Set(None),
        })
        .exec(&txn)
        .await
        .map_err(db_error)?;
        insert_audit(
            &txn,
            key_event(key.organization, &key.id, AuditAction::KeyCreated),
            now,
        )
        .await?;
        commit(txn).await
    }

    pub async fn list_caller_keys(&self) -> Result<Vec<CallerKeyRecord>, Error> {
        caller_key::Entity::find()
            .order_by_asc(caller_key::Column::CreateTime)
            .order_by_asc(caller_key::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(record_from_row)
            .collect()
    }

    /// Revokes a key at once. Revoking a revoked key changes nothing.
    pub async fn revoke_caller_key(&self, id: &str, now: OffsetDateTime) -> Result<(), Error> {
        let txn = self.write().await?;
        let row = caller_key::Entity::find_by_id(id.to_owned())
            .one(&txn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| Error::NotFound {
                reason: Reason::KeyNotFound,
                message: format!("no caller key has ID `{id}`"),
            })?;
        if row.revoke_time.is_some() {
            return Ok(());
        }
        caller_key::Entity::update_many()
            .col_expr(caller_key::Column::RevokeTime, Expr::value(to_micros(now)))
            .filter(caller_key::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db_error)?;
        let organization = record_from_row(row)?.organization;
        insert_audit(
            &txn,
            key_event(organization, id, AuditAction::KeyRevoked),
            now,
        )
        .await?;
        self.commit_change(txn, Change::Keys).await
    }

    /// The live key with this digest, as a caller.
    pub async fn find_caller(&self, digest: &str) -> Result<Option<Arc<Caller>>, Error> {
        if let Some(caller) = self.cache.caller(digest) {
            return Ok(Some(caller));
        }
        let epoch = self.cache.epoch();
        let caller = super::retrying(|| self.read_caller(digest))
            .await?
            .map(Arc::new);
        if let Some(caller) = &caller {
            self.cache
                .keep_caller(epoch, digest.to_owned(), caller.clone());
        }
        Ok(caller)
    }

    async fn read_caller(&self, digest: &str) -> Result<Option<Caller>, Error> {
        let row = caller_key::Entity::find()
            .filter(caller_key::Column::Digest.eq(digest))
            .filter(caller_key::Column::RevokeTime.is_null())
            .one(&self.db)
            .await
            .map_err(db_error)?;
        row.map(|row| {
            record_from_row(row).map(|key| Caller {
                key_id: key.id,
                role: key.role,
                organization: key.organization,
                resources: key.resources,
            })
        })
        .transpose()
    }
}
