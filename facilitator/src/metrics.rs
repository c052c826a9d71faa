//! Prometheus metrics of the facilitator (served as OpenMetrics text at `/metrics`): requests and outcomes
//! per endpoint, refusal reasons, latency histograms, and each settlement signer's gas balance.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub endpoint: &'static str,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignerLabels {
    pub network: String,
    pub signer: String,
}

/// The facilitator's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    pub outcomes: Family<OutcomeLabels, Counter>,
    pub latency: Family<EndpointLabels, Histogram>,
    /// Gas balance in gwei (fits a gauge; wei would not).
    pub signer_gas_gwei: Family<SignerLabels, Gauge>,
    /// The chain-state mirror's hits, misses (by reason), loads, blocks and resyncs.
    pub mirror_events: crate::chain::mirror::MirrorEvents,
    /// Verifies by where their chain facts came from: `mirror`, `chain`, `reused`.
    pub verify_sources: crate::verify::reuse::VerifySources,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("facilitator");
        let outcomes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by endpoint and outcome (valid, a reason, or error)",
            outcomes.clone(),
        );
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "request_duration_seconds",
            "Request latency by endpoint",
            latency.clone(),
        );
        let signer_gas_gwei = Family::<SignerLabels, Gauge>::default();
        registry.register(
            "signer_gas_balance_gwei",
            "Native gas balance of each settlement signer",
            signer_gas_gwei.clone(),
        );
        let mirror_events = crate::chain::mirror::MirrorEvents::default();
        registry.register(
            "mirror_events",
            "Chain-state mirror events: hit, miss_* by reason, load, block, resync",
            mirror_events.clone(),
        );
        let verify_sources = crate::verify::reuse::VerifySources::default();
        registry.register(
            "verify_source",
            "Verifies by where their chain facts came from: mirror, chain, reused (a settle after its verify)",
            verify_sources.clone(),
        );
        Metrics {
            registry,
            outcomes,
            latency,
            signer_gas_gwei,
            mirror_events,
            verify_sources,
        }
    }
}

impl Metrics {
    pub fn record(&self, endpoint: &'static str, outcome: &str, seconds: f64) {
        self.outcomes
            .get_or_create(&OutcomeLabels {
                endpoint,
                outcome: outcome.to_owned(),
            })
            .inc();
        self.latency
            .get_or_create(&EndpointLabels { endpoint })
            .observe(seconds);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
