//! The background settler of deferred payments: a task started with the proxy that, every `flush_interval_ms`
//! or as soon as `batch_size` served payments wait, takes the due ones under a lease
//! ([`DeferredLedger::take_due`]) and settles them concurrently through the facilitator (which batches
//! concurrent settles into multicall transactions). A round's outcomes are recorded together (one transaction for
//! its final ones, [`DeferredLedger::record`]): settled (with its receipt),
//! refused for good (`settlement_failed_after_delivery`, counted in `/metrics`, the payer refused deferred
//! service from then on), or not yet known (retried later with backoff, still counted against the bounds).
//! On start it takes whatever earlier runs left (leases that ran out), so a crash loses nothing, and the
//! facilitator's idempotent settle makes each payment settle at most once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use protocol::{SettleResponse, reason};
use tokio::sync::{Notify, watch};

use crate::config::DeferredSettings;
use crate::deferred_ledger::{DeferredLedger, DueSettlement, Outcome};
use crate::service::ProxyState;

/// The facilitator settles an authorization only while it has at least this long left (its time-window
/// check), so a deferred payment must have this much left when the settler reaches it.
pub const FACILITATOR_MIN_REMAINING: Duration = Duration::from_secs(6);
/// The longest wait before a payment whose settlement is not known yet is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What the settler has done so far, for `/metrics`' neighbours and whoever waits on a round (a test).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SettlerProgress {
    /// Flushes finished (each takes rounds until nothing is due).
    pub flushes: u64,
    pub settled: u64,
    pub failed_after_delivery: u64,
    pub retried: u64,
}

/// The request path's handle on the settler: counts served payments, wakes it, and can hold it.
pub struct DeferredQueue {
    settings: DeferredSettings,
    /// A payment is served deferred only if its authorization stays valid at least this long: the upstream's
    /// time, the settler's interval and the facilitator's settle.
    margin: Duration,
    waiting: AtomicUsize,
    wake: Notify,
    held: AtomicBool,
    forced: AtomicBool,
    progress: watch::Sender<SettlerProgress>,
}

impl DeferredQueue {
    pub fn new(settings: DeferredSettings, margin: Duration) -> Self {
        DeferredQueue {
            settings,
            margin,
            waiting: AtomicUsize::new(0),
            wake: Notify::new(),
            held: AtomicBool::new(false),
            forced: AtomicBool::new(false),
            progress: watch::Sender::new(SettlerProgress::default()),
        }
    }

    pub fn settings(&self) -> &DeferredSettings {
        &self.settings
    }

    /// Whether an authorization valid until `valid_before` (Unix seconds) can wait for the settler.
    pub fn outlives_settlement(&self, valid_before: u64, now: u64) -> bool {
        valid_before >= now.saturating_add(self.margin.as_secs().saturating_add(1))
    }

    /// A deferred payment was delivered: a full batch starts a round at once.
    pub fn delivered(&self) {
        if self.waiting.fetch_add(1, Ordering::AcqRel) + 1 >= self.settings.batch_size {
            self.wake.notify_one();
        }
    }

    /// Holds (or lets go of) the settler's own rounds; [`DeferredQueue::flush_now`] still runs one.
    pub fn hold(&self, held: bool) {
        self.held.store(held, Ordering::Release);
    }

    /// Starts a flush now, held or not.
    pub fn flush_now(&self) {
        self.forced.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Follows the settler's progress.
    pub fn progress(&self) -> watch::Receiver<SettlerProgress> {
        self.progress.subscribe()
    }
}

/// Backoff before the `attempts`-th retry: 1 s, 2 s, 4 s… up to a minute.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(6)).min(MAX_BACKOFF)
}

/// How one settle call came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Settled,
    /// Refused for good: the payment will never settle.
    Refused,
    /// Unknown or not final: try again later.
    NotYet,
}

/// Pending and unexpected errors are not final; every other refusal is (insufficient funds, a used nonce,
/// an expired authorization…).
pub fn verdict(settlement: &SettleResponse) -> Verdict {
    if settlement.success {
        return Verdict::Settled;
    }
    match settlement.error_reason.as_deref() {
        Some(reason::SETTLEMENT_PENDING | reason::UNEXPECTED_SETTLE_ERROR) | None => Verdict::NotYet,
        Some(_) => Verdict::Refused,
    }
}

/// Starts the settler; it runs until aborted (every step is recorded, so an abort loses nothing).
pub fn spawn(state: Arc<ProxyState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let queue = state.deferred.clone();
        let interval = queue.settings.flush_interval;
        // Whatever an earlier run left is due at once.
        let mut first = true;
        loop {
            if !first {
                tokio::select! {
                    _ = queue.wake.notified() => {}
                    _ = tokio::time::sleep(interval) => {}
                }
            }
            first = false;
            let forced = queue.forced.swap(false, Ordering::AcqRel);
            if queue.held.load(Ordering::Acquire) && !forced {
                continue;
            }
            flush(&state).await;
            queue.progress.send_modify(|p| p.flushes += 1);
        }
    })
}

/// At a clean stop: one last flush, unless the settler is held.
pub async fn drain(state: &Arc<ProxyState>) {
    if !state.deferred.held.load(Ordering::Acquire) {
        flush(state).await;
    }
}

