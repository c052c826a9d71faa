//! Rate limits (governor): per client IP across the proxy, per payer on paid requests, and per IP on routes
//! that set their own limit. A refusal carries how long to wait, for `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use alloy::primitives::Address;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::route_table::RouteTable;

fn limiter<K: std::hash::Hash + Eq + Clone>(per_second: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_second).map(|n| RateLimiter::keyed(Quota::per_second(n)))
}

fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: &Option<DefaultKeyedRateLimiter<K>>,
    key: &K,
) -> Result<(), Duration> {
    match limiter {
        Some(limiter) => limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
        None => Ok(()),
    }
}

/// The proxy-wide limits.
pub struct RateLimits {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_payer: Option<DefaultKeyedRateLimiter<Address>>,
}

impl RateLimits {
    pub fn new(per_ip_per_second: u32, per_payer_per_second: u32) -> Self {
        RateLimits {
            per_ip: limiter(per_ip_per_second),
            per_payer: limiter(per_payer_per_second),
        }
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        check(&self.per_ip, &ip)
    }

    pub fn check_payer(&self, payer: Address) -> Result<(), Duration> {
        check(&self.per_payer, &payer)
    }
}

/// One limiter per route that has `rate_limit_per_second`, built with the route table.
pub struct RouteLimits {
    by_index: Vec<Option<DefaultKeyedRateLimiter<IpAddr>>>,
}

impl RouteLimits {
    pub fn for_table(table: &RouteTable) -> Self {
        RouteLimits {
            by_index: table
                .routes()
                .iter()
                .map(|r| r.rate_limit_per_second.and_then(limiter))
                .collect(),
        }
    }

    pub fn check(&self, route_index: usize, ip: IpAddr) -> Result<(), Duration> {
        match self.by_index.get(route_index) {
            Some(limiter) => check(limiter, &ip),
            None => Ok(()),
        }
    }
}
