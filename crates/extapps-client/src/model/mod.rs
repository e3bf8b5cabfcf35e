//! The API's objects as Rust types: names parsed, times as `SystemTime`,
//! secrets wrapped so they never print, absent values as `Option`.

use std::time::SystemTime;

use crate::{Error, v1};

mod applications;
mod audit;
mod resources;
mod signin;
mod tokens;

pub use applications::{
    Application, ApplicationName, ApplicationType, ApplicationUpdate, ClientSecret,
    FederatedCredential, Grant, InvalidName, KeyInfo, NewApplication, NewKey, NewSecret,
    Registered, Rotated, SecretExpiry, SecretInfo,
};
pub use audit::AuditEvent;
pub use resources::Resource;
pub use signin::{AuthorizationRequest, RequestedScope, UserAuthorization};
pub use tokens::{ActiveToken, Introspection};

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

fn time(ts: Option<prost_types::Timestamp>) -> Result<Option<SystemTime>, Error> {
    ts.map(|ts| SystemTime::try_from(ts).map_err(|_| Error::Response("an invalid time")))
        .transpose()
}

fn required_time(ts: Option<prost_types::Timestamp>) -> Result<SystemTime, Error> {
    time(ts)?.ok_or(Error::Response("a missing time"))
}
