//! What keeps the use cases cheap and bounded, apart from what they decide:
//! budgets per source address ([`auth_budget`]), the bounded pool for
//! password-grade hashes ([`verify_pool`]), the memories of verified secrets
//! ([`verified_secrets`]) and keys ([`known_keys`]), and the small paces that spare the database
//! ([`paces`]). None of it changes an answer; each only decides how much
//! work a request may cost.

pub mod auth_budget;
pub mod known_keys;
pub mod paces;
pub mod verified_secrets;
pub mod verify_pool;

use std::sync::Arc;

use crate::domain::{Error, clock::Clock};

/// The machinery one service holds.
pub struct Machinery {
    /// Secrets verified recently, to skip argon2id on repeat requests.
    pub verified: verified_secrets::VerifiedSecrets,
    /// Keys that verified assertions recently, per client.
    pub known_keys: known_keys::KnownKeys,
    /// Budgets per source address: failures, and slow verifications.
    pub budget: auth_budget::AuthBudget,
    /// Where the verification of a password-grade hash runs.
    pub pool: verify_pool::VerifyPool,
    pub recent_callers: paces::RecentCallers,
    pub rereads: paces::Rereads,
    pub credential_use: paces::CredentialUseWrites,
}

impl Machinery {
    pub fn new(
        verified: verified_secrets::VerifiedSecrets,
        budget: auth_budget::BudgetSettings,
        pool: verify_pool::PoolSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        Ok(Self {
            known_keys: known_keys::KnownKeys::new(std::time::Duration::from_secs(24 * 3600)),
            verified,
            budget: auth_budget::AuthBudget::new(budget, clock),
            pool: verify_pool::VerifyPool::new(pool)?,
            recent_callers: paces::RecentCallers::new(),
            rereads: paces::Rereads::new(),
            credential_use: paces::CredentialUseWrites::default(),
        })
    }
}

impl std::fmt::Debug for Machinery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machinery")
            .field("budget", &self.budget)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}
