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
        Error::ResourceExhausted { .. } => Code::ResourceExhausted,
        Error::Unavailable => Code::Unavailable,
        Error::Internal => Code::Internal,
    };
    let mut details = ErrorDetails::new();
    details.set_error_info(error.reason().as_str(), ERROR_DOMAIN, HashMap::new());
    if let Error::InvalidArgument { violations, .. } = &error {
        for v in violations.iter().take(MAX_VIOLATIONS) {
            details.add_bad_request_violation(clipped(&v.field), clipped(&v.description));
        }
        if let Some(more) = violations
            .len()
            .checked_sub(MAX_VIOLATIONS)
            .filter(|n| *n > 0)
        {
            details.add_bad_request_violation(
                "request",
                format!(
                    "{more} more problems are not listed: fix these and send the request again"
                ),
            );
        }
    }
    Status::with_error_details(code, clipped(&error.to_string()), details)
}

/// Field violations sent at most, plus one that counts the rest: details
/// travel in a response header, and a stock gRPC client refuses headers
/// over 16 KiB.
pub const MAX_VIOLATIONS: usize = 20;

/// Longest field path, description or message sent, in bytes.
const MAX_TEXT: usize = 200;

/// `text`, cut to at most [`MAX_TEXT`] bytes on a character boundary (an
/// echo of a huge input must not make a huge header).
fn clipped(text: &str) -> String {
    if text.len() <= MAX_TEXT {
        return text.to_owned();
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FieldViolation;

    #[test]
    fn many_or_long_violations_fit_a_stock_client_header() {
        let violations: Vec<_> = (0..500)
            .map(|i| {
                FieldViolation::new(
                    format!("grants[{i}].user_scopes[0]"),
                    "\u{1F600}".repeat(5000),
                )
            })
            .collect();
        let status = to_status(Error::invalid(violations));
        let details = status.get_error_details();
        let shown = details.bad_request().unwrap().field_violations.clone();
        assert_eq!(shown.len(), MAX_VIOLATIONS + 1);
        assert!(
            shown[MAX_VIOLATIONS]
                .description
                .starts_with("480 more problems")
        );
        assert!(shown.iter().all(|v| v.description.len() <= MAX_TEXT + 3));
        assert!(status.message().contains("500 fields are invalid"));
        let header = status.into_http::<()>();
        let size: usize = header
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum();
        assert!(size < 8 * 1024, "{size} bytes of headers");
    }
}
