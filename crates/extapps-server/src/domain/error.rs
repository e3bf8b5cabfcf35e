//! The one error type of the service. Variants are shaped like gRPC status
//! codes; each carries a stable reason and a message that is safe to show the
//! caller. Internal detail is logged where it happens and never stored here.

use std::fmt;

/// A stable, machine-readable cause, sent as `google.rpc.ErrorInfo.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    ValidationFailed,
    RequestIdReused,
    SavedResponseUnavailable,
    ApplicationNotFound,
    OrganizationNotFound,
    KeyNotFound,
    DisplayNameTaken,
    EtagMismatch,
    ApplicationNotConfidential,
    MissingCredentials,
    InvalidCredentials,
    RoleNotAllowed,
    StorageUnavailable,
    TooManyFailures,
    AuthorizationRequestNotFound,
    AuthorizationRequestExpired,
    AuthorizationRequestAnswered,
    UserAuthorizationNotFound,
    SecretNotFound,
    TooManySecrets,
    ApplicationKeyNotFound,
    TooManyKeys,
    KeyAlreadyRegistered,
    FederatedCredentialNotFound,
    TooManyFederatedCredentials,
    FederatedCredentialAlreadyExists,
    Internal,
}

impl Reason {
    /// The UPPER_SNAKE code clients match on. Never changes once released.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ValidationFailed => "VALIDATION_FAILED",
            Reason::RequestIdReused => "REQUEST_ID_REUSED",
            Reason::SavedResponseUnavailable => "SAVED_RESPONSE_UNAVAILABLE",
            Reason::ApplicationNotFound => "APPLICATION_NOT_FOUND",
            Reason::OrganizationNotFound => "ORGANIZATION_NOT_FOUND",
            Reason::KeyNotFound => "KEY_NOT_FOUND",
            Reason::DisplayNameTaken => "DISPLAY_NAME_TAKEN",
            Reason::EtagMismatch => "ETAG_MISMATCH",
            Reason::ApplicationNotConfidential => "APPLICATION_NOT_CONFIDENTIAL",
            Reason::MissingCredentials => "MISSING_CREDENTIALS",
            Reason::InvalidCredentials => "INVALID_CREDENTIALS",
            Reason::RoleNotAllowed => "ROLE_NOT_ALLOWED",
            Reason::StorageUnavailable => "STORAGE_UNAVAILABLE",
            Reason::TooManyFailures => "TOO_MANY_FAILURES",
            Reason::AuthorizationRequestNotFound => "AUTHORIZATION_REQUEST_NOT_FOUND",
            Reason::AuthorizationRequestExpired => "AUTHORIZATION_REQUEST_EXPIRED",
            Reason::AuthorizationRequestAnswered => "AUTHORIZATION_REQUEST_ANSWERED",
            Reason::UserAuthorizationNotFound => "USER_AUTHORIZATION_NOT_FOUND",
            Reason::SecretNotFound => "SECRET_NOT_FOUND",
            Reason::TooManySecrets => "TOO_MANY_SECRETS",
            Reason::ApplicationKeyNotFound => "APPLICATION_KEY_NOT_FOUND",
            Reason::TooManyKeys => "TOO_MANY_KEYS",
            Reason::KeyAlreadyRegistered => "KEY_ALREADY_REGISTERED",
            Reason::FederatedCredentialNotFound => "FEDERATED_CREDENTIAL_NOT_FOUND",
            Reason::TooManyFederatedCredentials => "TOO_MANY_FEDERATED_CREDENTIALS",
            Reason::FederatedCredentialAlreadyExists => "FEDERATED_CREDENTIAL_ALREADY_EXISTS",
            Reason::Internal => "INTERNAL",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one field of a request (AIP-193 `BadRequest.FieldViolation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field, as in the request: `grants[1].user_scopes[0]`.
    pub field: String,
    /// What is wrong, in words a person can act on.
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Why a call failed. `Display` is the caller-facing message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    InvalidArgument {
        reason: Reason,
        message: String,
        violations: Vec<FieldViolation>,
    },
    #[error("{message}")]
    NotFound { reason: Reason, message: String },
    #[error("{message}")]
    AlreadyExists { reason: Reason, message: String },
    #[error("{message}")]
    Aborted { reason: Reason, message: String },
    #[error("{message}")]
    FailedPrecondition { reason: Reason, message: String },
    #[error("{message}")]
    PermissionDenied { reason: Reason, message: String },
    #[error("{message}")]
    Unauthenticated { reason: Reason, message: String },
    /// The caller's address failed too often: retry after `retry_after`.
    #[error("{message}")]
    ResourceExhausted {
        reason: Reason,
        message: String,
        retry_after: std::time::Duration,
    },
    #[error("the storage is unavailable; retry later")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl Error {
    /// Bad input: one or more field violations.
    pub fn invalid(violations: Vec<FieldViolation>) -> Self {
        let message = match violations.as_slice() {
            [only] => format!("invalid {}: {}", only.field, only.description),
            _ => format!("{} fields are invalid", violations.len()),
        };
        Error::InvalidArgument {
            reason: Reason::ValidationFailed,
            message,
            violations,
        }
    }

    /// Bad input in exactly one field.
    pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::invalid(vec![FieldViolation::new(field, description)])
    }

    /// The application does not exist, or not for this caller.
    pub fn application_not_found() -> Self {
        Error::NotFound {
            reason: Reason::ApplicationNotFound,
            message: "application not found".into(),
        }
    }

    /// The organization is not visible to this caller.
    pub fn organization_not_found() -> Self {
        Error::NotFound {
            reason: Reason::OrganizationNotFound,
            message: "organization not found".into(),
        }
    }

    /// The etag sent is not the application's current one.
    pub fn etag_mismatch() -> Self {
        Error::Aborted {
            reason: Reason::EtagMismatch,
            message: "the application was changed since it was read (stale etag): read it again and retry".into(),
        }
    }

    /// The pending authorization request was accepted or rejected already.
    pub fn authorization_request_answered() -> Self {
        Error::FailedPrecondition {
            reason: Reason::AuthorizationRequestAnswered,
            message: "the authorization request was already answered".into(),
        }
    }

    /// A caller key lacks the role this call needs.
    pub fn role_not_allowed(role: &str, call: &str) -> Self {
        Error::PermissionDenied {
            reason: Reason::RoleNotAllowed,
            message: format!("a key with role `{role}` may not call {call}"),
        }
    }

    /// The stable reason of this error.
    pub fn reason(&self) -> Reason {
        match self {
            Error::InvalidArgument { reason, .. }
            | Error::NotFound { reason, .. }
            | Error::AlreadyExists { reason, .. }
            | Error::Aborted { reason, .. }
            | Error::FailedPrecondition { reason, .. }
            | Error::PermissionDenied { reason, .. }
            | Error::Unauthenticated { reason, .. }
            | Error::ResourceExhausted { reason, .. } => *reason,
            Error::Unavailable => Reason::StorageUnavailable,
            Error::Internal => Reason::Internal,
        }
    }
}

/// Collects field violations so a request is checked whole and every problem
/// is reported at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn push(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of a field that parsed; records the violation of one that
    /// did not.
    pub fn check<T>(&mut self, parsed: Result<T, FieldViolation>) -> Option<T> {
        parsed.map_err(|violation| self.0.push(violation)).ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The fields recorded so far, in order (for tests).
    #[cfg(test)]
    pub fn fields(&self) -> Vec<String> {
        self.0.iter().map(|v| v.field.clone()).collect()
    }

    /// `Ok(())` if nothing was recorded, else the `InvalidArgument` error.
    pub fn into_result(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid(self.0))
        }
    }
}
