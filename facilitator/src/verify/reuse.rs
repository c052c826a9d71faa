//! One verify per payment: every payload that passes verify is remembered (by its payload hash, with the
//! balance its verify saw) for `reuse_secs`, so the settle that follows a `/verify` checks only what may
//! have moved since — its time window (the request-only checks always run again) and the payer's other
//! payments now in the ledger against that balance — instead of reading the chain a second time. The ledger's
//! reservation stays the authority on the nonce; the chain's answer to the settlement on everything else.
//! Also counts where each verify's chain facts came from (`mirror`, `chain`, `reused`).

use std::time::Duration;

use alloy::primitives::{B256, U256};
use moka::sync::Cache;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: &'static str,
}

/// Verifies by where their chain facts came from, shared with `/metrics`.
pub type VerifySources = Family<SourceLabels, Counter>;

/// Payloads that passed verify recently.
#[derive(Clone)]
pub struct Verdicts {
    passed: Option<Cache<B256, U256>>,
    sources: VerifySources,
}

impl Verdicts {
    /// Remembers verdicts for `secs` seconds (0: none are reused).
    pub fn new(secs: u64) -> Self {
        let passed = (secs > 0).then(|| {
            Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(secs))
                .build()
        });
        Verdicts {
            passed,
            sources: VerifySources::default(),
        }
    }

    pub fn counting_into(mut self, sources: VerifySources) -> Self {
        self.sources = sources;
        self
    }

    pub fn remember(&self, payload_hash: B256, balance: U256) {
        if let Some(passed) = &self.passed {
            passed.insert(payload_hash, balance);
        }
    }

    /// The balance the recent verify of this payload saw, if there was one.
    pub fn balance_seen(&self, payload_hash: &B256) -> Option<U256> {
        self.passed.as_ref()?.get(payload_hash)
    }

    pub fn count(&self, source: &'static str) {
        self.sources.get_or_create(&SourceLabels { source }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_only_when_asked_to() {
        let on = Verdicts::new(10);
        let hash = B256::with_last_byte(1);
        on.remember(hash, U256::from(7));
        assert_eq!(on.balance_seen(&hash), Some(U256::from(7)));
        assert_eq!(on.balance_seen(&B256::ZERO), None);
        let off = Verdicts::new(0);
        off.remember(hash, U256::from(7));
        assert_eq!(off.balance_seen(&hash), None);
        on.count("reused");
        assert_eq!(on.sources.get_or_create(&SourceLabels { source: "reused" }).get(), 1);
    }
}
