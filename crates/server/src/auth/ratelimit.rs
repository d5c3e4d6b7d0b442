//! Flood protection: per-token rates of requests and of submissions (`governor`'s GCRA, keyed by
//! token id), and one server-wide rate of failed authentications. Each limiter's memory is one
//! small cell per token that used it recently (tokens are made by admins, so bounded); the
//! keyed tables are swept of idle tokens once they grow past [`SWEEP_ABOVE`].

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Keyed tables with more tokens than this drop the ones whose cells are back to full.
const SWEEP_ABOVE: usize = 10_000;

/// The rates, as flags give them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Requests per minute, per token (all routes with a token).
    pub requests_per_minute: u32,
    /// Requests a token may send at once before the rate applies.
    pub request_burst: u32,
    /// Submissions (`POST /v1/jobs`) per minute, per token.
    pub submissions_per_minute: u32,
    pub submission_burst: u32,
    /// Failed authentications per minute, over all clients.
    pub failures_per_minute: u32,
    pub failure_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            requests_per_minute: 1200,
            request_burst: 200,
            submissions_per_minute: 120,
            submission_burst: 60,
            failures_per_minute: 600,
            failure_burst: 100,
        }
    }
}

/// The limiters of one server.
pub struct RateLimits {
    config: RateLimitConfig,
    requests: DefaultKeyedRateLimiter<String>,
    submissions: DefaultKeyedRateLimiter<String>,
    failures: DefaultDirectRateLimiter,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let one = NonZeroU32::MIN;
    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(one))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(one))
}

impl RateLimits {
    /// Limiters for `config` (a zero rate or burst counts as one).
    pub fn new(config: &RateLimitConfig) -> RateLimits {
        RateLimits {
            config: config.clone(),
            requests: RateLimiter::keyed(quota(config.requests_per_minute, config.request_burst)),
            submissions: RateLimiter::keyed(quota(
                config.submissions_per_minute,
                config.submission_burst,
            )),
            failures: RateLimiter::direct(quota(config.failures_per_minute, config.failure_burst)),
        }
    }

    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// One request of `token_id`; Err: how long until it may send the next.
    pub fn check_request(&self, token_id: &str) -> Result<(), Duration> {
        check_keyed(&self.requests, token_id)
    }

    /// One submission of `token_id`.
    pub fn check_submission(&self, token_id: &str) -> Result<(), Duration> {
        check_keyed(&self.submissions, token_id)
    }

    /// One failed authentication (any client).
    pub fn check_failure(&self) -> Result<(), Duration> {
        self.failures
            .check()
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

fn check_keyed(limiter: &DefaultKeyedRateLimiter<String>, key: &str) -> Result<(), Duration> {
    if limiter.len() > SWEEP_ABOVE {
        limiter.retain_recent();
    }
    limiter
        .check_key(&key.to_string())
        .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_per_token() {
        let limits = RateLimits::new(&RateLimitConfig {
            requests_per_minute: 60,
            request_burst: 3,
            ..RateLimitConfig::default()
        });
        for _ in 0..3 {
            assert!(limits.check_request("a").is_ok());
        }
        let wait = limits.check_request("a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(
            limits.check_request("b").is_ok(),
            "another token has its own budget"
        );
    }
}
