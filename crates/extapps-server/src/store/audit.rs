//! The audit log: written inside the transaction of each change, read newest
//! first.

use std::collections::BTreeMap;

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use time::OffsetDateTime;

use super::entities::audit_event;
use super::{Store, db_error};
use crate::domain::{
    Error,
    application::Application,
    audit::{AuditAction, AuditEvent, NewAuditEvent},
    clock::{from_micros, to_micros},
    names::{ClientId, OrganizationId},
};

pub(super) async fn insert_audit(
    conn: &impl ConnectionTrait,
    event: NewAuditEvent,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let snapshot = |app: &Option<Application>| -> Result<Option<String>, Error> {
        app.as_ref()
            .map(|a| serde_json::to_string(a).map_err(|_| Error::Internal))
            .transpose()
    };
    audit_event::Entity::insert(audit_event::ActiveModel {
        id: NotSet,
        organization: Set(event.organization.map(|o| o.to_string())),
        application_id: Set(event.application.map(|c| c.to_string())),
        actor: Set(event.actor),
        action: Set(event.action.as_str().to_owned()),
        before: Set(snapshot(&event.before)?),
        after: Set(snapshot(&event.after)?),
        details: Set(serde_json::to_string(&event.details).map_err(|_| Error::Internal)?),
        create_time: Set(to_micros(now)),
    })
    .exec(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

impl Store {
    /// Up to `limit` events of `organization` (of one application, if given)
    /// older than event `before`, newest first.
    pub async fn list_audit_events(
        &self,
        organization: &OrganizationId,
        application: Option<ClientId>,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<AuditEvent>, Error> {
        let mut query = audit_event::Entity::find()
            .filter(audit_event::Column::Organization.eq(organization.as_str()));
        if let Some(app) = application {
            query = query.filter(audit_event::Column::ApplicationId.eq(app.to_string()));
        }
        if let Some(before) = before {
            query = query.filter(audit_event::Column::Id.lt(before));
        }
        let rows = query
            .order_by_desc(audit_event::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        rows.into_iter()
            .map(|row| event_from_row(organization, row))
            .collect()
    }
}

fn event_from_row(
    organization: &OrganizationId,
    row: audit_event::Model,
) -> Result<AuditEvent, Error> {
    let corrupt = || {
        tracing::error!(event = row.id, "stored audit event does not parse");
        Error::Internal
    };
    let snapshot = |json: &Option<String>| -> Result<Option<Application>, Error> {
        json.as_deref()
            .map(|j| serde_json::from_str(j).map_err(|_| corrupt()))
            .transpose()
    };
    let details: BTreeMap<String, String> =
        serde_json::from_str(&row.details).map_err(|_| corrupt())?;
    Ok(AuditEvent {
        id: row.id,
        organization: organization.clone(),
        application: match row.application_id.as_deref() {
            Some(id) => Some(ClientId::parse(id).ok_or_else(corrupt)?),
            None => None,
        },
        actor: row.actor.clone(),
        action: AuditAction::parse(&row.action).ok_or_else(corrupt)?,
        before: snapshot(&row.before)?,
        after: snapshot(&row.after)?,
        details,
        create_time: from_micros(row.create_time),
    })
}
