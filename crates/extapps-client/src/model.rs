//! The API's objects as Rust types: names parsed, times as `SystemTime`,
//! secrets wrapped so they never print, absent values as `Option`.

use std::{collections::BTreeMap, fmt, str::FromStr, time::SystemTime};

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

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
    pub created: SystemTime,
    /// Set while a replaced secret lives out its grace period.
    pub expires: Option<SystemTime>,
    pub last_used: Option<SystemTime>,
}

impl TryFrom<v1::ClientSecretInfo> for SecretInfo {
    type Error = Error;

    fn try_from(info: v1::ClientSecretInfo) -> Result<Self, Error> {
        Ok(Self {
            id: info.secret_id,
            created: required_time(info.create_time)?,
            expires: time(info.expire_time)?,
            last_used: time(info.last_use_time)?,
        })
    }
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

/// How to replace an application's secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewSecret {
    /// Keep the old secret working this long (at most 7 days); by default it
    /// stops working at once.
    pub grace_period: Option<std::time::Duration>,
    /// Also revoke every token issued so far.
    pub revoke_tokens: bool,
    /// Only if the application still has this etag.
    pub etag: Option<String>,
}

/// A change of display name and/or redirect URLs; fields left `None` stay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplicationUpdate {
    pub display_name: Option<String>,
    pub redirect_urls: Option<Vec<String>>,
    /// Only if the application still has this etag.
    pub etag: Option<String>,
}

/// One of the platform's APIs, and the scopes it offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub id: String,
    pub display_name: String,
    pub description: String,
    /// `(name, description)` of the scopes that need a signed-in user.
    pub user_scopes: Vec<(String, String)>,
    /// `(name, description)` of the scopes an application holds by itself.
    pub application_scopes: Vec<(String, String)>,
}

impl From<v1::Resource> for Resource {
    fn from(resource: v1::Resource) -> Self {
        let scopes = |scopes: Vec<v1::Scope>| {
            scopes
                .into_iter()
                .map(|scope| (scope.name, scope.description))
                .collect()
        };
        Self {
            id: resource.id,
            display_name: resource.display_name,
            description: resource.description,
            user_scopes: scopes(resource.user_scopes),
            application_scopes: scopes(resource.application_scopes),
        }
    }
}

/// What a token is worth (RFC 7662): nothing, or these claims.
// One value per call, matched on at once: boxing the claims would cost an
// allocation and a less natural pattern for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introspection {
    /// Unknown, expired, revoked, of a deleted application, with no granted
    /// scope left, or outside the caller's resources.
    Inactive,
    Active(ActiveToken),
}

/// The claims of an active token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveToken {
    pub scopes: Vec<String>,
    pub client_id: Uuid,
    pub token_type: String,
    pub expires: SystemTime,
    pub issued: SystemTime,
    /// The user, for tokens issued on a user's behalf.
    pub subject: Option<String>,
    pub audience: Vec<String>,
    pub issuer: String,
    pub jti: String,
    /// The token's organization; told only to platform-wide keys and
    /// operators.
    pub organization: Option<String>,
}

impl TryFrom<v1::IntrospectTokenResponse> for Introspection {
    type Error = Error;

    fn try_from(answer: v1::IntrospectTokenResponse) -> Result<Self, Error> {
        if !answer.active {
            return Ok(Introspection::Inactive);
        }
        let unix = |seconds: i64| {
            u64::try_from(seconds)
                .map(|seconds| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds))
                .map_err(|_| Error::Response("a token time before 1970"))
        };
        Ok(Introspection::Active(ActiveToken {
            scopes: answer.scope.split_whitespace().map(str::to_owned).collect(),
            client_id: answer
                .client_id
                .parse()
                .map_err(|_| Error::Response("a malformed client ID"))?,
            token_type: answer.token_type,
            expires: unix(answer.exp)?,
            issued: unix(answer.iat)?,
            subject: Some(answer.sub).filter(|sub| !sub.is_empty()),
            audience: answer.aud,
            issuer: answer.iss,
            jti: answer.jti,
            organization: Some(answer.organization).filter(|o| !o.is_empty()),
        }))
    }
}

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

