//! Bounds on client authentication for a test server
//! ([`TestServer::start_with`](crate::support::harness::TestServer::start_with)).

use std::num::NonZeroU32;

use extapps_server::service::{BudgetSettings, ClientAuthSettings, PoolSettings};

/// Bounds on client authentication: `failures` per minute per source, 30
/// slow verifications per minute per source.
pub(crate) fn budget(failures: u32, trusted_proxies: usize) -> ClientAuthSettings {
    ClientAuthSettings {
        pool: PoolSettings::default(),
        budget: BudgetSettings {
            slow_verifications_per_source: NonZeroU32::new(30).unwrap(),
            failures_per_source: NonZeroU32::new(failures).unwrap(),
        },
        trusted_proxies,
        ..ClientAuthSettings::default()
    }
}
