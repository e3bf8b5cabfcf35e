//! Proto messages to domain values and back. No rules live here: only shape.

use extapps_proto::v1 as pb;
use prost_types::Timestamp;
use time::OffsetDateTime;

use crate::domain::{
    Error,
    application::{Application, FederatedInfo, KeyInfo, SecretInfo},
    application_type::ApplicationType,
    audit::{AuditAction, AuditEvent},
    catalog::Resource,
    names::{ApplicationName, ClientId, OrganizationId},
    scope_grants::ResourceGrantInput,
};

pub fn timestamp(time: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: time.unix_timestamp(),
        nanos: i32::try_from(time.nanosecond()).unwrap_or(0),
    }
}

pub fn app_type_from_proto(value: i32) -> Option<ApplicationType> {
    match pb::ApplicationType::try_from(value) {
        Ok(pb::ApplicationType::Confidential) => Some(ApplicationType::Confidential),
        Ok(pb::ApplicationType::NonConfidential) => Some(ApplicationType::NonConfidential),
        _ => None,
    }
}

fn app_type_to_proto(value: ApplicationType) -> pb::ApplicationType {
    match value {
        ApplicationType::Confidential => pb::ApplicationType::Confidential,
        ApplicationType::NonConfidential => pb::ApplicationType::NonConfidential,
    }
}

pub fn grant_inputs(grants: Vec<pb::ResourceGrant>) -> Vec<ResourceGrantInput> {
    grants
        .into_iter()
        .map(|g| ResourceGrantInput {
            resource: g.resource,
            user_scopes: g.user_scopes,
            application_scopes: g.application_scopes,
        })
        .collect()
}

fn secret_to_proto(application: &str, secret: &SecretInfo) -> pb::ClientSecretInfo {
    pb::ClientSecretInfo {
        secret_id: secret.secret_id.clone(),
        create_time: Some(timestamp(secret.create_time)),
        expire_time: secret.expire_time.map(timestamp),
        last_use_time: secret.last_use_time.map(timestamp),
        description: secret.description.clone(),
        name: format!("{application}/secrets/{}", secret.secret_id),
    }
}

pub fn key_to_proto(application: &str, key: &KeyInfo) -> pb::ClientKeyInfo {
    pb::ClientKeyInfo {
        key_id: key.key_id.clone(),
        name: format!("{application}/keys/{}", key.key_id),
        algorithm: key.algorithm.clone(),
        thumbprint: key.thumbprint.clone(),
        jwk: key.jwk.clone(),
        description: key.description.clone(),
        create_time: Some(timestamp(key.create_time)),
        expire_time: key.expire_time.map(timestamp),
        last_use_time: key.last_use_time.map(timestamp),
    }
}

pub fn federated_to_proto(
    application: &str,
    credential: &FederatedInfo,
) -> pb::FederatedCredentialInfo {
    pb::FederatedCredentialInfo {
        credential_id: credential.credential_id.clone(),
        name: format!(
            "{application}/federatedCredentials/{}",
            credential.credential_id
        ),
        issuer: credential.issuer.clone(),
        subject: credential.subject.clone(),
        audience: credential.audience.clone(),
        description: credential.description.clone(),
        create_time: Some(timestamp(credential.create_time)),
        last_use_time: credential.last_use_time.map(timestamp),
    }
}

pub fn application_to_proto(app: &Application) -> pb::Application {
    let name = app.name().to_string();
    pb::Application {
        keys: app
            .keys
            .iter()
            .map(|key| key_to_proto(&name, key))
            .collect(),
        federated_credentials: app
            .federated
            .iter()
            .map(|credential| federated_to_proto(&name, credential))
            .collect(),
        secrets: app
            .secrets
            .iter()
            .map(|secret| secret_to_proto(&name, secret))
            .collect(),
        name,
        client_id: app.client_id.to_string(),
        display_name: app.display_name.as_str().to_owned(),
        r#type: app_type_to_proto(app.app_type).into(),
        grants: app
            .grants
            .iter()
            .map(|(resource, grant)| pb::ResourceGrant {
                resource: resource.clone(),
                user_scopes: grant.user_scopes.iter().cloned().collect(),
                application_scopes: grant.application_scopes.iter().cloned().collect(),
            })
            .collect(),
        redirect_urls: app
            .redirect_urls
            .iter()
            .map(|u| u.as_str().to_owned())
            .collect(),
        etag: app.etag(),
        create_time: Some(timestamp(app.create_time)),
        update_time: Some(timestamp(app.update_time)),
    }
}

pub fn resource_to_proto(resource: &Resource) -> pb::Resource {
    let scopes = |set: &std::collections::BTreeMap<String, String>| {
        set.iter()
            .map(|(name, description)| pb::Scope {
                name: name.clone(),
                description: description.clone(),
            })
            .collect()
    };
    pb::Resource {
        id: resource.id.clone(),
        display_name: resource.display_name.clone(),
        description: resource.description.clone(),
        user_scopes: scopes(&resource.user_scopes),
        application_scopes: scopes(&resource.application_scopes),
    }
}

