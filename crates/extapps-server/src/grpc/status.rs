//! The one place a domain error becomes a gRPC status: the code, a message
//! safe to show, `google.rpc.ErrorInfo` always, and `BadRequest` field
//! violations for bad input (AIP-193).

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::Error;

/// `ErrorInfo.domain` of every error extapps returns.
pub const ERROR_DOMAIN: &str = "extapps";

pub fn to_status(error: Error) -> Status {
    let code = match &error {
        Error::InvalidArgument { .. } => Code::InvalidArgument,
        Error::NotFound { .. } => Code::NotFound,
        Error::AlreadyExists { .. } => Code::AlreadyExists,
        Error::Aborted { .. } => Code::Aborted,
        Error::FailedPrecondition { .. } => Code::FailedPrecondition,
        Error::PermissionDenied { .. } => Code::PermissionDenied,
        Error::Unauthenticated { .. } => Code::Unauthenticated,
        Error::Unimplemented { .. } => Code::Unimplemented,
        Error::Unavailable => Code::Unavailable,
        Error::Internal => Code::Internal,
    };
    let mut details = ErrorDetails::new();
    details.set_error_info(error.reason().as_str(), ERROR_DOMAIN, HashMap::new());
    if let Error::InvalidArgument { violations, .. } = &error {
        for v in violations {
            details.add_bad_request_violation(v.field.clone(), v.description.clone());
        }
    }
    Status::with_error_details(code, error.to_string(), details)
}
