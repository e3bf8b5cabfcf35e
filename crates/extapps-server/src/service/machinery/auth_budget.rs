//! Budgets per source address, never per client: a budget keyed by a client
//! ID would let anyone who knows the ID spend it and lock the client out.
//!
//! - Failed authentications: a source whose failures exceed their budget is
//!   refused before the database is even read, so a flood of made-up
//!   credentials from one address costs almost nothing.
//! - Slow verifications: a secret whose hash still has the password-grade
//!   parameters of earlier versions (~15 ms to verify, until its next
//!   successful use replaces it) is verified only after a unit of the
//!   source's budget is reserved, in one atomic step of the rate limiter,
//!   so parallel requests cannot all pass a check made before any of them
//!   is counted.
//!
//! Time comes from the injected clock.

use std::{net::IpAddr, num::NonZeroU32, sync::Arc, time::Duration};

use governor::{
    Quota, RateLimiter,
    clock::Clock as GovernorClock,
    middleware::{NoOpMiddleware, StateInformationMiddleware},
    nanos::Nanos,
    state::keyed::DefaultKeyedStateStore,
};

use crate::domain::clock::Clock;

/// How much a budget holds, and how fast it refills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetSettings {
    /// Verifications of password-grade hashes per minute per source
    /// address (also the burst).
    pub slow_verifications_per_source: NonZeroU32,
    /// Failed authentications per minute per source address (also the
    /// burst); beyond, the source is refused before any database read.
    pub failures_per_source: NonZeroU32,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        Self {
            slow_verifications_per_source: NonZeroU32::new(30).unwrap_or(NonZeroU32::MIN),
            failures_per_source: NonZeroU32::new(120).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// The service clock as the rate limiter reads it: nanoseconds since the
/// Unix epoch.
#[derive(Debug, Clone)]
struct InjectedClock(Arc<dyn Clock>);

impl GovernorClock for InjectedClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let nanos = self.0.now().unix_timestamp_nanos();
        Nanos::from(u64::try_from(nanos).unwrap_or_default())
    }
}

type Limiter<K> = RateLimiter<K, DefaultKeyedStateStore<K>, InjectedClock, NoOpMiddleware<Nanos>>;

/// Where a request comes from, as a budget key: an IPv4 address, or the /64
/// network of an IPv6 address (one host is usually given a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceKey(u128);

impl SourceKey {
    /// A source that could not be told (an unreadable forwarded address):
    /// one budget for all such requests, apart from every real address.
    pub const UNKNOWN: SourceKey = SourceKey(u128::MAX);
}

impl From<IpAddr> for SourceKey {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self(u128::from(v4.to_bits())),
            IpAddr::V6(v6) => Self((v6.to_bits() >> 64) << 64 | 1),
        }
    }
}

fn limiter<K: Clone + Eq + std::hash::Hash>(
    per_minute: NonZeroU32,
    clock: &InjectedClock,
) -> Limiter<K> {
    RateLimiter::new(
        Quota::per_minute(per_minute),
        DefaultKeyedStateStore::default(),
        clock.clone(),
    )
}

/// Most sources remembered as refused (each entry also expires on its own).
const MAX_REFUSED: u64 = 100_000;

pub struct AuthBudget {
    sources: Limiter<SourceKey>,
    /// Tells, with each failure counted, how many the budget still holds.
    failures: RateLimiter<
        SourceKey,
        DefaultKeyedStateStore<SourceKey>,
        InjectedClock,
        StateInformationMiddleware,
    >,
    /// Sources refused until the given instant (nanoseconds since the
    /// epoch, on the injected clock).
    refused: moka::sync::Cache<SourceKey, u64>,
    clock: InjectedClock,
}

impl std::fmt::Debug for AuthBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthBudget")
            .field("sources", &self.sources.len())
            .field("failures", &self.failures.len())
            .finish()
    }
}

impl AuthBudget {
    pub fn new(settings: BudgetSettings, clock: Arc<dyn Clock>) -> Self {
        let clock = InjectedClock(clock);
        Self {
            sources: limiter(settings.slow_verifications_per_source, &clock),
            failures: limiter(settings.failures_per_source, &clock)
                .with_middleware::<StateInformationMiddleware>(),
            refused: moka::sync::Cache::builder()
                .max_capacity(MAX_REFUSED)
                .time_to_live(Duration::from_secs(600))
                .build(),
            clock,
        }
    }

    /// How long `source` is still refused for its failures, if it is.
    pub fn refused_for(&self, source: Option<SourceKey>) -> Option<Duration> {
        let until = self.refused.get(&source?)?;
        let now = self.clock.now().as_u64();
        (until > now).then(|| Duration::from_nanos(until - now))
    }

    /// Counts a failed authentication from `source`. The failure that
    /// spends the budget's last unit refuses the source until a unit comes
    /// back, so past its budget a source gets exactly one full check per
    /// unit that comes back (a failure recorded only after the work would
    /// otherwise let a second one through each time).
    pub fn record_failure(&self, source: Option<SourceKey>) {
        let Some(source) = source else {
            return;
        };
        let until = match self.failures.check_key(&source) {
            Ok(left) if left.remaining_burst_capacity() > 0 => return,
            Ok(left) => self.clock.now() + Nanos::from(left.quota().replenish_interval()),
            // Checks already under way when the refusal ended.
            Err(not_until) => not_until.earliest_possible(),
        };
        self.refused.insert(source, until.as_u64());
    }

