//! Everything token issuance and introspection need to know about an
//! application, as one value a replica can keep in memory: its type,
//! grants, redirect URLs, live secret hashes and what ended its tokens; and
//! the rules that read it (which scopes a token or user grant still holds,
//! whether its credential ended it).

use std::collections::BTreeSet;
use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

use super::application_type::ApplicationType;
use super::catalog::ScopeSet;
use super::client_key::VerifyingKey;
use super::clock::from_micros;
use super::federation::FederatedCredential;
use super::names::OrganizationId;
use super::redirect_url::RedirectUrl;
use super::scope_grants::ScopeGrants;
use super::token::TokenClaims;
use super::token_rules::{CredentialCutoffs, ScopeRemovals};
use super::user_grant::{IssuedUnder, UserGrant};

/// A live secret's hash.
#[derive(Clone)]
pub struct StoredSecret {
    /// Also the credential its tokens record.
    pub id: Uuid,
    pub phc: String,
    pub expire_time: Option<OffsetDateTime>,
}

/// Without the hash: a hash of a secret is not for logs either.
impl std::fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSecret")
            .field("id", &self.id)
            .field("phc", &"[REDACTED]")
            .field("expire_time", &self.expire_time)
            .finish()
    }
}

/// Everything token issuance and introspection need about an application.
#[derive(Debug, Clone)]
pub struct ClientState {
    pub organization: OrganizationId,
    pub display_name: String,
    pub app_type: ApplicationType,
    pub redirect_urls: Vec<RedirectUrl>,
    pub grants: Arc<ScopeGrants>,
    /// Tokens issued before this instant are revoked: read only for tokens
    /// that do not name their credential (issued before tokens did).
    pub tokens_not_before: Option<OffsetDateTime>,
    /// Changes with every edit of the application.
    pub revision: i64,
    /// The revision each removed scope was removed at.
    pub scope_removals: ScopeRemovals,
    /// Credentials whose earlier tokens were ended.
    pub credential_cutoffs: CredentialCutoffs,
    /// The secrets live when the state was read; some may have ended since
    /// (a grace period, an expiry): use [`ClientState::live_secrets`].
    pub secrets: Vec<StoredSecret>,
    /// The public keys live when the state was read; some may have expired
    /// since: use [`ClientState::live_keys`].
    pub keys: Vec<VerifyingKey>,
    /// The outside providers' tokens it accepts.
    pub federated: Vec<FederatedCredential>,
}

impl ClientState {
    /// The secrets that still work at `now`.
    pub fn live_secrets(&self, now: OffsetDateTime) -> impl Iterator<Item = &StoredSecret> {
        self.secrets
            .iter()
            .filter(move |s| s.expire_time.is_none_or(|end| end > now))
    }

