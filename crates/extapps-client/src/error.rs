//! What can go wrong, with what the server said about it.

use tonic::{Code, Status};
use tonic_types::StatusExt;

/// An error of the client: connecting, or a call the server refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid server URL {url:?}")]
    Url {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("invalid TLS settings")]
    Tls(#[source] tonic::transport::Error),
    #[error("cannot connect to the server")]
    Connect(#[source] tonic::transport::Error),
    #[error("the caller key is not valid header text")]
    Key,
    /// The server (or the transport) answered the call with an error status.
    #[error(transparent)]
    Status(#[from] ErrorReport),
    /// The server's answer lacks something the API promises.
    #[error("unexpected answer from the server: {0}")]
    Response(&'static str),
}

impl Error {
    /// The gRPC status code, for errors of a call.
    pub fn code(&self) -> Option<Code> {
        self.report().map(|report| report.code)
    }

    /// The server's error details, for errors of a call.
    pub fn report(&self) -> Option<&ErrorReport> {
        match self {
            Error::Status(report) => Some(report),
            _ => None,
        }
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Error::Status(ErrorReport::from(&status))
    }
}

/// The details of an error status, as the server sends them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ErrorReport {
    pub code: Code,
    pub message: String,
    /// `google.rpc.ErrorInfo.reason`, e.g. `VALIDATION_FAILED`.
    pub reason: Option<String>,
    /// `(field, description)` of each `BadRequest` field violation.
    pub violations: Vec<(String, String)>,
}

impl ErrorReport {
    /// The description of the violation of `field`, if the server named it.
    pub fn violation(&self, field: &str) -> Option<&str> {
        self.violations
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, description)| description.as_str())
    }
}

impl std::fmt::Display for ErrorReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)?;
        if let Some(reason) = &self.reason {
            write!(f, " ({reason})")?;
        }
        for (field, description) in &self.violations {
            write!(f, "; {field}: {description}")?;
        }
        Ok(())
    }
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
