//! Rate limits (governor): per client IP across the proxy, per payer on paid requests, and per IP on routes
//! that set their own limit. A refusal carries how long to wait, for `Retry-After`. Every limiter keeps one
//! entry per key it has seen; [`spawn_pruner`] drops the entries that no longer limit anything (and gives the
//! memory back) on a timer, so a stream of new addresses cannot grow the proxy without bound.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::route_table::RouteTable;
use crate::service::ProxyState;

/// How often [`spawn_pruner`] runs.
pub const PRUNE_EVERY: Duration = Duration::from_secs(10);

type Keyed<K, C> = RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

fn limiter<K: std::hash::Hash + Eq + Clone, C: Clock + Clone>(per_second: u32, clock: &C) -> Option<Keyed<K, C>> {
    NonZeroU32::new(per_second).map(|n| RateLimiter::dashmap_with_clock(Quota::per_second(n), clock.clone()))
}

fn check<K: std::hash::Hash + Eq + Clone, C: Clock + Clone>(
    limiter: &Option<Keyed<K, C>>,
    key: &K,
) -> Result<(), Duration> {
    match limiter {
        Some(limiter) => limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now())),
        None => Ok(()),
    }
}

/// Drops the keys whose state equals a fresh one, then releases the spare capacity.
fn prune<K: std::hash::Hash + Eq + Clone, C: Clock + Clone>(limiter: &Option<Keyed<K, C>>) {
    if let Some(limiter) = limiter {
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }
}

fn len<K: std::hash::Hash + Eq + Clone, C: Clock + Clone>(limiter: &Option<Keyed<K, C>>) -> usize {
    limiter.as_ref().map_or(0, |l| l.len())
}

/// The proxy-wide limits.
pub struct RateLimits<C: Clock = DefaultClock> {
    per_ip: Option<Keyed<IpAddr, C>>,
    per_payer: Option<Keyed<Address, C>>,
}

impl RateLimits {
    pub fn new(per_ip_per_second: u32, per_payer_per_second: u32) -> Self {
        Self::with_clock(per_ip_per_second, per_payer_per_second, &DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimits<C> {
    /// On `clock` (tests use a fake one).
    pub fn with_clock(per_ip_per_second: u32, per_payer_per_second: u32, clock: &C) -> Self {
        RateLimits {
            per_ip: limiter(per_ip_per_second, clock),
            per_payer: limiter(per_payer_per_second, clock),
        }
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        check(&self.per_ip, &ip)
    }

    pub fn check_payer(&self, payer: Address) -> Result<(), Duration> {
        check(&self.per_payer, &payer)
    }

    /// Forgets the addresses and payers that are not being limited any more.
    pub fn prune(&self) {
        prune(&self.per_ip);
        prune(&self.per_payer);
    }

    /// Addresses and payers remembered now.
    pub fn len(&self) -> usize {
        len(&self.per_ip) + len(&self.per_payer)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One limiter per route that has `rate_limit_per_second`, built with the route table.
pub struct RouteLimits<C: Clock = DefaultClock> {
    by_index: Vec<Option<Keyed<IpAddr, C>>>,
}

impl RouteLimits {
    pub fn for_table(table: &RouteTable) -> Self {
        Self::for_table_with_clock(table, &DefaultClock::default())
    }
}

impl<C: Clock + Clone> RouteLimits<C> {
    pub fn for_table_with_clock(table: &RouteTable, clock: &C) -> Self {
        RouteLimits {
            by_index: table
                .routes()
                .iter()
                .map(|r| r.rate_limit_per_second.and_then(|n| limiter(n, clock)))
                .collect(),
        }
    }

    pub fn check(&self, route_index: usize, ip: IpAddr) -> Result<(), Duration> {
        match self.by_index.get(route_index) {
            Some(limiter) => check(limiter, &ip),
            None => Ok(()),
        }
    }

    pub fn prune(&self) {
        self.by_index.iter().for_each(prune);
    }

    pub fn len(&self) -> usize {
        self.by_index.iter().map(len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Prunes the proxy's limiters (proxy-wide and the routes' in force) every `every`, until aborted.
pub fn spawn_pruner(state: Arc<ProxyState>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is at once; nothing is there to prune yet.
        ticks.tick().await;
        loop {
            ticks.tick().await;
            state.limits.prune();
            state.routes().limits.prune();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn pruning_forgets_keys_that_no_longer_limit_anything() {
        let clock = FakeRelativeClock::default();
        let limits = RateLimits::with_clock(2, 1, &clock);
        for i in 0..100u8 {
            assert!(limits.check_ip(IpAddr::from([10, 0, 0, i])).is_ok());
        }
        assert!(limits.check_payer(Address::repeat_byte(1)).is_ok());
        assert_eq!(limits.len(), 101);
        // Still inside their window: pruning keeps them, and their limit holds.
        limits.prune();
        assert_eq!(limits.len(), 101);
        assert!(limits.check_payer(Address::repeat_byte(1)).is_err());
        clock.advance(Duration::from_secs(2));
        assert!(limits.check_ip(IpAddr::from([10, 0, 1, 0])).is_ok());
        limits.prune();
        assert_eq!(limits.len(), 1, "only the address seen just now is left");
        assert!(
            limits.check_payer(Address::repeat_byte(1)).is_ok(),
            "a forgotten key starts fresh"
        );
    }

    #[test]
    fn route_limiters_prune_too() {
        let config = crate::config::ProxyConfig::from_toml(
            "[facilitator]\nembedded = true\n[[route]]\npath = \"/a\"\nupstream = \"http://u\"\nfree = true\n\
             rate_limit_per_second = 1\n[[route]]\npath = \"/b\"\nupstream = \"http://u\"\nfree = true\n",
            |_| None,
        )
        .unwrap();
        let table = RouteTable::build(&config, &protocol::Networks::builtin()).unwrap();
        let clock = FakeRelativeClock::default();
        let limits = RouteLimits::for_table_with_clock(&table, &clock);
        for i in 0..10u8 {
            assert!(limits.check(0, IpAddr::from([192, 0, 2, i])).is_ok());
            assert!(limits.check(1, IpAddr::from([192, 0, 2, i])).is_ok());
        }
        assert!(limits.check(0, IpAddr::from([192, 0, 2, 0])).is_err());
        assert_eq!(limits.len(), 10);
        clock.advance(Duration::from_secs(2));
        limits.prune();
        assert_eq!(limits.len(), 0);
        assert!(limits.is_empty());
    }
}
