//! What ends tokens without listing them and without comparing clocks.
//!
//! Every access token carries the revision of its application that its
//! scopes and its client's authentication were decided at, and the
//! credential that authenticated the client. The application keeps:
//!
//! - [`ScopeRemovals`]: for each scope ever removed, the revision of the edit
//!   that removed it. A token decided at an earlier revision never has that
//!   scope again, even after the scope is granted again: an administrator
//!   who removes a scope to cut off a leaked token does not hand it back
//!   with a later edit. One entry per scope name, so the record is bounded
//!   by the catalog, however often scopes are edited.
//! - [`CredentialCutoffs`]: for each credential whose tokens were ended, the
//!   revision of that change. A token it authenticated against any earlier
//!   state is ended, including one whose request read the old state just
//!   before the change and was answered just after: revisions order the
//!   change and the read exactly, where two clocks on two sides of a write
//!   cannot.
//!
//! Revisions are the application's own counter (its etag), raised by every
//! edit in the same transaction as the edit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::catalog::ScopeSet;
use super::scope_grants::ScopeGrants;

/// For each scope ever removed from an application, in each set, the
/// revision that removed it last.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeRemovals {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    application: BTreeMap<String, i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    user: BTreeMap<String, i64>,
}

impl ScopeRemovals {
    fn of(&self, set: ScopeSet) -> &BTreeMap<String, i64> {
        match set {
            ScopeSet::Application => &self.application,
            ScopeSet::User => &self.user,
        }
    }

    /// Records the scopes `before` grants and `after` does not as removed
    /// by the edit that makes `revision`.
    pub fn record(&mut self, before: &ScopeGrants, after: &ScopeGrants, revision: i64) {
        for set in [ScopeSet::Application, ScopeSet::User] {
            let removed: Vec<String> = before
                .scopes(set)
                .filter(|scope| !after.grants(set, scope))
                .map(str::to_owned)
                .collect();
            let record = match set {
                ScopeSet::Application => &mut self.application,
                ScopeSet::User => &mut self.user,
            };
            for scope in removed {
                record.insert(scope, revision);
            }
        }
    }

    /// Whether a token (or user grant) decided at revision `decided_at`
    /// keeps `scope` of `set`, which the application grants now: only if the
    /// scope was not removed after that revision.
    pub fn kept(&self, set: ScopeSet, scope: &str, decided_at: i64) -> bool {
        self.of(set)
            .get(scope)
            .is_none_or(|&removed| removed <= decided_at)
    }
}

/// One credential's tokens ended: those decided before `revision`, kept
/// until `until` (µs since the epoch), when every one of them has expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Cutoff {
    revision: i64,
    until: i64,
}

/// The credentials (secrets now; keys and federated credentials share the
/// same space of UUIDs) whose tokens were ended, and from which
/// revision on their tokens count again. The nil UUID, which no credential
/// has (their IDs are random), stands for every credential at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CredentialCutoffs(BTreeMap<Uuid, Cutoff>);

impl CredentialCutoffs {
    /// Ends every token `credential` authenticated against a state older
    /// than `revision`. `until` must come after every such token's expiry.
    pub fn end(&mut self, credential: Uuid, revision: i64, until: i64) {
        self.0.insert(credential, Cutoff { revision, until });
    }

    /// Ends every token any credential authenticated against a state older
    /// than `revision`, including credentials no longer stored (a secret
    /// deleted or expired since): what "every token issued so far" means.
    pub fn end_all(&mut self, revision: i64, until: i64) {
        self.end(Uuid::nil(), revision, until);
    }

    /// Forgets cut-offs whose tokens have all expired at `now` (µs). A
    /// refresh token outlives that, but a cut-off is only ever pruned by a
    /// later rotation that ends tokens, and that rotation also revokes every
    /// grant of the application, so no refresh token it covered survives it.
    pub fn prune(&mut self, now: i64) {
        self.0.retain(|_, cutoff| cutoff.until > now);
    }

    /// Whether a token `credential` authenticated at revision `decided_at`
    /// was ended.
    pub fn ended(&self, credential: Uuid, decided_at: i64) -> bool {
        [credential, Uuid::nil()].iter().any(|key| {
            self.0
                .get(key)
                .is_some_and(|cutoff| decided_at < cutoff.revision)
        })
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scope_grants::orchestrator_grants as grants;

    #[test]
    fn ending_all_credentials_ends_those_no_longer_stored_too() {
        let (kept, gone) = (Uuid::new_v4(), Uuid::new_v4());
        let mut cutoffs = CredentialCutoffs::default();
        cutoffs.end(kept, 3, 1_000);
        assert!(cutoffs.ended(kept, 2) && !cutoffs.ended(gone, 2));
        cutoffs.end_all(5, 2_000);
        assert!(cutoffs.ended(gone, 4), "any credential decided before 5");
        assert!(!cutoffs.ended(gone, 5), "what came after counts");
        assert!(cutoffs.ended(kept, 4));
        cutoffs.prune(1_500);
        assert!(cutoffs.ended(kept, 4), "still ended by the later cut-off");
        cutoffs.prune(2_000);
        assert!(cutoffs.is_empty());
    }

    #[test]
    fn a_removed_scope_never_returns_to_what_was_decided_before_its_removal() {
        let mut removals = ScopeRemovals::default();
        let both = grants(&["OR.Jobs", "OR.Queues"], &["OR.Jobs"]);
        let fewer = grants(&["OR.Queues"], &["OR.Jobs"]);
        // Revision 5 removes the application scope OR.Jobs; revision 6
        // grants it again.
        removals.record(&both, &fewer, 5);
        removals.record(&fewer, &both, 6);
        let set = ScopeSet::Application;
        assert!(!removals.kept(set, "OR.Jobs", 4), "decided before removal");
        assert!(removals.kept(set, "OR.Jobs", 6), "decided after re-grant");
        assert!(removals.kept(set, "OR.Queues", 0), "never removed");
        // The user scope of the same name was never removed.
        assert!(removals.kept(ScopeSet::User, "OR.Jobs", 0));
        // Removed again at 9: what was decided at 6 loses it too.
        removals.record(&both, &fewer, 9);
        assert!(!removals.kept(set, "OR.Jobs", 6));
        assert!(removals.kept(set, "OR.Jobs", 9));
        // The record survives its JSON form.
        let json = serde_json::to_string(&removals).unwrap();
        assert_eq!(
            serde_json::from_str::<ScopeRemovals>(&json).unwrap(),
            removals
        );
        assert_eq!(
            serde_json::from_str::<ScopeRemovals>("{}").unwrap(),
            ScopeRemovals::default()
        );
    }

    #[test]
    fn a_cutoff_ends_what_was_decided_before_it_until_it_is_pruned() {
        let mut cutoffs = CredentialCutoffs::default();
        let (old, other) = (Uuid::new_v4(), Uuid::new_v4());
        cutoffs.end(old, 8, 1_000);
        assert!(cutoffs.ended(old, 7), "read the state before the change");
        assert!(!cutoffs.ended(old, 8), "authenticated after it (a grace)");
        assert!(!cutoffs.ended(other, 0));
        let json = serde_json::to_string(&cutoffs).unwrap();
        assert_eq!(
            serde_json::from_str::<CredentialCutoffs>(&json).unwrap(),
            cutoffs
        );
        cutoffs.prune(999);
        assert_eq!(cutoffs.len(), 1);
        cutoffs.prune(1_000);
        assert!(cutoffs.is_empty());
    }
}
