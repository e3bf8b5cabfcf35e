//! Audit events: who changed what, when. Written in the same transaction as
//! the change; never holding a secret.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::application::Application;
use super::names::{ClientId, OrganizationId};

/// The kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    ApplicationRegistered,
    ApplicationUpdated,
    ApplicationScopesUpdated,
    ApplicationSecretGenerated,
    ApplicationSecretDeleted,
    ApplicationKeyAdded,
    ApplicationKeyDeleted,
    FederatedCredentialAdded,
    FederatedCredentialDeleted,
    ApplicationDeleted,
    KeyCreated,
    KeyRevoked,
    AuthorizationAccepted,
    AuthorizationRejected,
    UserAuthorizationRevoked,
    GrantReplayed,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::ApplicationRegistered => "application_registered",
            AuditAction::ApplicationUpdated => "application_updated",
            AuditAction::ApplicationScopesUpdated => "application_scopes_updated",
            AuditAction::ApplicationSecretGenerated => "application_secret_generated",
            AuditAction::ApplicationSecretDeleted => "application_secret_deleted",
            AuditAction::ApplicationKeyAdded => "application_key_added",
            AuditAction::ApplicationKeyDeleted => "application_key_deleted",
            AuditAction::FederatedCredentialAdded => "federated_credential_added",
            AuditAction::FederatedCredentialDeleted => "federated_credential_deleted",
            AuditAction::ApplicationDeleted => "application_deleted",
            AuditAction::KeyCreated => "key_created",
            AuditAction::KeyRevoked => "key_revoked",
            AuditAction::AuthorizationAccepted => "authorization_accepted",
            AuditAction::AuthorizationRejected => "authorization_rejected",
            AuditAction::UserAuthorizationRevoked => "user_authorization_revoked",
            AuditAction::GrantReplayed => "grant_replayed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            AuditAction::ApplicationRegistered,
            AuditAction::ApplicationUpdated,
            AuditAction::ApplicationScopesUpdated,
            AuditAction::ApplicationSecretGenerated,
            AuditAction::ApplicationSecretDeleted,
            AuditAction::ApplicationKeyAdded,
            AuditAction::ApplicationKeyDeleted,
            AuditAction::FederatedCredentialAdded,
            AuditAction::FederatedCredentialDeleted,
            AuditAction::ApplicationDeleted,
            AuditAction::KeyCreated,
            AuditAction::KeyRevoked,
            AuditAction::AuthorizationAccepted,
            AuditAction::AuthorizationRejected,
            AuditAction::UserAuthorizationRevoked,
            AuditAction::GrantReplayed,
        ]
        .into_iter()
        .find(|a| a.as_str() == value)
    }
}

/// The actor of operator commands run on the server host.
pub const CLI_ACTOR: &str = "cli";

/// An event to write, beside the change it records.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub organization: Option<OrganizationId>,
    pub application: Option<ClientId>,
    pub actor: String,
    pub action: AuditAction,
    pub before: Option<Application>,
    pub after: Option<Application>,
    pub details: BTreeMap<String, String>,
}

/// A stored event.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: i64,
    pub organization: OrganizationId,
    pub application: Option<ClientId>,
    pub actor: String,
    pub action: AuditAction,
    pub before: Option<Application>,
    pub after: Option<Application>,
    pub details: BTreeMap<String, String>,
    pub create_time: OffsetDateTime,
}
