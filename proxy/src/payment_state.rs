//! What the proxy remembers about payments it has handled, keyed by (payer, nonce): a lock, so that
//! concurrent copies of one payment run the upstream at most once, and the settlement outcome, so a payment
//! that settled is never served again and one left pending can be finished by a resend. Both are bounded
//! moka caches; the facilitator's ledger stays the authority on what settled.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use moka::future::Cache;
use protocol::SettleResponse;
use tokio::sync::{Mutex, OwnedMutexGuard};

pub type PaymentKey = (Address, B256);

/// The last word on a payment this proxy settled.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Settled on chain; the content was delivered once.
    Settled(SettleResponse),
    /// Submitted but not final, or its fate unknown: a resend of the same payment settles (idempotently) and
    /// is then served.
    Pending,
}

#[derive(Clone)]
pub struct PaymentState {
    locks: Cache<PaymentKey, Arc<Mutex<()>>>,
    outcomes: Cache<PaymentKey, Outcome>,
}

impl Default for PaymentState {
    fn default() -> Self {
        PaymentState {
            // A lock lives while anyone may still be waiting on it; ten minutes is far beyond any request.
            locks: Cache::builder()
                .max_capacity(1_000_000)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            // An authorization expires within maxTimeoutSeconds; a day covers every sane route.
            outcomes: Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(Duration::from_secs(86_400))
                .build(),
        }
    }
}

impl PaymentState {
    /// Waits for exclusive use of this payment.
    pub async fn lock(&self, key: PaymentKey) -> OwnedMutexGuard<()> {
        let lock = self.locks.get_with(key, async { Arc::new(Mutex::new(())) }).await;
        lock.lock_owned().await
    }

    pub async fn outcome(&self, key: &PaymentKey) -> Option<Outcome> {
        self.outcomes.get(key).await
    }

    pub async fn record(&self, key: PaymentKey, outcome: Outcome) {
        self.outcomes.insert(key, outcome).await;
    }
}
