//! Applications: names, types, grants, registration, updates and secrets.

use std::{fmt, str::FromStr, time::SystemTime};

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::{application, kind, required_time, time};
use crate::{Error, v1};

/// `organizations/{organization}/applications/{client_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApplicationName {
    pub organization: String,
    pub client_id: Uuid,
}

impl fmt::Display for ApplicationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "organizations/{}/applications/{}",
            self.organization, self.client_id
        )
    }
}

/// A text that is not an application name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an application name (organizations/ORG/applications/CLIENT_ID): {0:?}")]
pub struct InvalidName(pub String);

impl FromStr for ApplicationName {
    type Err = InvalidName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidName(name.to_owned());
        let mut parts = name.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("organizations"), Some(organization), Some("applications"), Some(id))
                if parts.next().is_none() && !organization.is_empty() =>
            {
                Ok(Self {
                    organization: organization.to_owned(),
                    client_id: id.parse().map_err(|_| invalid())?,
                })
            }
            _ => Err(invalid()),
        }
    }
}

/// Whether an application can keep a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApplicationType {
    /// A server-side application: it gets a client secret.
    Confidential,
    /// A desktop or mobile application: never a secret, no application scopes.
    NonConfidential,
}

impl From<ApplicationType> for v1::ApplicationType {
    fn from(kind: ApplicationType) -> Self {
        match kind {
            ApplicationType::Confidential => v1::ApplicationType::Confidential,
            ApplicationType::NonConfidential => v1::ApplicationType::NonConfidential,
        }
    }
}

/// The scopes granted on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub resource: String,
    pub user_scopes: Vec<String>,
    pub application_scopes: Vec<String>,
}

impl Grant {
    /// A grant on `resource` with no scopes yet.
    pub fn on(resource: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            user_scopes: Vec::new(),
            application_scopes: Vec::new(),
        }
    }

    pub fn user_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.user_scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    pub fn application_scopes<S: Into<String>>(
        mut self,
        scopes: impl IntoIterator<Item = S>,
    ) -> Self {
        self.application_scopes
            .extend(scopes.into_iter().map(Into::into));
        self
    }
}

impl From<Grant> for v1::ResourceGrant {
    fn from(grant: Grant) -> Self {
        Self {
            resource: grant.resource,
            user_scopes: grant.user_scopes,
            application_scopes: grant.application_scopes,
        }
    }
}

impl From<v1::ResourceGrant> for Grant {
    fn from(grant: v1::ResourceGrant) -> Self {
        Self {
            resource: grant.resource,
            user_scopes: grant.user_scopes,
            application_scopes: grant.application_scopes,
        }
    }
}

/// An application to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApplication {
    pub display_name: String,
    pub kind: ApplicationType,
    pub grants: Vec<Grant>,
    pub redirect_urls: Vec<String>,
}

impl NewApplication {
    pub fn new(display_name: impl Into<String>, kind: ApplicationType) -> Self {
        Self {
            display_name: display_name.into(),
            kind,
            grants: Vec::new(),
            redirect_urls: Vec::new(),
        }
    }

    pub fn grant(mut self, grant: Grant) -> Self {
        self.grants.push(grant);
        self
    }

    pub fn redirect_url(mut self, url: impl Into<String>) -> Self {
        self.redirect_urls.push(url.into());
        self
    }
}

impl From<NewApplication> for v1::Application {
    fn from(app: NewApplication) -> Self {
        Self {
            display_name: app.display_name,
            r#type: v1::ApplicationType::from(app.kind).into(),
            grants: app.grants.into_iter().map(Into::into).collect(),
            redirect_urls: app.redirect_urls,
            ..Self::default()
        }
    }
}

/// A registered application, as `GetApplication` shows it (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub name: ApplicationName,
    pub display_name: String,
    pub kind: ApplicationType,
    pub grants: Vec<Grant>,
    pub redirect_urls: Vec<String>,
    /// The live secrets of a confidential application.
    pub secrets: Vec<SecretInfo>,
    /// The live public keys it signs `private_key_jwt` assertions with.
    pub keys: Vec<KeyInfo>,
    /// The outside providers' tokens it accepts as client assertions.
    pub federated_credentials: Vec<FederatedCredential>,
    /// Pass it back to change the application only if nobody else has.
    pub etag: String,
    pub created: SystemTime,
    pub updated: SystemTime,
}