    /// The keys that still work at `now`.
    pub fn live_keys(&self, now: OffsetDateTime) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.iter().filter(move |k| k.is_live(now))
    }

    /// Whether a token or user grant decided at revision `decided_at` still
    /// holds `scope` of `set`: granted to the application now, and not
    /// removed since (a scope removed and granted again does not come back
    /// to what was decided before its removal).
    pub fn holds(&self, set: ScopeSet, scope: &str, decided_at: i64) -> bool {
        self.grants.grants(set, scope) && self.scope_removals.kept(set, scope, decided_at)
    }

    /// The user scopes among `scopes` still granted to the application.
    pub fn still_granted(&self, scopes: &BTreeSet<String>) -> BTreeSet<String> {
        scopes
            .iter()
            .filter(|s| self.grants.grants(ScopeSet::User, s))
            .cloned()
            .collect()
    }

    /// The scopes of a user grant that still hold.
    pub fn user_grant_scopes(&self, grant: &UserGrant) -> BTreeSet<String> {
        grant
            .scopes
            .iter()
            .filter(|s| self.holds(ScopeSet::User, s, grant.revision))
            .cloned()
            .collect()
    }

    /// Whether the end of a token's credential ended the token: by the
    /// application revision it was decided at, for a token that names its
    /// credential; by the time of the last secret rotation that revoked
    /// tokens, for one issued before tokens named it.
    pub fn ended_with_credential(&self, claims: &TokenClaims) -> bool {
        match claims.credential {
            Some(credential) => self.credential_cutoffs.ended(credential, claims.revision),
            None => self
                .tokens_not_before
                .is_some_and(|t| from_micros(claims.issued_at) < t),
        }
    }

    /// Whether what was issued under `issued` (a refresh token) ended with
    /// its credential. Nothing issued to a client without a credential (a
    /// non-confidential one) ends this way.
    pub fn issue_ended(&self, issued: IssuedUnder) -> bool {
        issued
            .credential
            .is_some_and(|credential| self.credential_cutoffs.ended(credential, issued.revision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::names::ClientId;
    use crate::domain::scope_grants::orchestrator_grants as grants;

    fn state(grants: ScopeGrants, revision: i64) -> ClientState {
        ClientState {
            organization: OrganizationId::parse("acme").unwrap(),
            display_name: "App".into(),
            app_type: ApplicationType::Confidential,
            redirect_urls: Vec::new(),
            grants: Arc::new(grants),
            tokens_not_before: None,
            revision,
            scope_removals: ScopeRemovals::default(),
            credential_cutoffs: CredentialCutoffs::default(),
            secrets: Vec::new(),
            keys: Vec::new(),
            federated: Vec::new(),
        }
    }

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).unwrap()
    }

    fn scopes(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn grant(scopes_consented: &[&str], revision: i64) -> UserGrant {
        UserGrant {
            id: Uuid::new_v4(),
            client_id: ClientId::generate(),
            subject: "user-1".into(),
            scopes: scopes(scopes_consented),
            offline_access: false,
            create_time: at(0),
            expire_time: at(3600),
            revoke_time: None,
            code_digest: String::new(),
            code_expire_time: at(60),
            code_redeem_time: None,
            redirect_uri: "https://app.example/cb".into(),
            redirect_uri_given: false,
            code_challenge: None,
            refresh_generation: None,
            refresh_expire_time: None,
            rotate_time: None,
            revision,
            refresh_issued: IssuedUnder::default(),
        }
    }

    fn claims(credential: Option<Uuid>, revision: i64, issued_at: OffsetDateTime) -> TokenClaims {
        TokenClaims {
            id: Uuid::new_v4(),
            client_id: ClientId::generate(),
            subject: None,
            grant: None,
            credential,
            revision,
            scopes: vec!["OR.Jobs".into()],
            issued_at: crate::domain::clock::to_micros(issued_at),
            expires_at: crate::domain::clock::to_micros(issued_at + time::Duration::HOUR),
        }
    }

    #[test]
    fn only_unexpired_secrets_are_live() {
        let mut state = state(grants(&["OR.Jobs"], &[]), 1);
        let secret = |expire_time| StoredSecret {
            id: Uuid::new_v4(),
            phc: "$argon2id$...".into(),
            expire_time,
        };
        state.secrets = vec![secret(None), secret(Some(at(10))), secret(Some(at(5)))];
        let live = |now| state.live_secrets(now).count();
        assert_eq!(live(at(0)), 3);
        assert_eq!(live(at(5)), 2, "a secret ends at its expiry, not after");
        assert_eq!(live(at(10)), 1);
    }

    #[test]
    fn a_user_grant_keeps_the_scopes_still_granted_and_never_removed_since() {
        let before = grants(&[], &["OR.Jobs", "OR.Queues"]);
        let fewer = grants(&[], &["OR.Queues"]);
        let mut state = state(fewer.clone(), 5);
        state.scope_removals.record(&before, &fewer, 5);
        let consented = grant(&["OR.Jobs", "OR.Queues"], 4);
        assert_eq!(state.user_grant_scopes(&consented), scopes(&["OR.Queues"]));
        assert_eq!(
            state.still_granted(&consented.scopes),
            scopes(&["OR.Queues"])
        );
        // Granted again at revision 6: a grant decided at 4 does not get it
        // back; one decided after the re-grant has it.
        state.grants = Arc::new(before.clone());
        state.scope_removals.record(&fewer, &before, 6);
        state.revision = 6;
        assert_eq!(state.user_grant_scopes(&consented), scopes(&["OR.Queues"]));
        assert_eq!(
            state.still_granted(&consented.scopes),
            scopes(&["OR.Jobs", "OR.Queues"]),
            "granted, though not to this grant"
        );
        let later = grant(&["OR.Jobs", "OR.Queues"], 6);
        assert_eq!(
            state.user_grant_scopes(&later),
            scopes(&["OR.Jobs", "OR.Queues"])
        );
        // An application scope of the same name is another scope.
        assert!(!state.holds(ScopeSet::Application, "OR.Jobs", 6));
    }

    #[test]
    fn a_token_ends_with_its_credential_by_revision_or_for_old_tokens_by_time() {
        let mut state = state(grants(&["OR.Jobs"], &[]), 8);
        let (rotated, other) = (Uuid::new_v4(), Uuid::new_v4());
        state.credential_cutoffs.end(rotated, 8, i64::MAX);
        assert!(state.ended_with_credential(&claims(Some(rotated), 7, at(100))));
        assert!(!state.ended_with_credential(&claims(Some(rotated), 8, at(0))));
        assert!(!state.ended_with_credential(&claims(Some(other), 0, at(0))));
        // Tokens from before tokens named their credential: by time.
        assert!(!state.ended_with_credential(&claims(None, 0, at(0))));
        state.tokens_not_before = Some(at(50));
        assert!(state.ended_with_credential(&claims(None, 0, at(49))));
        assert!(!state.ended_with_credential(&claims(None, 0, at(50))));
        // A refresh token's issue ends the same way; a public client's never.
        let issued = |credential, revision| IssuedUnder {
            credential,
            revision,
        };
        assert!(state.issue_ended(issued(Some(rotated), 7)));
        assert!(!state.issue_ended(issued(Some(rotated), 8)));
        assert!(!state.issue_ended(issued(None, 0)));
    }
}
