//! Flood protection: per-token rates of requests and of submissions (`governor`'s GCRA, keyed by
//! token id); per-client-address rates of requests without valid credentials and of failed
//! authentications (keyed by the peer's IPv4 address or IPv6 /64); and one server-wide rate of
//! failed authentications.
//!
//! Memory is bounded: each keyed table holds one small cell per key that used it recently, and
//! is swept of idle keys (cells back to full) at most once a second once it grows past
//! [`SWEEP_ABOVE`]. Tokens are made by admins, so their tables stay small; addresses are not,
//! so the address tables take at most [`MAX_ADDRESSES`] keys: past that (a flood from more
//! addresses than that within one refill period), addresses share one overflow cell until a
//! sweep makes room. An
//! address over its failure rate is blocked (every request with credentials from it is refused
//! before any lookup, so a correct guess is never told apart while blocked) in a table of the
//! same bound.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Keyed tables with more keys than this drop the ones whose cells are back to full (at most
/// once per [`SWEEP_EVERY`]).
const SWEEP_ABOVE: usize = 10_000;
/// How often a large keyed table may be swept.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// The most client addresses an address table holds; past it, new addresses share one cell.
pub const MAX_ADDRESSES: usize = 100_000;

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
    /// Requests per minute from one client address without valid credentials: the public,
    /// sign-in and unsecured event routes, and requests refused 401 for lack of credentials.
    pub anonymous_per_minute: u32,
    pub anonymous_burst: u32,
    /// Failed authentications per minute from one client address (wrong, expired or revoked
    /// tokens and sessions, a wrong event secret, malformed credentials).
    pub address_failures_per_minute: u32,
    pub address_failure_burst: u32,
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
            anonymous_per_minute: 600,
            anonymous_burst: 120,
            address_failures_per_minute: 60,
            address_failure_burst: 20,
        }
    }
}