    /// Forgets every key whose budget is full again, so random sources
    /// cannot grow the limiters' memory without bound. A scan of every key:
    /// run it in the background, not on a request.
    pub fn prune(&self) {
        self.sources.retain_recent();
        self.failures.retain_recent();
    }

    /// Reserves one slow verification from `source`'s budget; `Err` holds
    /// how long to wait when it is spent.
    pub fn reserve_slow(&self, source: Option<SourceKey>) -> Result<(), Duration> {
        let Some(source) = source else {
            return Ok(());
        };
        self.sources
            .check_key(&source)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use time::OffsetDateTime;

    #[derive(Debug)]
    struct Manual(Mutex<OffsetDateTime>);
    impl Clock for Manual {
        fn now(&self) -> OffsetDateTime {
            *self.0.lock().unwrap()
        }
    }

    fn settings(per_source: u32) -> BudgetSettings {
        BudgetSettings {
            slow_verifications_per_source: NonZeroU32::new(per_source).unwrap(),
            failures_per_source: NonZeroU32::new(4).unwrap(),
        }
    }

    #[test]
    fn pruning_forgets_only_budgets_that_are_full_again() {
        let clock = Arc::new(Manual(Mutex::new(
            OffsetDateTime::UNIX_EPOCH + time::Duration::days(1),
        )));
        let budget = AuthBudget::new(settings(10), clock.clone());
        budget.reserve_slow(source("10.0.0.1")).unwrap();
        budget.record_failure(source("10.0.0.1"));
        budget.prune();
        assert_eq!((budget.sources.len(), budget.failures.len()), (1, 1));
        *clock.0.lock().unwrap() += time::Duration::minutes(1);
        budget.prune();
        assert_eq!((budget.sources.len(), budget.failures.len()), (0, 0));
    }

    #[test]
    fn a_source_that_fails_too_often_is_refused_for_a_while() {
        let clock = Arc::new(Manual(Mutex::new(
            OffsetDateTime::UNIX_EPOCH + time::Duration::days(1),
        )));
        let budget = AuthBudget::new(settings(10), clock.clone());
        let attacker = source("10.0.0.66");
        for _ in 0..4 {
            assert_eq!(budget.refused_for(attacker), None);
            budget.record_failure(attacker);
        }
        // The 4th failure spent the budget: refused until a unit is back.
        assert_eq!(budget.refused_for(attacker), Some(Duration::from_secs(15)));
        assert_eq!(budget.refused_for(source("10.0.0.67")), None);
        assert_eq!(budget.refused_for(None), None);
        *clock.0.lock().unwrap() += time::Duration::seconds(15);
        assert_eq!(budget.refused_for(attacker), None);
        // One failure, and refused again: one check per unit that comes back.
        budget.record_failure(attacker);
        assert_eq!(budget.refused_for(attacker), Some(Duration::from_secs(15)));
    }

    fn source(ip: &str) -> Option<SourceKey> {
        Some(SourceKey::from(ip.parse::<IpAddr>().unwrap()))
    }

    #[test]
    fn a_source_budget_refills_with_the_clock_and_covers_ipv6_networks() {
        let clock = Arc::new(Manual(Mutex::new(
            OffsetDateTime::UNIX_EPOCH + time::Duration::days(1),
        )));
        let budget = AuthBudget::new(settings(2), clock.clone());
        budget.reserve_slow(source("2001:db8::1")).unwrap();
        budget.reserve_slow(source("2001:db8::2")).unwrap();
        // The same /64: refused until a cell comes back (every 30 s).
        assert_eq!(
            budget.reserve_slow(source("2001:db8::ffff")),
            Err(Duration::from_secs(30))
        );
        budget.reserve_slow(source("2001:db8:0:1::1")).unwrap();
        // An IPv4-mapped address is the IPv4 address.
        budget.reserve_slow(source("192.0.2.1")).unwrap();
        budget.reserve_slow(source("::ffff:192.0.2.1")).unwrap();
        assert!(budget.reserve_slow(source("192.0.2.1")).is_err());
        // No address (an in-process caller): nothing to count.
        budget.reserve_slow(None).unwrap();
        *clock.0.lock().unwrap() += time::Duration::seconds(30);
        budget.reserve_slow(source("2001:db8::3")).unwrap();
    }

    #[test]
    fn parallel_reservations_never_exceed_the_budget() {
        let clock = Arc::new(Manual(Mutex::new(
            OffsetDateTime::UNIX_EPOCH + time::Duration::days(1),
        )));
        let budget = Arc::new(AuthBudget::new(settings(10), clock));
        let granted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..64)
                .map(|_| {
                    let budget = budget.clone();
                    s.spawn(move || usize::from(budget.reserve_slow(source("10.1.1.1")).is_ok()))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(granted, 10);
    }
}
