//! What a user authorized an application to do, as the use cases read it:
//! a user grant (never a usable code or token, only their digests and
//! state), what its refresh token was issued under, and the summary a user
//! sees of each application they authorized.

use std::collections::BTreeSet;

use time::OffsetDateTime;
use uuid::Uuid;

use super::names::{ClientId, OrganizationId};

/// A user grant as stored: never a usable code or token.
#[derive(Clone)]
pub struct UserGrant {
    pub id: Uuid,
    pub client_id: ClientId,
    pub subject: String,
    pub scopes: BTreeSet<String>,
    pub offline_access: bool,
    pub create_time: OffsetDateTime,
    pub expire_time: OffsetDateTime,
    pub revoke_time: Option<OffsetDateTime>,
    pub code_digest: String,
    pub code_expire_time: OffsetDateTime,
    pub code_redeem_time: Option<OffsetDateTime>,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub code_challenge: Option<String>,
    pub refresh_generation: Option<u32>,
    pub refresh_expire_time: Option<OffsetDateTime>,
    pub rotate_time: Option<OffsetDateTime>,
    /// The application's revision its scopes were decided at.
    pub revision: i64,
    /// What its current refresh token was issued under.
    pub refresh_issued: IssuedUnder,
}

/// The credential that authenticated a client when something was issued to
/// it, and the application revision it was decided at: a rotation that
/// ends the credential's tokens ends it too, whenever it is used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IssuedUnder {
    pub credential: Option<Uuid>,
    pub revision: i64,
}

impl std::fmt::Debug for UserGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserGrant")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("offline_access", &self.offline_access)
            .finish_non_exhaustive()
    }
}

/// One application a user authorized, summed over its live grants.
#[derive(Debug, Clone)]
pub struct UserAuthorizationRecord {
    pub organization: OrganizationId,
    pub client_id: ClientId,
    pub display_name: String,
    pub scopes: BTreeSet<String>,
    pub offline_access: bool,
    pub create_time: OffsetDateTime,
    pub update_time: OffsetDateTime,
}