/// A pending user authorization request, as a consent screen shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// `authorizationRequests/{id}`: pass it to accept or reject.
    pub name: String,
    pub application: ApplicationName,
    /// Text an administrator chose: escape it when showing it.
    pub application_display_name: String,
    pub application_kind: ApplicationType,
    /// The user scopes asked for, with the catalog's descriptions.
    pub scopes: Vec<RequestedScope>,
    /// The application also asks for a refresh token (`offline_access`).
    pub offline_access: bool,
    /// Where the browser goes afterwards (host, or a native app's scheme).
    pub redirect_host: String,
    pub expires: SystemTime,
}

/// One scope of an authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedScope {
    pub scope: String,
    pub resource: String,
    pub resource_display_name: String,
    pub description: String,
}

impl AuthorizationRequest {
    /// The ID the browser arrived with (`?authorization_request=`).
    pub fn id(&self) -> &str {
        self.name
            .strip_prefix("authorizationRequests/")
            .unwrap_or(&self.name)
    }
}

impl TryFrom<v1::AuthorizationRequest> for AuthorizationRequest {
    type Error = Error;

    fn try_from(request: v1::AuthorizationRequest) -> Result<Self, Error> {
        Ok(Self {
            name: request.name,
            application: request
                .application
                .parse()
                .map_err(|_| Error::Response("a malformed application name"))?,
            application_display_name: request.application_display_name,
            application_kind: kind(request.application_type)?,
            scopes: request
                .scopes
                .into_iter()
                .map(|s| RequestedScope {
                    scope: s.scope,
                    resource: s.resource,
                    resource_display_name: s.resource_display_name,
                    description: s.description,
                })
                .collect(),
            offline_access: request.offline_access,
            redirect_host: request.redirect_host,
            expires: required_time(request.expire_time)?,
        })
    }
}

/// What a user authorized one application to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAuthorization {
    pub application: ApplicationName,
    pub application_display_name: String,
    pub scopes: Vec<String>,
    pub offline_access: bool,
    pub created: SystemTime,
    pub updated: SystemTime,
}

impl TryFrom<v1::UserAuthorization> for UserAuthorization {
    type Error = Error;

    fn try_from(record: v1::UserAuthorization) -> Result<Self, Error> {
        Ok(Self {
            application: record
                .application
                .parse()
                .map_err(|_| Error::Response("a malformed application name"))?,
            application_display_name: record.application_display_name,
            scopes: record.scopes,
            offline_access: record.offline_access,
            created: required_time(record.create_time)?,
            updated: required_time(record.update_time)?,
        })
    }
}

/// Which page of a list to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many items (0: the server's default).
    pub size: u32,
    /// Where the previous page ended (empty: the first page).
    pub token: String,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_page_token: Option<String>,
}

impl<T> Page<T> {
    /// The request for the next page (same size), if there is one.
    pub fn next(&self, size: u32) -> Option<PageRequest> {
        self.next_page_token
            .clone()
            .map(|token| PageRequest { size, token })
    }
}

pub(crate) fn application(app: Option<v1::Application>) -> Result<Application, Error> {
    app.ok_or(Error::Response("no application in the answer"))?
        .try_into()
}

fn kind(value: i32) -> Result<ApplicationType, Error> {
    match v1::ApplicationType::try_from(value) {
        Ok(v1::ApplicationType::Confidential) => Ok(ApplicationType::Confidential),
        Ok(v1::ApplicationType::NonConfidential) => Ok(ApplicationType::NonConfidential),
        _ => Err(Error::Response("an application without a type")),
    }
}

fn secret(secret: String) -> Option<ClientSecret> {
    (!secret.is_empty()).then(|| ClientSecret(SecretString::from(secret)))
}

fn time(ts: Option<prost_types::Timestamp>) -> Result<Option<SystemTime>, Error> {
    ts.map(|ts| SystemTime::try_from(ts).map_err(|_| Error::Response("an invalid time")))
        .transpose()
}

fn required_time(ts: Option<prost_types::Timestamp>) -> Result<SystemTime, Error> {
    time(ts)?.ok_or(Error::Response("a missing time"))
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
