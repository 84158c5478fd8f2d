//! Per-node rate limits with governor (GCRA). They blunt floods cheaply in memory; limits that must hold
//! across nodes and restarts (the 5 tries on an email code) are counted in the database instead.

use std::{hash::Hash, net::IpAddr, num::NonZeroU32, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

use crate::config::RateLimits;

pub struct Limiters {
    pub code_send_per_email: DefaultKeyedRateLimiter<String>,
    pub code_send_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    pub code_check_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    pub token_per_client: DefaultKeyedRateLimiter<String>,
    pub token_failures_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    pub token_failures_per_client: DefaultKeyedRateLimiter<String>,
    pub registration_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    pub authorization_requests_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    pub passkey_ceremonies_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    pub metadata_fetch_per_ip: DefaultKeyedRateLimiter<IpAddr>,
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
            code_send_per_email: RateLimiter::keyed(per_hour(limits.code_send_per_email_per_hour)),
            code_send_per_ip: RateLimiter::keyed(per_hour(limits.code_send_per_ip_per_hour)),
            code_check_per_ip: RateLimiter::keyed(Quota::per_minute(nonzero(
                limits.code_check_per_ip_per_minute,
            ))),
            registration_per_ip: RateLimiter::keyed(per_hour(limits.registration_per_ip_per_hour)),
            authorization_requests_per_ip: RateLimiter::keyed(Quota::per_minute(nonzero(limits.authorization_requests_per_ip_per_minute))),
            passkey_ceremonies_per_ip: RateLimiter::keyed(Quota::per_minute(nonzero(limits.passkey_ceremonies_per_ip_per_minute))),
            metadata_fetch_per_ip: RateLimiter::keyed(Quota::per_minute(nonzero(
                limits.client_metadata_fetch_per_ip_per_minute,
            ))),
            token_failures_per_ip: RateLimiter::keyed(Quota::per_minute(nonzero(limits.token_failures_per_ip_per_minute))),
            token_failures_per_client: RateLimiter::keyed(Quota::per_minute(nonzero(limits.token_failures_per_client_per_minute))),
            token_per_client: RateLimiter::keyed(
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
    }
}

pub fn check<K: Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Result<(), RetryAfter> {
    limiter
        .check_key(key)
        .map_err(|not_until| RetryAfter(not_until.wait_time_from(DefaultClock::default().now())))
}
