//! Token introspection: whether a token is active, and its claims.

use std::time::SystemTime;

use uuid::Uuid;

use crate::{Error, v1};

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