impl Application {
    pub fn client_id(&self) -> Uuid {
        self.name.client_id
    }
}

impl TryFrom<v1::Application> for Application {
    type Error = Error;

    fn try_from(app: v1::Application) -> Result<Self, Error> {
        let kind = kind(app.r#type)?;
        Ok(Self {
            name: app
                .name
                .parse()
                .map_err(|_| Error::Response("a malformed application name"))?,
            display_name: app.display_name,
            kind,
            grants: app.grants.into_iter().map(Into::into).collect(),
            redirect_urls: app.redirect_urls,
            secrets: app
                .secrets
                .into_iter()
                .map(SecretInfo::try_from)
                .collect::<Result<_, _>>()?,
            keys: app
                .keys
                .into_iter()
                .map(KeyInfo::try_from)
                .collect::<Result<_, _>>()?,
            federated_credentials: app
                .federated_credentials
                .into_iter()
                .map(FederatedCredential::try_from)
                .collect::<Result<_, _>>()?,
            etag: app.etag,
            created: required_time(app.create_time)?,
            updated: required_time(app.update_time)?,
        })
    }
}

/// What is known of a live secret: never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub id: String,
    /// `organizations/{organization}/applications/{client_id}/secrets/{id}`.
    pub name: String,
    pub created: SystemTime,
    /// When it stops working by itself: the expiry it was generated with,
    /// or the end of the grace period once a newer secret replaced it.
    pub expires: Option<SystemTime>,
    pub last_used: Option<SystemTime>,
    /// What it is for; empty if nothing was said.
    pub description: String,
}

impl TryFrom<v1::ClientSecretInfo> for SecretInfo {
    type Error = Error;

    fn try_from(info: v1::ClientSecretInfo) -> Result<Self, Error> {
        Ok(Self {
            id: info.secret_id,
            name: info.name,
            created: required_time(info.create_time)?,
            expires: time(info.expire_time)?,
            last_used: time(info.last_use_time)?,
            description: info.description,
        })
    }
}

/// A public key registered for `private_key_jwt` (its public half only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    /// `organizations/{organization}/applications/{client_id}/keys/{id}`.
    pub name: String,
    /// `ES256`, `EdDSA`, `RS256` or `PS256`.
    pub algorithm: String,
    /// RFC 7638 thumbprint, base64url.
    pub thumbprint: String,
    /// The public JWK as registered.
    pub jwk: String,
    /// What it is for; empty if nothing was said.
    pub description: String,
    pub created: SystemTime,
    pub expires: Option<SystemTime>,
    pub last_used: Option<SystemTime>,
}

impl TryFrom<v1::ClientKeyInfo> for KeyInfo {
    type Error = Error;

    fn try_from(info: v1::ClientKeyInfo) -> Result<Self, Error> {
        Ok(Self {
            id: info.key_id,
            name: info.name,
            algorithm: info.algorithm,
            thumbprint: info.thumbprint,
            jwk: info.jwk,
            description: info.description,
            created: required_time(info.create_time)?,
            expires: time(info.expire_time)?,
            last_used: time(info.last_use_time)?,
        })
    }
}

/// A federated credential: the tokens of an outside provider (`issuer`)
/// for exactly `subject` and `audience`, accepted as client assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedCredential {
    pub id: String,
    /// `organizations/{organization}/applications/{client_id}/federatedCredentials/{id}`.
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub audience: String,
    /// What it is for; empty if nothing was said.
    pub description: String,
    pub created: SystemTime,
    pub last_used: Option<SystemTime>,
}

impl TryFrom<v1::FederatedCredentialInfo> for FederatedCredential {
    type Error = Error;

    fn try_from(info: v1::FederatedCredentialInfo) -> Result<Self, Error> {
        Ok(Self {
            id: info.credential_id,
            name: info.name,
            issuer: info.issuer,
            subject: info.subject,
            audience: info.audience,
            description: info.description,
            created: required_time(info.create_time)?,
            last_used: time(info.last_use_time)?,
        })
    }
}

