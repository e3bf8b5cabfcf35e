//! Sign-in: user authorization requests and what users authorized.

use std::time::SystemTime;

use super::{ApplicationName, ApplicationType, kind, required_time};
use crate::{Error, v1};

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