fn action_to_proto(action: AuditAction) -> pb::AuditAction {
    match action {
        AuditAction::ApplicationRegistered => pb::AuditAction::ApplicationRegistered,
        AuditAction::ApplicationUpdated => pb::AuditAction::ApplicationUpdated,
        AuditAction::ApplicationScopesUpdated => pb::AuditAction::ApplicationScopesUpdated,
        AuditAction::ApplicationSecretGenerated => pb::AuditAction::ApplicationSecretGenerated,
        AuditAction::ApplicationSecretDeleted => pb::AuditAction::ApplicationSecretDeleted,
        AuditAction::ApplicationKeyAdded => pb::AuditAction::ApplicationKeyAdded,
        AuditAction::ApplicationKeyDeleted => pb::AuditAction::ApplicationKeyDeleted,
        AuditAction::FederatedCredentialAdded => pb::AuditAction::FederatedCredentialAdded,
        AuditAction::FederatedCredentialDeleted => pb::AuditAction::FederatedCredentialDeleted,
        AuditAction::ApplicationDeleted => pb::AuditAction::ApplicationDeleted,
        AuditAction::KeyCreated => pb::AuditAction::KeyCreated,
        AuditAction::KeyRevoked => pb::AuditAction::KeyRevoked,
        AuditAction::AuthorizationAccepted => pb::AuditAction::AuthorizationAccepted,
        AuditAction::AuthorizationRejected => pb::AuditAction::AuthorizationRejected,
        AuditAction::UserAuthorizationRevoked => pb::AuditAction::UserAuthorizationRevoked,
        AuditAction::GrantReplayed => pb::AuditAction::GrantReplayed,
    }
}

pub fn audit_event_to_proto(event: &AuditEvent) -> pb::AuditEvent {
    pb::AuditEvent {
        name: format!(
            "organizations/{}/auditEvents/{}",
            event.organization, event.id
        ),
        create_time: Some(timestamp(event.create_time)),
        actor_key_id: event.actor.clone(),
        action: action_to_proto(event.action).into(),
        application: event
            .application
            .map(|id| format!("organizations/{}/applications/{id}", event.organization))
            .unwrap_or_default(),
        before: event.before.as_ref().map(application_to_proto),
        after: event.after.as_ref().map(application_to_proto),
        details: event.details.clone().into_iter().collect(),
    }
}

/// A `google.protobuf.Duration` as a `time::Duration`; `None` is zero.
pub fn duration(
    field: &str,
    value: Option<prost_types::Duration>,
) -> Result<time::Duration, Error> {
    let Some(d) = value else {
        return Ok(time::Duration::ZERO);
    };
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        return Err(Error::invalid_field(
            field,
            "must be a non-negative duration",
        ));
    }
    Ok(time::Duration::new(d.seconds, d.nanos))
}

/// A `google.protobuf.Timestamp` as an instant.
pub fn instant(field: &str, value: prost_types::Timestamp) -> Result<OffsetDateTime, Error> {
    let nanos = i128::from(value.seconds) * 1_000_000_000 + i128::from(value.nanos);
    if !(0..1_000_000_000).contains(&value.nanos) {
        return Err(Error::invalid_field(
            field,
            "nanos must be 0 to 999,999,999",
        ));
    }
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|_| Error::invalid_field(field, "is out of range"))
}

fn application_resource_name(organization: OrganizationId, client_id: ClientId) -> String {
    ApplicationName {
        organization,
        client_id,
    }
    .to_string()
}

pub fn authorization_request_to_proto(
    view: crate::service::AuthorizationRequestView,
) -> pb::AuthorizationRequest {
    pb::AuthorizationRequest {
        name: format!("authorizationRequests/{}", view.id),
        application: application_resource_name(view.organization, view.client_id),
        client_id: view.client_id.to_string(),
        application_display_name: view.display_name,
        application_type: app_type_to_proto(view.app_type).into(),
        scopes: view
            .scopes
            .into_iter()
            .map(|s| pb::RequestedScope {
                scope: s.scope,
                resource: s.resource,
                resource_display_name: s.resource_display_name,
                description: s.description,
            })
            .collect(),
        offline_access: view.offline_access,
        redirect_host: view.redirect_host,
        expire_time: Some(timestamp(view.expire_time)),
    }
}

pub fn user_authorization_to_proto(
    record: crate::domain::user_grant::UserAuthorizationRecord,
) -> pb::UserAuthorization {
    pb::UserAuthorization {
        application: application_resource_name(record.organization, record.client_id),
        client_id: record.client_id.to_string(),
        application_display_name: record.display_name,
        scopes: record.scopes.into_iter().collect(),
        offline_access: record.offline_access,
        create_time: Some(timestamp(record.create_time)),
        update_time: Some(timestamp(record.update_time)),
    }
}
