//! Client library for the extapps gRPC API.
//!
//! [`connect`] opens a channel and attaches the caller key to every call;
//! [`ErrorReport`] reads the `ErrorInfo` reason and field violations the server
//! puts in its errors.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use extapps_client::{connect, v1::ListResourcesRequest};
//!
//! let mut client = connect("http://127.0.0.1:50051", "extapps_key_...").await?;
//! let resources = client.list_resources(ListResourcesRequest {}).await?.into_inner();
//! for resource in resources.resources {
//!     println!("{}: {}", resource.id, resource.display_name);
//! }
//! # Ok(())
//! # }
//! ```

use tonic::{
    Request, Status,
    metadata::{AsciiMetadataValue, errors::InvalidMetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};
use tonic_types::StatusExt;

pub use extapps_proto::v1;
use v1::external_applications_client::ExternalApplicationsClient;

/// The generated client with the caller key attached.
pub type Client = ExternalApplicationsClient<InterceptedService<Channel, BearerAuth>>;

/// Adds `authorization: Bearer <key>` to every call. Its `Debug` hides the key.
#[derive(Clone)]
pub struct BearerAuth(AsciiMetadataValue);

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerAuth([REDACTED])")
    }
}

impl BearerAuth {
    pub fn new(key: &str) -> Result<Self, InvalidMetadataValue> {
        let mut value: AsciiMetadataValue = format!("Bearer {key}").parse()?;
        value.set_sensitive(true);
        Ok(Self(value))
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid server URL: {0}")]
    Url(#[source] tonic::transport::Error),
    #[error("cannot connect: {0}")]
    Transport(#[source] tonic::transport::Error),
    #[error("the caller key is not valid metadata text")]
    Key,
}

/// Connects to `url` (`http://host:port`) and authenticates with `key`.
pub async fn connect(url: &str, key: &str) -> Result<Client, ConnectError> {
    let channel = Endpoint::from_shared(url.to_owned())
        .map_err(ConnectError::Url)?
        .connect()
        .await
        .map_err(ConnectError::Transport)?;
    with_key(channel, key)
}

/// Wraps an existing channel with a caller key.
pub fn with_key(channel: Channel, key: &str) -> Result<Client, ConnectError> {
    let auth = BearerAuth::new(key).map_err(|_| ConnectError::Key)?;
    Ok(ExternalApplicationsClient::with_interceptor(channel, auth))
}

/// The details of an error status, as the server sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    pub code: tonic::Code,
    pub message: String,
    /// `google.rpc.ErrorInfo.reason`, e.g. `VALIDATION_FAILED`.
    pub reason: Option<String>,
    /// `(field, description)` of each `BadRequest` field violation.
    pub violations: Vec<(String, String)>,
}

impl From<&Status> for ErrorReport {
    fn from(status: &Status) -> Self {
        let details = status.get_error_details();
        Self {
            code: status.code(),
            message: status.message().to_owned(),
            reason: details.error_info().map(|info| info.reason.clone()),
            violations: details
                .bad_request()
                .map(|br| {
                    br.field_violations
                        .iter()
                        .map(|v| (v.field.clone(), v.description.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}
