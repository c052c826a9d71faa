//! Reconciliation: finishes every payment the ledger holds unfinished — at start-up (after a crash) and then
//! periodically (payments answered `settlement_pending`). A submitted row is settled by its own stored
//! transaction: its receipt is read, or the same signed bytes are rebroadcast; only if the node refuses that
//! transaction's nonce (so it can never be mined) is the same call re-signed with a fresh nonce. A stale
//! reservation never got a signed transaction, so it is released.

use std::time::Duration;

use alloy::consensus::{Transaction, TxEnvelope};
use alloy::eips::eip2718::Decodable2718;
use alloy::primitives::TxKind;

use super::Settler;
use super::submit::{self, BroadcastError, Outcome};
use crate::ledger::{SettlementRecord, SettlementState};
use protocol::reason;

/// What one reconciliation pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    pub confirmed: usize,
    pub failed: usize,
    pub still_pending: usize,
    pub released: usize,
}

impl Settler {
    /// One pass over the unfinished rows. `wait` bounds how long each rebroadcast transaction is awaited.
    pub async fn reconcile_once(&self, wait: Duration) -> ReconcileReport {
        let ledger = self.verifier.ledger();
        let mut report = ReconcileReport::default();
        let rows = match ledger.unfinished(self.config.stale_reservation_secs).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "reconcile: cannot read the ledger");
                return report;
            }
        };
        for row in rows {
            match row.state {
                SettlementState::Reserved
                    if ledger
                        .release_stale_reservation(&row.key, self.config.stale_reservation_secs)
                        .await
                        .unwrap_or(false) =>
                {
                    tracing::info!(payer = %row.key.payer, nonce = %row.key.nonce, "released a stale reservation");
                    report.released += 1;
                }
                SettlementState::Submitted => match self.reconcile_submitted(&row, wait).await {
                    Some(true) => report.confirmed += 1,
                    Some(false) => report.failed += 1,
                    None => report.still_pending += 1,
                },
                _ => {}
            }
        }
        report
    }

    /// Finishes one submitted row: `Some(true)` confirmed, `Some(false)` failed, `None` still pending.
    async fn reconcile_submitted(&self, row: &SettlementRecord, wait: Duration) -> Option<bool> {
        let chain = self.verifier.chain(&row.key.network)?.clone();
        let ledger = self.verifier.ledger();
        let (tx_hash, raw) = (row.tx_hash?, row.raw_tx.clone()?);
        let check = Some((row.key.asset, row.key.payer, row.key.nonce));
        let mut outcome = submit::await_outcome(&chain, tx_hash, check, Duration::ZERO)
            .await
            .ok()?;
        let mut current_hash = tx_hash;
        if outcome == Outcome::Pending {
            match submit::broadcast(&chain, &raw).await {
                Ok(()) => {}
                Err(BroadcastError::NonceRefused(_)) => {
                    // Maybe mined meanwhile; if not, the nonce went to another transaction: sign again.
                    outcome = submit::await_outcome(&chain, tx_hash, check, Duration::ZERO)
                        .await
                        .ok()?;
                    if outcome == Outcome::Pending {
                        current_hash = self.resign(row, &chain, &raw).await?;
                    }
                }
                Err(e) => {
                    tracing::warn!(%tx_hash, error = %e, "reconcile: rebroadcast failed");
                    return None;
                }
            }
            if outcome == Outcome::Pending {
                outcome = submit::await_outcome(&chain, current_hash, check, wait).await.ok()?;
            }
        }
        match outcome {
            Outcome::Confirmed => {
                ledger.mark_confirmed(&row.key, current_hash).await.ok()?;
                tracing::info!(tx = %current_hash, "reconcile: settlement confirmed");
                Some(true)
            }
            Outcome::Reverted => {
                let message = "the settlement transaction reverted";
                ledger
                    .mark_failed(
                        &row.key,
                        reason::INVALID_EXACT_EVM_TRANSACTION_FAILED,
                        message,
                        Some(current_hash),
                    )
                    .await
                    .ok()?;
                Some(false)
            }
            Outcome::Pending => None,
        }
    }

    /// Signs the stored call again with a fresh nonce and replaces the row's transaction.
    async fn resign(
        &self,
        row: &SettlementRecord,
        chain: &crate::chain::ChainClient,
        raw: &alloy::primitives::Bytes,
    ) -> Option<alloy::primitives::B256> {
        let envelope = TxEnvelope::decode_2718(&mut raw.as_ref()).ok()?;
        let TxKind::Call(to) = envelope.kind() else { return None };
        let pool = self.pools.get(&row.key.network)?;
        let signer = row
            .signer
            .and_then(|a| pool.by_address(a))
            .unwrap_or_else(|| pool.next());
        signer.resync().await;
        let fresh = submit::sign_call(chain, &signer, to, envelope.input().clone(), Some(envelope.gas_limit()))
            .await
            .ok()?;
        let old = row.tx_hash?;
        if !self
            .verifier
            .ledger()
            .replace_submission(&row.key, old, fresh.hash, &fresh.raw, fresh.signer, fresh.nonce)
            .await
            .ok()?
        {
            return None;
        }
        submit::broadcast(chain, &fresh.raw).await.ok()?;
        tracing::warn!(old = %old, new = %fresh.hash, "reconcile: re-signed a settlement whose nonce was taken");
        Some(fresh.hash)
    }

    /// Runs [`Self::reconcile_once`] every `every` until the returned handle is aborted.
    pub fn spawn_reconciler(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let settler = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let report = settler.reconcile_once(Duration::from_millis(500)).await;
                if report != ReconcileReport::default() {
                    tracing::info!(?report, "reconciled");
                }
            }
        })
    }
}