/// A public key to register on an application.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewKey {
    /// One JWK (RFC 7517) of the public key, as JSON.
    pub jwk: String,
    /// What the key is for, shown in listings (at most 128 characters).
    pub description: Option<String>,
    /// When the key stops working by itself; by default never.
    pub expiry: Option<SecretExpiry>,
    /// Only if the application still has this etag.
    pub etag: Option<String>,
}

/// A client secret, returned once. `Debug` prints `[REDACTED]`; store it
/// (in a secret manager) and hand it to the application's developer.
#[derive(Debug, Clone)]
pub struct ClientSecret(SecretString);

impl ClientSecret {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// What registration returns: the application and, for a confidential one,
/// its secret.
#[derive(Debug, Clone)]
pub struct Registered {
    pub application: Application,
    pub secret: Option<ClientSecret>,
}

impl TryFrom<v1::RegisterApplicationResponse> for Registered {
    type Error = Error;

    fn try_from(response: v1::RegisterApplicationResponse) -> Result<Self, Error> {
        Ok(Self {
            application: application(response.application)?,
            secret: secret(response.client_secret),
        })
    }
}

/// A new secret and the application it now belongs to.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub application: Application,
    pub secret: ClientSecret,
}

impl TryFrom<v1::GenerateApplicationSecretResponse> for Rotated {
    type Error = Error;

    fn try_from(response: v1::GenerateApplicationSecretResponse) -> Result<Self, Error> {
        Ok(Self {
            application: application(response.application)?,
            secret: secret(response.client_secret)
                .ok_or(Error::Response("a generated secret that is empty"))?,
        })
    }
}

/// How to generate an application's secret: by default it replaces the
/// others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewSecret {
    /// Replacing: keep the old secrets working this long (at most 7 days);
    /// by default they stop working at once.
    pub grace_period: Option<std::time::Duration>,
    /// Replacing: also revoke every token issued so far.
    pub revoke_tokens: bool,
    /// Add the secret beside the others (at most 5 live) instead.
    pub keep_existing: bool,
    /// What the secret is for, shown in listings (at most 128 characters).
    pub description: Option<String>,
    /// When the secret stops working by itself; by default never.
    pub expiry: Option<SecretExpiry>,
    /// Only if the application still has this etag.
    pub etag: Option<String>,
}

/// When a new secret or key expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretExpiry {
    /// At this instant.
    At(SystemTime),
    /// This long after it is generated (at most 10 years).
    After(std::time::Duration),
}

/// A change of display name and/or redirect URLs; fields left `None` stay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplicationUpdate {
    pub display_name: Option<String>,
    pub redirect_urls: Option<Vec<String>>,
    /// Only if the application still has this etag.
    pub etag: Option<String>,
}

fn secret(secret: String) -> Option<ClientSecret> {
    (!secret.is_empty()).then(|| ClientSecret(SecretString::from(secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_names_round_trip_and_reject_other_text() {
        let name: ApplicationName =
            "organizations/acme/applications/67e55044-10b1-426f-9247-bb680e5fe0c8"
                .parse()
                .unwrap();
        assert_eq!(name.organization, "acme");
        assert_eq!(
            name.to_string(),
            "organizations/acme/applications/67e55044-10b1-426f-9247-bb680e5fe0c8"
        );
        for bad in [
            "",
            "organizations/acme",
            "organizations//applications/67e55044-10b1-426f-9247-bb680e5fe0c8",
            "organizations/acme/applications/not-a-uuid",
            "organizations/acme/applications/67e55044-10b1-426f-9247-bb680e5fe0c8/x",
            "projects/acme/applications/67e55044-10b1-426f-9247-bb680e5fe0c8",
        ] {
            assert_eq!(
                bad.parse::<ApplicationName>(),
                Err(InvalidName(bad.to_owned()))
            );
        }
    }

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let secret = secret("extapps_cs_very_secret".to_owned()).unwrap();
        assert!(!format!("{secret:?}").contains("very_secret"));
        assert_eq!(secret.expose(), "extapps_cs_very_secret");
    }
}
