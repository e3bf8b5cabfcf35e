//! OAuth 2.0 errors (RFC 6749 section 5.2, RFC 7009 section 2.2.1), kept apart
//! from the gRPC errors: they have their own codes and their own HTTP shape.

use std::time::Duration;

/// Why a token request failed, as the client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthError {
    /// Missing, repeated or malformed parameter, or a wrong content type.
    InvalidRequest(String),
    /// Unknown client, wrong secret, or no client authentication.
    InvalidClient,
    /// A client assertion refused, and why: the client wrote it, so the
    /// reason tells it nothing it did not know.
    InvalidAssertion(super::client_assertion::Refusal),
    /// A requested scope is not granted to the client.
    InvalidScope(String),
    /// The client may not use this grant type.
    UnauthorizedClient(String),
    /// The code or refresh token is invalid, expired, used, revoked or
    /// another client's (RFC 6749 section 5.2).
    InvalidGrant(String),
    UnsupportedGrantType,
    /// `/oauth2/authorize` serves only `response_type=code`.
    UnsupportedResponseType,
    /// The server cannot serve this now (for example, user sign-in is not
    /// set up).
    TemporarilyUnavailable(String),
    /// The client's or the source's budget of secret verifications is
    /// spent: retry later.
    TooManyAttempts {
        retry_after: Duration,
    },
    /// Every secret verifier is busy: retry in a moment.
    Busy,
    /// The storage is unreachable: retry later.
    Unavailable,
    ServerError,
}

impl OAuthError {
    /// The RFC 6749 `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient | OAuthError::InvalidAssertion(_) => "invalid_client",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::UnsupportedResponseType => "unsupported_response_type",
            OAuthError::TooManyAttempts { .. }
            | OAuthError::Busy
            | OAuthError::Unavailable
            | OAuthError::TemporarilyUnavailable(_) => "temporarily_unavailable",
            OAuthError::ServerError => "server_error",
        }
    }

    /// Seconds to wait before retrying, for `Retry-After`: at least 1.
    pub fn retry_after_seconds(&self) -> u64 {
        match self {
            OAuthError::TooManyAttempts { retry_after } => {
                retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)
            }
            _ => 1,
        }
        .max(1)
    }

    /// The `error_description`: never a secret, never internal detail, and
    /// only the characters RFC 6749 section 5.2 allows (printable ASCII
    /// without `"` and `\`); anything else becomes `?`.
    pub fn description(&self) -> String {
        self.description_text()
            .chars()
            .map(|c| match c {
                ' '..='~' if c != '"' && c != '\\' => c,
                _ => '?',
            })
            .collect()
    }

    fn description_text(&self) -> String {
        match self {
            OAuthError::InvalidRequest(why)
            | OAuthError::InvalidScope(why)
            | OAuthError::UnauthorizedClient(why)
            | OAuthError::InvalidGrant(why)
            | OAuthError::TemporarilyUnavailable(why) => why.clone(),
            OAuthError::InvalidClient => "client authentication failed".into(),
            OAuthError::InvalidAssertion(refusal) => refusal.description().into(),
            OAuthError::UnsupportedGrantType => {
                "this grant type is not supported; use `client_credentials`, `authorization_code` or `refresh_token`".into()
            }
            OAuthError::UnsupportedResponseType => {
                "only `response_type=code` is supported".into()
            }
            OAuthError::TooManyAttempts { .. } => format!(
                "too many failed client authentications from this address; retry in {} s",
                self.retry_after_seconds()
            ),
            OAuthError::Busy => "the server is busy verifying secrets; retry in 1 s".into(),
            OAuthError::Unavailable => "the service is unavailable; retry later".into(),
            OAuthError::ServerError => "internal error".into(),
        }
    }
}

/// The one conversion from a domain error to the OAuth error a client is
/// told, so `?` in an OAuth flow keeps a client's mistake the client's: every
/// variant is decided here (no catch-all), and only an internal error
/// becomes `server_error`.
impl From<super::Error> for OAuthError {
    fn from(error: super::Error) -> Self {
        use super::Error;
        match error {
            Error::InvalidArgument { message, .. }
            | Error::NotFound { message, .. }
            | Error::AlreadyExists { message, .. }
            | Error::FailedPrecondition { message, .. } => OAuthError::InvalidRequest(message),
            Error::PermissionDenied { message, .. } => OAuthError::UnauthorizedClient(message),
            Error::Unauthenticated { .. } => OAuthError::InvalidClient,
            Error::ResourceExhausted { retry_after, .. } => {
                OAuthError::TooManyAttempts { retry_after }
            }
            // A write that lost a race: the same request may succeed again.
            Error::Aborted { message, .. } => OAuthError::TemporarilyUnavailable(message),
            Error::Unavailable => OAuthError::Unavailable,
            Error::Internal => OAuthError::ServerError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn descriptions_hold_only_the_characters_rfc_6749_allows(why in any::<String>()) {
            for error in [OAuthError::InvalidRequest(why.clone()), OAuthError::InvalidScope(why)] {
                let description = error.description();
                prop_assert!(description
                    .bytes()
                    .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)));
            }
        }
    }

    #[test]
    fn only_an_internal_error_becomes_server_error() {
        use crate::domain::{Error, Reason};
        let message = || "what went wrong".to_owned();
        let reason = Reason::ValidationFailed;
        let callers_doing = [
            Error::invalid_field("scope", "is not granted"),
            Error::application_not_found(),
            Error::AlreadyExists {
                reason,
                message: message(),
            },
            Error::Aborted {
                reason,
                message: message(),
            },
            Error::FailedPrecondition {
                reason,
                message: message(),
            },
            Error::PermissionDenied {
                reason,
                message: message(),
            },
            Error::Unauthenticated {
                reason,
                message: message(),
            },
            Error::ResourceExhausted {
                reason,
                message: message(),
                retry_after: Duration::from_secs(7),
            },
            Error::Unavailable,
        ];
        for error in callers_doing {
            let oauth = OAuthError::from(error.clone());
            assert_ne!(oauth, OAuthError::ServerError, "{error:?}");
        }
        assert_eq!(OAuthError::from(Error::Internal), OAuthError::ServerError);
        assert_eq!(
            OAuthError::from(Error::ResourceExhausted {
                reason,
                message: message(),
                retry_after: Duration::from_secs(7),
            })
            .retry_after_seconds(),
            7
        );
        assert_eq!(
            OAuthError::from(Error::invalid_field("scope", "is not granted")),
            OAuthError::InvalidRequest("invalid scope: is not granted".into())
        );
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let wait = |ms| OAuthError::TooManyAttempts {
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(wait(200).retry_after_seconds(), 1);
        assert_eq!(wait(5_001).retry_after_seconds(), 6);
        assert_eq!(wait(6_000).retry_after_seconds(), 6);
        assert_eq!(OAuthError::Busy.retry_after_seconds(), 1);
    }
}