/// The limiters of one server.
pub struct RateLimits {
    config: RateLimitConfig,
    requests: Keyed<String>,
    submissions: Keyed<String>,
    failures: DefaultDirectRateLimiter,
    anonymous: Keyed<IpAddr>,
    address_failures: Keyed<IpAddr>,
    /// Addresses over their failure rate, until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

/// A keyed limiter that sweeps itself (see the module's documentation).
struct Keyed<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    /// Milliseconds since `born` of the last sweep.
    last_sweep_ms: AtomicU64,
    born: Instant,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(quota: Quota) -> Keyed<K> {
        Keyed {
            limiter: RateLimiter::keyed(quota),
            last_sweep_ms: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    /// Drops idle keys when the table is large, at most once per [`SWEEP_EVERY`] (a sweep
    /// walks the whole table, so not on every request).
    fn sweep_if_large(&self) {
        if self.limiter.len() <= SWEEP_ABOVE {
            return;
        }
        let now = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        let every = u64::try_from(SWEEP_EVERY.as_millis()).unwrap_or(1000);
        if now.saturating_sub(last) < every {
            return;
        }
        if self
            .last_sweep_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }

    fn check(&self, key: &K) -> Result<(), Duration> {
        self.sweep_if_large();
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    fn len(&self) -> usize {
        self.limiter.len()
    }
}

/// The key of a client address: IPv4 addresses (also IPv4-mapped IPv6 ones) as they are, IPv6
/// addresses by their /64 prefix (one host usually holds a whole /64).
pub fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// The cell addresses share once the table is full.
const OVERFLOW: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

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
            requests: Keyed::new(quota(config.requests_per_minute, config.request_burst)),
            submissions: Keyed::new(quota(
                config.submissions_per_minute,
                config.submission_burst,
            )),
            failures: RateLimiter::direct(quota(config.failures_per_minute, config.failure_burst)),
            anonymous: Keyed::new(quota(config.anonymous_per_minute, config.anonymous_burst)),
            address_failures: Keyed::new(quota(
                config.address_failures_per_minute,
                config.address_failure_burst,
            )),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// One request of `token_id`; Err: how long until it may send the next.
    pub fn check_request(&self, token_id: &str) -> Result<(), Duration> {
        self.requests.check(&token_id.to_string())
    }

    /// One submission of `token_id`.
    pub fn check_submission(&self, token_id: &str) -> Result<(), Duration> {
        self.submissions.check(&token_id.to_string())
    }

    /// One request without valid credentials from `address`.
    pub fn check_anonymous(&self, address: IpAddr) -> Result<(), Duration> {
        self.anonymous.check(&bounded_key(&self.anonymous, address))
    }

    /// One failed authentication from `address`; over the rate, the address is blocked (see
    /// [`RateLimits::blocked`]) until the wait returned has passed.
    pub fn check_address_failure(&self, address: IpAddr) -> Result<(), Duration> {
        self.address_failures
            .check(&bounded_key(&self.address_failures, address))
    }

    /// Blocks `address` for `wait` (its failure rate is spent).
    pub fn block(&self, address: IpAddr, wait: Duration) {
        let key = address_key(address);
        let now = Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        if blocked.len() >= MAX_ADDRESSES && !blocked.contains_key(&key) {
            blocked.retain(|_, until| *until > now);
            if blocked.len() >= MAX_ADDRESSES {
                // Over the bound: the address's failures are still refused one by one.
                return;
            }
        }
        blocked.insert(key, now + wait);
    }

    /// How long `address` is still blocked for, if it is.
    pub fn blocked(&self, address: IpAddr) -> Option<Duration> {
        let key = address_key(address);
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        let until = *blocked.get(&key)?;
        let now = Instant::now();
        if until <= now {
            blocked.remove(&key);
            return None;
        }
        Some(until - now)
    }

    /// Keys held by the address tables (anonymous, failures, blocked): for tests and metrics.
    pub fn address_keys(&self) -> (usize, usize, usize) {
        let blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner()).len();
        (self.anonymous.len(), self.address_failures.len(), blocked)
    }

    /// One failed authentication (any client).
    pub fn check_failure(&self) -> Result<(), Duration> {
        self.failures
            .check()
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// `address`'s key in `table`, or the shared overflow key when the table is full (after a
/// sweep) and `address` has no cell of its own.
fn bounded_key(table: &Keyed<IpAddr>, address: IpAddr) -> IpAddr {
    let key = address_key(address);
    if table.len() < MAX_ADDRESSES {
        return key;
    }
    table.sweep_if_large();
    if table.len() < MAX_ADDRESSES {
        return key;
    }
    OVERFLOW
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

    #[test]
    fn addresses_are_keyed_by_host_and_ipv6_prefix() {
        let key = |text: &str| address_key(text.parse().unwrap()).to_string();
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    }

    #[test]
    fn each_address_has_its_own_budgets_and_blocks_expire() {
        let limits = RateLimits::new(&RateLimitConfig {
            anonymous_per_minute: 60,
            anonymous_burst: 2,
            address_failures_per_minute: 60,
            address_failure_burst: 1,
            ..RateLimitConfig::default()
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limits.check_anonymous(a).is_ok());
        assert!(limits.check_anonymous(a).is_ok());
        assert!(limits.check_anonymous(a).is_err());
        assert!(limits.check_anonymous(b).is_ok());
        assert!(limits.check_address_failure(a).is_ok());
        let wait = limits.check_address_failure(a).unwrap_err();
        assert!(limits.blocked(a).is_none());
        limits.block(a, wait);
        assert!(limits.blocked(a).is_some_and(|w| w <= wait));
        assert!(limits.blocked(b).is_none());
        limits.block(b, Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert!(limits.blocked(b).is_none(), "a block ends");
        assert_eq!(limits.address_keys(), (2, 1, 1));
    }

    #[test]
    fn a_flood_from_many_addresses_keeps_the_tables_bounded() {
        let limits = RateLimits::new(&RateLimitConfig {
            anonymous_per_minute: 60_000,
            anonymous_burst: 1,
            ..RateLimitConfig::default()
        });
        // Each address spends its one cell; a millisecond later it is full again (idle).
        for n in 0..(SWEEP_ABOVE as u32 + 500) {
            let address = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            assert!(limits.check_anonymous(address).is_ok());
        }
        assert!(limits.address_keys().0 > SWEEP_ABOVE);
        std::thread::sleep(SWEEP_EVERY + Duration::from_millis(50));
        limits
            .check_anonymous("192.0.2.9".parse().unwrap())
            .unwrap();
        assert!(
            limits.address_keys().0 <= 2,
            "idle addresses are swept: {:?}",
            limits.address_keys()
        );
    }
}
