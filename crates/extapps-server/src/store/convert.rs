//! Rows to domain values and back. Stored data was validated when written; a
//! row that no longer parses is reported as an internal error, never guessed at.

use crate::domain::{
    Error,
    application::{Application, DisplayName, FederatedInfo, KeyInfo, SecretInfo},
    application_type::ApplicationType,
    clock::{from_micros, to_micros},
    names::{ClientId, OrganizationId},
    redirect_url::RedirectUrl,
    scope_grants::ScopeGrants,
};

use super::entities::{application, application_key, application_secret, federated_credential};

fn corrupt(what: &str, id: &str) -> Error {
    tracing::error!(row = id, what, "stored row does not parse");
    Error::Internal
}

/// The stored redirect URLs of application `id`, as stored: one written
/// under the looser rules of earlier versions reads back as it is (see
/// [`RedirectUrl::problem`]), so its application stays readable.
pub fn redirect_urls_from_json(json: &str, id: &str) -> Result<Vec<RedirectUrl>, Error> {
    let urls: Vec<String> = serde_json::from_str(json).map_err(|_| corrupt("redirect_urls", id))?;
    Ok(urls.into_iter().map(RedirectUrl::stored).collect())
}

pub fn application_from_row(
    row: application::Model,
    secrets: Vec<application_secret::Model>,
    keys: Vec<application_key::Model>,
    federated: Vec<federated_credential::Model>,
) -> Result<Application, Error> {
    let id = row.id.as_str();
    let grants: ScopeGrants =
        serde_json::from_str(&row.grants).map_err(|_| corrupt("grants", id))?;
    let redirect_urls = redirect_urls_from_json(&row.redirect_urls, id)?;
    let mut secrets: Vec<SecretInfo> = secrets.into_iter().map(secret_from_row).collect();
    secrets.sort_by_key(|s| (s.create_time, s.secret_id.clone()));
    let mut keys: Vec<KeyInfo> = keys.into_iter().map(key_from_row).collect();
    keys.sort_by_key(|k| (k.create_time, k.key_id.clone()));
    let mut federated: Vec<FederatedInfo> = federated.into_iter().map(federated_from_row).collect();
    federated.sort_by_key(|f| (f.create_time, f.credential_id.clone()));
    Ok(Application {
        organization: OrganizationId::parse(&row.organization)
            .map_err(|_| corrupt("organization", id))?,
        client_id: ClientId::parse(id).ok_or_else(|| corrupt("id", id))?,
        display_name: DisplayName::stored(row.display_name),
        app_type: ApplicationType::parse(&row.app_type).ok_or_else(|| corrupt("app_type", id))?,
        grants,
        redirect_urls,
        secrets,
        keys,
        federated,
        revision: row.revision,
        create_time: from_micros(row.create_time),
        update_time: from_micros(row.update_time),
    })
}

fn secret_from_row(row: application_secret::Model) -> SecretInfo {
    SecretInfo {
        secret_id: row.id,
        create_time: from_micros(row.create_time),
        expire_time: row.expire_time.map(from_micros),
        last_use_time: row.last_use_time.map(from_micros),
        description: row.description,
    }
}

fn key_from_row(row: application_key::Model) -> KeyInfo {
    KeyInfo {
        key_id: row.id,
        algorithm: row.algorithm,
        thumbprint: row.thumbprint,
        jwk: row.jwk,
        description: row.description,
        create_time: from_micros(row.create_time),
        expire_time: row.expire_time.map(from_micros),
        last_use_time: row.last_use_time.map(from_micros),
    }
}

fn federated_from_row(row: federated_credential::Model) -> FederatedInfo {
    FederatedInfo {
        credential_id: row.id,
        issuer: row.issuer,
        subject: row.subject,
        audience: row.audience,
        description: row.description,
        create_time: from_micros(row.create_time),
        last_use_time: row.last_use_time.map(from_micros),
    }
}

pub fn grants_json(grants: &ScopeGrants) -> Result<String, Error> {
    serde_json::to_string(grants).map_err(|_| Error::Internal)
}

pub fn redirect_urls_json(urls: &[RedirectUrl]) -> Result<String, Error> {
    let urls: Vec<&str> = urls.iter().map(RedirectUrl::as_str).collect();
    serde_json::to_string(&urls).map_err(|_| Error::Internal)
}

/// The columns of an application that its writes set.
pub fn application_row(app: &Application) -> Result<application::Model, Error> {
    Ok(application::Model {
        id: app.client_id.to_string(),
        organization: app.organization.to_string(),
        display_name: app.display_name.as_str().to_owned(),
        display_name_key: app.display_name.key(),
        app_type: app.app_type.as_str().to_owned(),
        grants: grants_json(&app.grants)?,
        redirect_urls: redirect_urls_json(&app.redirect_urls)?,
        revision: app.revision,
        tokens_not_before: None,
        create_time: to_micros(app.create_time),
        update_time: to_micros(app.update_time),
        scope_removals: "{}".into(),
        credential_cutoffs: "{}".into(),
    })
}
