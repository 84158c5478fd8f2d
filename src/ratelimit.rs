//! Per-node rate limits with governor (GCRA). They blunt floods cheaply in memory; limits that must hold
//! across nodes and restarts (the 5 tries on an email code) are counted in the database instead.
//!
//! The clock is the operating system's monotonic clock, named here rather than left to governor's
//! default: that default reads the CPU's time-stamp counter (quanta), which is not kept in step between
//! cores on every virtual machine, so a request moved to another core could see time jump forwards
//! (a limit that lets everything through) or backwards (one that refuses the first try). The likely
//! cause of a CI run where three code requests from one address within a second all passed a
//! one-per-20-minutes limit; see governor#299 and quanta#111.

use std::{hash::Hash, net::IpAddr, num::NonZeroU32, time::Duration};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, MonotonicClock},
    state::keyed::DefaultKeyedStateStore,
};

use crate::config::RateLimits;

/// A keyed limiter on the monotonic clock (see the module comment for why not governor's default).
pub type KeyedLimiter<K> = RateLimiter<K, DefaultKeyedStateStore<K>, MonotonicClock>;

fn keyed<K: Hash + Eq + Clone>(quota: Quota) -> KeyedLimiter<K> {
    RateLimiter::dashmap_with_clock(quota, MonotonicClock)
}

pub struct Limiters {
    pub code_send_per_email: KeyedLimiter<String>,
    pub code_send_per_ip: KeyedLimiter<IpAddr>,
    pub code_check_per_ip: KeyedLimiter<IpAddr>,
    pub token_per_client: KeyedLimiter<String>,
    pub token_failures_per_ip: KeyedLimiter<IpAddr>,
    pub token_failures_per_client: KeyedLimiter<String>,
    pub registration_per_ip: KeyedLimiter<IpAddr>,
    pub authorization_requests_per_ip: KeyedLimiter<IpAddr>,
    pub passkey_ceremonies_per_ip: KeyedLimiter<IpAddr>,
    pub metadata_fetch_per_ip: KeyedLimiter<IpAddr>,
    pub sso_per_ip: KeyedLimiter<IpAddr>,
    /// Keyed by the SCIM directory token's id.
    pub scim_per_token: KeyedLimiter<String>,
}

/// The caller must wait this long.
#[derive(Debug, Clone, Copy)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    pub fn seconds(&self) -> u64 {
        self.0.as_secs().max(1)
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl Limiters {
    pub fn new(limits: &RateLimits) -> Self {
        let per_hour =
            |n: u32| Quota::per_hour(nonzero(n)).allow_burst(nonzero(n.div_ceil(3).max(1)));
        Self {
            code_send_per_email: keyed(per_hour(limits.code_send_per_email_per_hour)),
            code_send_per_ip: keyed(per_hour(limits.code_send_per_ip_per_hour)),
            code_check_per_ip: keyed(Quota::per_minute(nonzero(
                limits.code_check_per_ip_per_minute,
            ))),
            registration_per_ip: keyed(per_hour(limits.registration_per_ip_per_hour)),
            authorization_requests_per_ip: keyed(Quota::per_minute(nonzero(limits.authorization_requests_per_ip_per_minute))),
            passkey_ceremonies_per_ip: keyed(Quota::per_minute(nonzero(limits.passkey_ceremonies_per_ip_per_minute))),
            metadata_fetch_per_ip: keyed(Quota::per_minute(nonzero(
                limits.client_metadata_fetch_per_ip_per_minute,
            ))),
            token_failures_per_ip: keyed(Quota::per_minute(nonzero(limits.token_failures_per_ip_per_minute))),
            sso_per_ip: keyed(Quota::per_minute(nonzero(limits.sso_per_ip_per_minute))),
            scim_per_token: keyed(
                Quota::per_second(nonzero(limits.scim_per_token_per_second))
                    .allow_burst(nonzero(limits.scim_per_token_per_second.saturating_mul(2))),
            ),
            token_failures_per_client: keyed(Quota::per_minute(nonzero(limits.token_failures_per_client_per_minute))),
            token_per_client: keyed(
                Quota::per_second(nonzero(limits.token_per_client_per_second)).allow_burst(
                    nonzero(limits.token_per_client_per_second.saturating_mul(2)),
                ),
            ),
        }
    }

    /// Forgets keys whose buckets are full again; called periodically so memory stays bounded.
    pub fn shrink(&self) {
        self.code_send_per_email.retain_recent();
        self.code_send_per_ip.retain_recent();
        self.code_check_per_ip.retain_recent();
        self.token_per_client.retain_recent();
        self.token_failures_per_ip.retain_recent();
        self.token_failures_per_client.retain_recent();
        self.registration_per_ip.retain_recent();
        self.authorization_requests_per_ip.retain_recent();
        self.passkey_ceremonies_per_ip.retain_recent();
        self.metadata_fetch_per_ip.retain_recent();
        self.sso_per_ip.retain_recent();
        self.scim_per_token.retain_recent();
    }
}

pub fn check<K: Hash + Eq + Clone>(
    limiter: &KeyedLimiter<K>,
    key: &K,
) -> Result<(), RetryAfter> {
    limiter
        .check_key(key)
        .map_err(|not_until| RetryAfter(not_until.wait_time_from(MonotonicClock.now())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An hourly quota lets a third of it through at once, then one more per `1/n` hour; the wait it
    /// names is measured on the same clock the limiter counts with.
    #[test]
    fn an_hourly_limit_allows_its_burst_then_names_the_wait() {
        let limits = RateLimits { code_send_per_ip_per_hour: 3, registration_per_ip_per_hour: 9, ..RateLimits::default() };
        let limiters = Limiters::new(&limits);
        let ip: IpAddr = "198.51.100.7".parse().expect("ip");
        assert!(check(&limiters.code_send_per_ip, &ip).is_ok());
        let retry = check(&limiters.code_send_per_ip, &ip).expect_err("the burst of one is spent");
        assert!((1190..=1200).contains(&retry.seconds()), "one per 20 minutes: {}", retry.seconds());
        assert!(check(&limiters.code_send_per_ip, &"198.51.100.8".parse().expect("ip")).is_ok(), "per address");

        let burst: Vec<bool> = (0..4).map(|_| check(&limiters.registration_per_ip, &ip).is_ok()).collect();
        assert_eq!(burst, [true, true, true, false]);
    }
}
