//! Batch settlement: payments reserved within a short window (up to `max_wait`, at most `max_items`) go out
//! as one Multicall3 `aggregate3` transaction with `allowFailure` on every call, so one bad payment cannot sink
//! the others. Each payment's outcome is read from the receipt: its own `AuthorizationUsed(payer, nonce)` log
//! from the token means it settled; no such log means its call failed. Every row records the shared
//! transaction, so reconciliation after a crash works exactly as for single settlements.

use std::time::Duration;

use alloy::primitives::{B256, Bytes};
use alloy::sol_types::SolCall;
use tokio::sync::{mpsc, oneshot};

use super::signer::SignerPool;
use super::submit::{self, BroadcastError};
use crate::chain::ChainClient;
use crate::chain::token::IMulticall3;
use crate::ledger::{Ledger, SettlementKey};
use crate::verify::Payment;

/// Batching settings.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    pub max_wait: Duration,
    pub max_items: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_wait: Duration::from_millis(20),
            max_items: 100,
        }
    }
}

/// Gas per `transferWithAuthorization` inside the batch (EOA signature), and the batch's own overhead.
const GAS_PER_EOA_CALL: u64 = 90_000;
const GAS_BATCH_BASE: u64 = 60_000;

/// How one payment in a batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    Confirmed(B256),
    /// Mined, but this payment's call failed.
    Failed(B256),
    /// Broadcast, no receipt within the wait: the reconciler finishes it.
    Pending(B256),
    /// Never sent (signing or the node refused it); the message says why.
    NotSent(String),
}

struct Item {
    payment: Payment,
    reply: oneshot::Sender<BatchOutcome>,
}

/// The handle through which payments join a chain's batches.
#[derive(Clone)]
pub struct Batcher {
    queue: mpsc::Sender<Item>,
}

impl Batcher {
    /// Starts the batching task for one chain.
    pub fn spawn(
        chain: ChainClient,
        pool: SignerPool,
        ledger: Ledger,
        config: BatchConfig,
        receipt_timeout: Duration,
    ) -> Self {
        let (queue, receiver) = mpsc::channel(config.max_items.max(1) * 16);
        tokio::spawn(run(chain, pool, ledger, config, receipt_timeout, receiver));
        Batcher { queue }
    }

    /// Settles a reserved payment in the next batch.
    pub async fn settle(&self, payment: Payment) -> BatchOutcome {
        let (reply, answer) = oneshot::channel();
        if self.queue.send(Item { payment, reply }).await.is_err() {
            return BatchOutcome::NotSent("the batcher has stopped".into());
        }
        answer
            .await
            .unwrap_or_else(|_| BatchOutcome::NotSent("the batcher dropped the payment".into()))
    }
}

async fn run(
    chain: ChainClient,
    pool: SignerPool,
    ledger: Ledger,
    config: BatchConfig,
    receipt_timeout: Duration,
    mut receiver: mpsc::Receiver<Item>,
) {
    while let Some(first) = receiver.recv().await {
        let mut items = vec![first];
        let deadline = tokio::time::Instant::now() + config.max_wait;
        while items.len() < config.max_items {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(item)) => items.push(item),
                Ok(None) | Err(_) => break,
            }
        }
        // Batches are sent concurrently (each with its own signer nonce); only their assembly is serial.
        let (chain, pool, ledger) = (chain.clone(), pool.clone(), ledger.clone());
        tokio::spawn(async move { send_batch(&chain, &pool, &ledger, receipt_timeout, items).await });
    }
}

async fn send_batch(
    chain: &ChainClient,
    pool: &SignerPool,
    ledger: &Ledger,
    receipt_timeout: Duration,
    items: Vec<Item>,
) {
    let calls: Vec<IMulticall3::Call3> = items
        .iter()
        .map(|item| IMulticall3::Call3 {
            target: item.payment.asset.address,
            allowFailure: true,
            callData: submit::calldata(&item.payment),
        })
        .collect();
    let all_eoa = items.iter().all(|item| item.payment.signature.len() == 65);
    let gas = all_eoa.then(|| GAS_BATCH_BASE + GAS_PER_EOA_CALL * items.len() as u64);
    let input: Bytes = IMulticall3::aggregate3Call { calls }.abi_encode().into();
    let keys: Vec<SettlementKey> = items.iter().map(|item| item.payment.key()).collect();
    let signer = pool.next();

    let fail_all = |items: Vec<Item>, message: String| {
        for item in items {
            let _ = item.reply.send(BatchOutcome::NotSent(message.clone()));
        }
    };
    let signed = match submit::sign_call(chain, &signer, chain.multicall3(), input, gas).await {
        Ok(signed) => signed,
        Err(e) => {
            signer.resync().await;
            return fail_all(items, format!("signing the batch: {e}"));
        }
    };
    if let Err(e) = ledger
        .mark_batch_submitted(&keys, signed.hash, &signed.raw, signed.signer, signed.nonce)
        .await
    {
        signer.resync().await;
        return fail_all(items, format!("recording the batch: {e}"));
    }
    match submit::broadcast(chain, &signed.raw).await {
        Ok(()) => {}
        Err(BroadcastError::Transport(_)) => {
            for item in items {
                let _ = item.reply.send(BatchOutcome::Pending(signed.hash));
            }
            return;
        }
        Err(e @ (BroadcastError::NonceRefused(_) | BroadcastError::Refused(_))) => {
            signer.resync().await;
            let message = e.to_string();
            for (item, key) in items.into_iter().zip(&keys) {
                let _ = ledger
                    .mark_failed(
                        key,
                        protocol::reason::INVALID_EXACT_EVM_TRANSACTION_FAILED,
                        &message,
                        None,
                    )
                    .await;
                let _ = item.reply.send(BatchOutcome::NotSent(message.clone()));
            }
            return;
        }
    }
    let used = match submit::poll_receipt(chain, signed.hash, receipt_timeout)
        .await
        .ok()
        .flatten()
        .map(|mined| mined.used)
    {
        Some(used) => used,
        None => {
            for item in items {
                let _ = item.reply.send(BatchOutcome::Pending(signed.hash));
            }
            return;
        }
    };
    let settled: Vec<bool> = keys
        .iter()
        .map(|key| {
            used.iter()
                .any(|(asset, payer, nonce)| *asset == key.asset && *payer == key.payer && *nonce == key.nonce)
        })
        .collect();
    let confirmed: Vec<SettlementKey> = keys
        .iter()
        .zip(&settled)
        .filter(|(_, ok)| **ok)
        .map(|(k, _)| k.clone())
        .collect();
    let failed: Vec<SettlementKey> = keys
        .iter()
        .zip(&settled)
        .filter(|(_, ok)| !**ok)
        .map(|(k, _)| k.clone())
        .collect();
    let recorded = ledger
        .mark_batch_outcomes(
            signed.hash,
            &confirmed,
            &failed,
            protocol::reason::INVALID_EXACT_EVM_TRANSACTION_FAILED,
            "this payment's call failed inside the batch transaction",
        )
        .await;
    if let Err(e) = recorded {
        // The chain has the truth; the reconciler records it from the receipt.
        tracing::error!(tx = %signed.hash, error = %e, "batch outcome not recorded; the reconciler will");
    }
    for (item, ok) in items.into_iter().zip(settled) {
        let outcome = if ok {
            BatchOutcome::Confirmed(signed.hash)
        } else {
            BatchOutcome::Failed(signed.hash)
        };
        let _ = item.reply.send(outcome);
    }
}
