//! Rate limit on failed client authentications, per client ID: a client
//! that fails too often is refused for a while before any secret is checked,
//! which caps online guessing and the argon2id work an attacker can cause.

use std::{
    num::NonZeroU32,
    time::{Duration, Instant},
};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    state::keyed::DefaultKeyedStateStore,
};

/// Failed authentications a client may make in a burst; afterwards one more
/// every `60 / FAILURES_PER_MINUTE` seconds.
pub const FAILURES_PER_MINUTE: u32 = 10;

type Limiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

pub struct FailedAuthLimiter {
    limiter: Limiter,
    clock: DefaultClock,
    /// Clients refused until the given instant.
    blocked: moka::sync::Cache<String, Instant>,
}

impl std::fmt::Debug for FailedAuthLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailedAuthLimiter").finish_non_exhaustive()
    }
}

impl Default for FailedAuthLimiter {
    fn default() -> Self {
        let per_minute = NonZeroU32::new(FAILURES_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            clock: DefaultClock::default(),
            blocked: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
        }
    }
}

impl FailedAuthLimiter {
    /// How long `client_id` must still wait, if it is refused now.
    pub fn blocked_for(&self, client_id: &str) -> Option<Duration> {
        let until = self.blocked.get(client_id)?;
        until.checked_duration_since(Instant::now())
    }

    /// Counts a failed authentication of `client_id`.
    pub fn record_failure(&self, client_id: &str) {
        if let Err(not_until) = self.limiter.check_key(&client_id.to_owned()) {
            let wait = not_until.wait_time_from(self.clock.now());
            self.blocked
                .insert(client_id.to_owned(), Instant::now() + wait);
        }
        // Forget clients whose budget is full again, so random client IDs
        // cannot grow the limiter's memory without bound.
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_a_client_after_its_burst_and_only_that_client() {
        let limiter = FailedAuthLimiter::default();
        for _ in 0..FAILURES_PER_MINUTE {
            assert!(limiter.blocked_for("a").is_none());
            limiter.record_failure("a");
        }
        assert!(limiter.blocked_for("a").is_none(), "the burst is allowed");
        limiter.record_failure("a");
        let wait = limiter.blocked_for("a").expect("blocked after the burst");
        assert!(wait <= Duration::from_secs(6));
        assert!(limiter.blocked_for("b").is_none());
    }
}
