//! Retries of calls that are safe to repeat.

use std::time::Duration;

use backon::ExponentialBuilder;

/// How often, and how patiently, a call that is safe to repeat is retried
/// when the server is `UNAVAILABLE` (down, restarting, unreachable).
///
/// Only idempotent calls are retried: reads, introspection, and the creating
/// calls that carry a request ID (registration, secret generation), which
/// the server answers once and replays. Updates and deletion are never
/// retried: a lost answer may hide a change that was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: usize,
    /// The first delay; each next one doubles, with jitter.
    pub first_delay: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 3,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// One attempt, never retried.
    pub fn never() -> Self {
        Self {
            retries: 0,
            ..Self::default()
        }
    }

    pub(crate) fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.first_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.retries)
            .with_jitter()
    }
}
