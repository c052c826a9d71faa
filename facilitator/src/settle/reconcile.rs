//! Reconciliation: finishes every payment the ledger holds unfinished — at start-up (after a crash) and then
//! periodically (payments answered `settlement_pending`). Rows are taken per transaction: the rows that share
//! one (batch) transaction are reconciled together. A mined transaction's receipt decides its rows (with
//! `authorizationState` read before any row is failed). One that is not mined goes to its signer's nonce owner,
//! which sends the same bytes again — or, if its nonce went to another transaction, re-signs once for all the
//! rows still unused on chain. A transaction of a signer that is not ours (another replica's) is only sent
//! again as it is. A stale reservation never got a signed transaction, so it is released.

use std::collections::HashMap;
use std::time::Duration;

use alloy::primitives::B256;

use super::Settler;
use super::calls::StoredTx;
use super::node_error::broadcast;
use super::signer::Placed;
use super::submit;
use super::verdict::{self, Target, Verdict};
use crate::chain::ChainClient;
use crate::ledger::{SettlementRecord, SettlementState};

/// What one reconciliation pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    pub confirmed: usize,
    pub failed: usize,
    pub still_pending: usize,
    pub released: usize,
}

impl ReconcileReport {
    fn count(&mut self, verdict: &Verdict) {
        match verdict {
            Verdict::Confirmed(_) => self.confirmed += 1,
            Verdict::Failed(_) => self.failed += 1,
            Verdict::Unknown(_) => self.still_pending += 1,
        }
    }
}

impl Settler {
    /// One pass over the unfinished rows. `wait` bounds how long each transaction sent again is awaited.
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
        // Oldest transaction first; each transaction's rows together.
        let mut order: Vec<(String, B256)> = Vec::new();
        let mut groups: HashMap<(String, B256), Vec<SettlementRecord>> = HashMap::new();
        for row in rows {
            match (row.state, row.tx_hash) {
                (SettlementState::Reserved, _)
                    if ledger
                        .release_stale_reservation(&row.key, self.config.stale_reservation_secs)
                        .await
                        .unwrap_or(false) =>
                {
                    tracing::info!(payer = %row.key.payer, nonce = %row.key.nonce, "released a stale reservation");
                    report.released += 1;
                }
                (SettlementState::Submitted, Some(tx)) => {
                    let id = (row.key.network.clone(), tx);
                    if !groups.contains_key(&id) {
                        order.push(id.clone());
                    }
                    groups.entry(id).or_default().push(row);
                }
                _ => {}
            }
        }
        for id in order {
            if let Some(rows) = groups.remove(&id) {
                self.reconcile_transaction(id.1, rows, wait, &mut report).await;
            }
        }
        report
    }

    /// Finishes the rows of one transaction as far as the chain allows now.
    async fn reconcile_transaction(
        &self,
        tx_hash: B256,
        rows: Vec<SettlementRecord>,
        wait: Duration,
        report: &mut ReconcileReport,
    ) {
        let Some(first) = rows.first() else { return };
        let (Some(chain), Some(raw)) = (self.verifier.chain(&first.key.network).cloned(), first.raw_tx.clone()) else {
            report.still_pending += rows.len();
            return;
        };
        let Some(stored) = StoredTx::decode(&raw) else {
            tracing::error!(tx = %tx_hash, "reconcile: the stored transaction cannot be decoded");
            report.still_pending += rows.len();
            return;
        };
        let targets: Vec<Target> = rows
            .iter()
            .map(|row| Target {
                key: row.key.clone(),
                amount: row.amount,
            })
            .collect();
        match submit::poll_receipt(&chain, tx_hash, Duration::ZERO).await {
            Ok(Some(mined)) => {
                let verdicts = verdict::record_mined(
                    &chain,
                    self.verifier.ledger(),
                    tx_hash,
                    &mined,
                    stored.call.gas,
                    &targets,
                    "the settlement transaction reverted",
                )
                .await;
                verdicts.iter().for_each(|v| report.count(v));
                tracing::info!(tx = %tx_hash, payments = rows.len(), "reconcile: settlement mined");
                return;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(tx = %tx_hash, error = %e, "reconcile: cannot read the receipt");
                report.still_pending += rows.len();
                return;
            }
        }
        let owner = first
            .signer
            .and_then(|address| self.pools.get(&first.key.network)?.by_address(address));
        let placed = match owner {
            Some(signer) => signer.resubmit(tx_hash, raw, targets.clone()).await,
            None => {
                // Another replica's signer: its nonces are not ours to touch; the same bytes are safe to send.
                let placed = match broadcast(&chain, &raw).await {
                    Err(refusal) if refusal.kind.action() != super::node_error::Action::MarkSubmitted => {
                        tracing::warn!(tx = %tx_hash, error = %refusal, "reconcile: rebroadcast refused");
                        Placed::Uncertain(tx_hash, refusal.message)
                    }
                    _ => Placed::InFlight(tx_hash),
                };
                vec![placed; targets.len()]
            }
        };
        let mut carriers: Vec<(B256, Vec<Target>)> = Vec::new();
        for (target, placed) in targets.into_iter().zip(placed) {
            match placed {
                Placed::InFlight(tx) => match carriers.iter_mut().find(|(t, _)| *t == tx) {
                    Some((_, group)) => group.push(target),
                    None => carriers.push((tx, vec![target])),
                },
                Placed::Finished(verdict) => report.count(&verdict),
                Placed::Uncertain(..) | Placed::NotStored(_) | Placed::Moved | Placed::Lost(_) => {
                    report.still_pending += 1
                }
            }
        }
        for (tx, group) in carriers {
            self.await_carrier(&chain, tx, group, wait, report).await;
        }
    }

    /// Waits (bounded) for the transaction now carrying `group` and records its outcome.
    async fn await_carrier(
        &self,
        chain: &ChainClient,
        tx: B256,
        group: Vec<Target>,
        wait: Duration,
        report: &mut ReconcileReport,
    ) {
        let ledger = self.verifier.ledger();
        match submit::poll_receipt(chain, tx, wait).await {
            Ok(Some(mined)) => {
                // The gas limit of the carrier as stored (it may be a re-signed, narrower transaction).
                let gas = match ledger.get(&group[0].key).await {
                    Ok(Some(row)) => row
                        .raw_tx
                        .as_ref()
                        .and_then(StoredTx::decode)
                        .map_or(u64::MAX, |s| s.call.gas),
                    _ => u64::MAX,
                };
                let verdicts = verdict::record_mined(
                    chain,
                    ledger,
                    tx,
                    &mined,
                    gas,
                    &group,
                    "the settlement transaction reverted",
                )
                .await;
                verdicts.iter().for_each(|v| report.count(v));
                tracing::info!(%tx, payments = group.len(), "reconcile: settlement mined");
            }
            _ => report.still_pending += group.len(),
        }
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
