//! Audit events: one recorded change each.

use std::{collections::BTreeMap, time::SystemTime};

use super::{Application, ApplicationName, required_time};
use crate::{Error, v1};

/// One change, as the audit log recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub name: String,
    pub time: SystemTime,
    /// The ID of the caller key that made the change.
    pub actor_key_id: String,
    pub action: v1::AuditAction,
    /// The application changed, for application events.
    pub application: Option<ApplicationName>,
    pub before: Option<Application>,
    pub after: Option<Application>,
    pub details: BTreeMap<String, String>,
}

impl TryFrom<v1::AuditEvent> for AuditEvent {
    type Error = Error;

    fn try_from(event: v1::AuditEvent) -> Result<Self, Error> {
        Ok(Self {
            name: event.name,
            time: required_time(event.create_time)?,
            actor_key_id: event.actor_key_id,
            action: v1::AuditAction::try_from(event.action).unwrap_or_default(),
            application: match event.application.as_str() {
                "" => None,
                name => Some(
                    name.parse()
                        .map_err(|_| Error::Response("a malformed application name"))?,
                ),
            },
            before: event.before.map(Application::try_from).transpose()?,
            after: event.after.map(Application::try_from).transpose()?,
            details: event.details.into_iter().collect(),
        })
    }
}
