//! Requests the tests build again and again.

use extapps_client::{GeneratedClient as Client, v1 as pb};

pub fn grant(resource: &str, user: &[&str], application: &[&str]) -> pb::ResourceGrant {
    pb::ResourceGrant {
        resource: resource.into(),
        user_scopes: user.iter().map(|s| s.to_string()).collect(),
        application_scopes: application.iter().map(|s| s.to_string()).collect(),
    }
}

/// A confidential application with application scopes only.
pub fn service_app(display_name: &str) -> pb::Application {
    pb::Application {
        display_name: display_name.into(),
        r#type: pb::ApplicationType::Confidential.into(),
        grants: vec![grant("OR", &[], &["OR.Jobs.Read", "OR.Queues"])],
        ..Default::default()
    }
}

/// A non-confidential (native) application with user scopes.
pub fn native_app(display_name: &str) -> pb::Application {
    pb::Application {
        display_name: display_name.into(),
        r#type: pb::ApplicationType::NonConfidential.into(),
        grants: vec![grant("OR", &["OR.Jobs"], &[])],
        redirect_urls: vec!["com.example.app:/callback".into()],
        ..Default::default()
    }
}

pub fn register_request(
    organization: &str,
    app: pb::Application,
) -> pb::RegisterApplicationRequest {
    pb::RegisterApplicationRequest {
        parent: format!("organizations/{organization}"),
        application: Some(app),
        request_id: String::new(),
    }
}

pub async fn register(
    client: &mut Client,
    organization: &str,
    app: pb::Application,
) -> pb::RegisterApplicationResponse {
    client
        .register_application(register_request(organization, app))
        .await
        .expect("register")
        .into_inner()
}

pub async fn get(client: &mut Client, name: &str) -> pb::Application {
    client
        .get_application(pb::GetApplicationRequest { name: name.into() })
        .await
        .expect("get")
        .into_inner()
        .application
        .expect("application")
}

pub async fn audit(client: &mut Client, organization: &str) -> Vec<pb::AuditEvent> {
    client
        .list_audit_events(pb::ListAuditEventsRequest {
            parent: format!("organizations/{organization}"),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("audit")
        .into_inner()
        .audit_events
}

pub async fn list_all(client: &mut Client, organization: &str) -> Vec<pb::Application> {
    client
        .list_applications(pb::ListApplicationsRequest {
            parent: format!("organizations/{organization}"),
            page_size: 1000,
            page_token: String::new(),
        })
        .await
        .expect("list")
        .into_inner()
        .applications
}

/// Generates a new secret for `name`; the old one lives on for
/// `grace_seconds`, and `revoke_tokens` revokes every token issued so far.
pub async fn rotate(
    client: &mut Client,
    name: &str,
    grace_seconds: i64,
    revoke_tokens: bool,
) -> pb::GenerateApplicationSecretResponse {
    client
        .generate_application_secret(pb::GenerateApplicationSecretRequest {
            name: name.into(),
            grace_period: (grace_seconds > 0).then_some(prost_types::Duration {
                seconds: grace_seconds,
                nanos: 0,
            }),
            revoke_tokens,
            ..Default::default()
        })
        .await
        .expect("rotate")
        .into_inner()
}

/// Renames an application, whatever its etag.
pub async fn rename(client: &mut Client, name: &str, display_name: &str) {
    client
        .update_application(pb::UpdateApplicationRequest {
            application: Some(pb::Application {
                name: name.into(),
                display_name: display_name.into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .expect("rename");
}

/// Replaces an application's grants, whatever its etag.
pub async fn set_scopes(client: &mut Client, name: &str, grants: Vec<pb::ResourceGrant>) {
    client
        .update_application_scopes(pb::UpdateApplicationScopesRequest {
            name: name.into(),
            grants,
            etag: String::new(),
        })
        .await
        .expect("update scopes");
}

/// Adds a secret beside the others; returns it and the application after.
pub async fn add_secret(
    admin: &mut Client,
    name: &str,
    description: &str,
    ttl: Option<prost_types::Duration>,
) -> (String, pb::Application) {
    let added = admin
        .generate_application_secret(pb::GenerateApplicationSecretRequest {
            name: name.into(),
            keep_existing_secrets: true,
            description: description.into(),
            expiration: ttl.map(pb::generate_application_secret_request::Expiration::Ttl),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    (added.client_secret, added.application.unwrap())
}

/// The listed secret that is not among `known`.
pub fn newest(app: &pb::Application, known: &[&pb::ClientSecretInfo]) -> pb::ClientSecretInfo {
    app.secrets
        .iter()
        .find(|s| known.iter().all(|k| k.secret_id != s.secret_id))
        .unwrap()
        .clone()
}

/// Deletes one secret by its name, ending its tokens or not.
pub async fn delete_secret(
    admin: &mut Client,
    secret: &pb::ClientSecretInfo,
    revoke_tokens: bool,
) -> Result<pb::Application, tonic::Status> {
    admin
        .delete_application_secret(pb::DeleteApplicationSecretRequest {
            name: secret.name.clone(),
            revoke_tokens,
            etag: String::new(),
        })
        .await
        .map(|r| r.into_inner().application.unwrap())
}

/// Registers a public key (a JWK) on an application.
pub async fn add_key(
    admin: &mut Client,
    name: &str,
    jwk: &serde_json::Value,
) -> Result<pb::AddApplicationKeyResponse, tonic::Status> {
    admin
        .add_application_key(pb::AddApplicationKeyRequest {
            name: name.into(),
            jwk: jwk.to_string(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Deletes one key by its name, ending its tokens or not.
pub async fn delete_key(
    admin: &mut Client,
    key: &pb::ClientKeyInfo,
    revoke_tokens: bool,
) -> Result<pb::Application, tonic::Status> {
    admin
        .delete_application_key(pb::DeleteApplicationKeyRequest {
            name: key.name.clone(),
            revoke_tokens,
            etag: String::new(),
        })
        .await
        .map(|r| r.into_inner().application.unwrap())
}

/// Deletes one federated credential by its name, ending its tokens or not.
pub async fn delete_federated(
    admin: &mut Client,
    credential: &pb::FederatedCredentialInfo,
    revoke_tokens: bool,
) -> Result<pb::Application, tonic::Status> {
    admin
        .delete_federated_credential(pb::DeleteFederatedCredentialRequest {
            name: credential.name.clone(),
            revoke_tokens,
            etag: String::new(),
        })
        .await
        .map(|r| r.into_inner().application.unwrap())
}