/// Rounds of at most `batch_size` until nothing is due.
async fn flush(state: &Arc<ProxyState>) {
    let queue = &state.deferred;
    let batch = queue.settings.batch_size;
    loop {
        queue.waiting.store(0, Ordering::Release);
        let due = match state.deferred_ledger.take_due(batch, state.lease).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take deferred payments to settle");
                return;
            }
        };
        let taken = due.len();
        if taken == 0 {
            return;
        }
        let settles = due.into_iter().map(|due| settle_one(state, due));
        let settled = futures_util::future::join_all(settles).await;
        record_round(state, &settled).await;
        if taken < batch {
            return;
        }
    }
}

/// Settles one leased payment through the facilitator; an error is an outcome not known yet.
async fn settle_one(state: &Arc<ProxyState>, due: DueSettlement) -> (DueSettlement, SettleResponse) {
    let answer = match state.facilitator.settle(&due.request).await {
        Ok(answer) => answer,
        Err(e) => SettleResponse {
            success: false,
            error_reason: Some(reason::UNEXPECTED_SETTLE_ERROR.into()),
            error_message: Some(e.to_string()),
            payer: None,
            transaction: String::new(),
            network: due.network.clone(),
            amount: None,
        },
    };
    (due, answer)
}

/// Records a round's outcomes: the final ones in one go ([`DeferredLedger::record`]), the ones not known yet
/// each with its backoff.
async fn record_round(state: &Arc<ProxyState>, settled: &[(DueSettlement, SettleResponse)]) {
    let ledger: &DeferredLedger = &state.deferred_ledger;
    let mut outcomes = Vec::with_capacity(settled.len());
    for (due, answer) in settled {
        match verdict(answer) {
            Verdict::Settled => outcomes.push(Outcome {
                due,
                settlement: answer,
                failed: None,
            }),
            Verdict::Refused
                if answer.error_reason.as_deref()
                    == Some(reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_BEFORE) =>
            {
                // It expired waiting for us (the facilitator was down too long): recorded, the payer not blamed.
                tracing::error!(payer = %due.payer, "a deferred payment expired before it could be settled");
                outcomes.push(Outcome {
                    due,
                    settlement: answer,
                    failed: Some(false),
                });
            }
            Verdict::Refused => {
                tracing::error!(
                    payer = %due.payer, reason = ?answer.error_reason, message = ?answer.error_message,
                    "a deferred payment was refused settlement after delivery; its payer is refused deferred service"
                );
                outcomes.push(Outcome {
                    due,
                    settlement: answer,
                    failed: Some(true),
                });
            }
            Verdict::NotYet => {
                let wait = backoff(due.attempts);
                tracing::warn!(payer = %due.payer, reason = ?answer.error_reason, ?wait, "deferred settlement not final; retrying later");
                state.deferred.progress.send_modify(|p| p.retried += 1);
                if let Err(e) = ledger.retry_later(due, wait).await {
                    // The lease runs out and the payment is taken again.
                    tracing::error!(error = %e, payer = %due.payer, "cannot record a deferred settlement's outcome");
                }
            }
        }
    }
    if outcomes.is_empty() {
        return;
    }
    let recorded = match ledger.record(&outcomes).await {
        Ok(recorded) => recorded,
        Err(e) => {
            // The leases run out and the payments are taken again; the facilitator's settle is idempotent.
            tracing::error!(error = %e, payments = outcomes.len(), "cannot record deferred settlements' outcomes");
            return;
        }
    };
    for (outcome, recorded) in outcomes.iter().zip(recorded) {
        if !recorded {
            continue;
        }
        match outcome.failed {
            None => {
                state
                    .metrics
                    .settled(&outcome.due.network, outcome.due.asset, outcome.due.amount);
                state.deferred.progress.send_modify(|p| p.settled += 1);
            }
            Some(_) => {
                state.metrics.settlement_failed_after_delivery.inc();
                state.deferred.progress.send_modify(|p| p.failed_after_delivery += 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(success: bool, reason: Option<&str>) -> SettleResponse {
        SettleResponse {
            success,
            error_reason: reason.map(str::to_owned),
            error_message: None,
            payer: None,
            transaction: String::new(),
            network: "eip155:31337".into(),
            amount: None,
        }
    }

    #[test]
    fn only_pending_and_unexpected_errors_are_tried_again() {
        assert_eq!(verdict(&answer(true, None)), Verdict::Settled);
        assert_eq!(
            verdict(&answer(false, Some(reason::SETTLEMENT_PENDING))),
            Verdict::NotYet
        );
        assert_eq!(
            verdict(&answer(false, Some(reason::UNEXPECTED_SETTLE_ERROR))),
            Verdict::NotYet
        );
        assert_eq!(verdict(&answer(false, None)), Verdict::NotYet);
        for refused in [
            reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE,
            reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED,
            reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_BEFORE,
        ] {
            assert_eq!(verdict(&answer(false, Some(refused))), Verdict::Refused, "{refused}");
        }
    }

    #[test]
    fn a_short_authorization_cannot_wait_for_the_settler() {
        let settings = crate::config::DeferredConfig::default().settings().unwrap();
        let queue = DeferredQueue::new(settings, Duration::from_secs(45));
        assert!(queue.outlives_settlement(1_046, 1_000));
        assert!(!queue.outlives_settlement(1_045, 1_000));
        assert!(!queue.outlives_settlement(0, u64::MAX));
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(6), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
