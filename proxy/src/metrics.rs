//! Prometheus metrics of the proxy, served on the admin listener: requests by route and outcome (free, 402,
//! paid, refused, upstream error…), settled volume in atomic units per network and asset, latency
//! histograms per route, how many payments are paid but undelivered, route reloads by outcome, and deferred
//! settlement: what is served and unsettled now, and payments whose settlement failed after delivery.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub route: Arc<str>,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VolumeLabels {
    pub network: String,
    pub asset: String,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<OutcomeLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    /// Atomic units; a u64 counter holds 18 trillion USDC.
    pub settled_volume: Family<VolumeLabels, Counter>,
    /// Payments that settled and whose content was never delivered (the seller owes a refund or a resend).
    pub paid_undelivered: Gauge,
    /// SIGHUP reloads by outcome (`applied`, `refused`).
    pub reloads: Family<ReloadLabels, Counter>,
    /// Deferred payments delivered and then refused settlement for good (`_total`).
    pub settlement_failed_after_delivery: Counter,
    /// Deferred payments served (or being served) and not settled: how many, and their atomic units.
    pub deferred_unsettled_payments: Gauge,
    pub deferred_unsettled_atomic_units: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub outcome: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("proxy");
        let requests = Family::<OutcomeLabels, Counter>::default();
        registry.register("requests", "Requests by route and outcome", requests.clone());
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register("request_duration_seconds", "Request latency by route", latency.clone());
        let settled_volume = Family::<VolumeLabels, Counter>::default();
        registry.register(
            "settled_atomic_units",
            "Settled payment volume in the asset's atomic units",
            settled_volume.clone(),
        );
        let paid_undelivered = Gauge::default();
        registry.register(
            "payments_paid_undelivered",
            "Payments settled whose answer was never delivered (listed at /payments?state=paid_undelivered)",
            paid_undelivered.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register("reloads", "Route reloads on SIGHUP by outcome", reloads.clone());
        let settlement_failed_after_delivery = Counter::default();
        registry.register(
            "settlement_failed_after_delivery",
            "Deferred payments served and then refused settlement for good (listed at /payments?state=settlement_failed_after_delivery)",
            settlement_failed_after_delivery.clone(),
        );
        let deferred_unsettled_payments = Gauge::default();
        registry.register(
            "deferred_unsettled_payments",
            "Deferred payments served or being served and not yet settled",
            deferred_unsettled_payments.clone(),
        );
        let deferred_unsettled_atomic_units = Gauge::default();
        registry.register(
            "deferred_unsettled_atomic_units",
            "The sum of deferred payments not yet settled, in the asset's atomic units",
            deferred_unsettled_atomic_units.clone(),
        );
        Metrics {
            settlement_failed_after_delivery,
            deferred_unsettled_payments,
            deferred_unsettled_atomic_units,
            reloads,
            registry,
            requests,
            latency,
            settled_volume,
            paid_undelivered,
        }
    }
}

impl Metrics {
    pub fn record(&self, route: &Arc<str>, outcome: &'static str, seconds: f64) {
        self.requests
            .get_or_create(&OutcomeLabels {
                route: route.clone(),
                outcome,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route: route.clone() })
            .observe(seconds);
    }

    pub fn settled(&self, network: &str, asset: alloy::primitives::Address, amount: u64) {
        self.settled_volume
            .get_or_create(&VolumeLabels {
                network: network.to_owned(),
                asset: asset.to_checksum(None),
            })
            .inc_by(amount);
    }

    pub fn reloaded(&self, outcome: &'static str) {
        self.reloads.get_or_create(&ReloadLabels { outcome }).inc();
    }

    pub fn encode(&self) -> String {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
