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
    /// A requested scope is not granted to the client.
    InvalidScope(String),
    /// The client may not use this grant type.
    UnauthorizedClient(String),
    UnsupportedGrantType(String),
    /// Too many failed authentications of this client: retry later.
    TooManyAttempts {
        retry_after: Duration,
    },
    /// The storage is unreachable: retry later.
    Unavailable,
    ServerError,
}

impl OAuthError {
    /// The RFC 6749 `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::TooManyAttempts { .. } | OAuthError::Unavailable => {
                "temporarily_unavailable"
            }
            OAuthError::ServerError => "server_error",
        }
    }

    /// The `error_description`: never a secret, never internal detail.
    pub fn description(&self) -> String {
        match self {
            OAuthError::InvalidRequest(why)
            | OAuthError::InvalidScope(why)
            | OAuthError::UnauthorizedClient(why) => why.clone(),
            OAuthError::InvalidClient => "client authentication failed".into(),
            OAuthError::UnsupportedGrantType(grant) => {
                format!("grant type `{grant}` is not supported; use `client_credentials`")
            }
            OAuthError::TooManyAttempts { retry_after } => format!(
                "too many failed authentications for this client; retry in {} s",
                retry_after.as_secs().max(1)
            ),
            OAuthError::Unavailable => "the service is unavailable; retry later".into(),
            OAuthError::ServerError => "internal error".into(),
        }
    }
}

impl From<super::Error> for OAuthError {
    fn from(error: super::Error) -> Self {
        match error {
            super::Error::Unavailable => OAuthError::Unavailable,
            _ => OAuthError::ServerError,
        }
    }
}
