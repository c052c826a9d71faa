//! Batch settlement (the default): payments reserved within a short window (up to `max_wait`, at most `max_items`) go out
//! as one Multicall3 `aggregate3` transaction with `allowFailure` on every call, so one bad payment cannot sink
//! the others. The batch goes through a signer's nonce owner like a single settlement (stored for every row
//! before it is broadcast). Each payment's outcome is read from the receipt: its own
//! `AuthorizationUsed(payer, nonce)` log from the token means it settled; without one, `authorizationState` is
//! read before the row is failed. Every row records the shared transaction, so the reconciler finishes a batch
//! as one.

use std::time::Duration;

use alloy::primitives::{B256, Bytes};
use alloy::sol_types::SolCall;
use tokio::sync::{mpsc, oneshot};

use super::calls::{GAS_BATCH_BASE, GAS_PER_EOA_CALL};
use super::signer::{Placed, SignerPool};
use super::submit::{self, Call};
use super::verdict::{self, Target, Verdict};
use crate::chain::ChainClient;
use crate::chain::token::IMulticall3;
use crate::ledger::Ledger;
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

/// How one payment in a batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Final (or undecidable: [`Verdict::Unknown`]), with the batch transaction when one was mined.
    Finished(Verdict, Option<B256>),
    /// Broadcast, no receipt within the wait: the reconciler finishes it.
    Pending(B256, String),
    /// Never stored (signing failed, the batcher stopped); the message says why.
    NotSent(String),
    /// The row moved on meanwhile: read it.
    FollowRow,
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
    let gas = if all_eoa {
        GAS_BATCH_BASE + GAS_PER_EOA_CALL * items.len() as u64
    } else {
        // Contract wallets: estimate the whole batch from the signer.
        let signer = pool.primary();
        let request = alloy::rpc::types::TransactionRequest::default()
            .from(signer)
            .to(chain.multicall3())
            .input(IMulticall3::aggregate3Call { calls: calls.clone() }.abi_encode().into());
        match alloy::providers::Provider::estimate_gas(chain.provider(), request).await {
            Ok(estimate) => estimate.saturating_mul(13) / 10,
            Err(e) => {
                for item in items {
                    let _ = item
                        .reply
                        .send(BatchOutcome::NotSent(format!("estimating the batch's gas: {e}")));
                }
                return;
            }
        }
    };
    let input: Bytes = IMulticall3::aggregate3Call { calls }.abi_encode().into();
    let targets: Vec<Target> = items
        .iter()
        .map(|item| Target {
            key: item.payment.key(),
            amount: item.payment.amount,
        })
        .collect();
    let call = Call {
        to: chain.multicall3(),
        input,
        gas,
    };
    let placed = pool.next().submit(call, targets.clone()).await;

    // Payments the owner placed in a transaction wait for its receipt together; the others are answered now.
    let mut waiting: Vec<(Item, Target, B256)> = Vec::new();
    for ((item, target), placed) in items.into_iter().zip(targets).zip(placed) {
        let outcome = match placed {
            Placed::InFlight(tx) => {
                waiting.push((item, target, tx));
                continue;
            }
            Placed::Uncertain(tx, message) => BatchOutcome::Pending(tx, message),
            Placed::Finished(verdict) => BatchOutcome::Finished(verdict, None),
            Placed::NotStored(message) => BatchOutcome::NotSent(message),
            Placed::Moved | Placed::Lost(_) => BatchOutcome::FollowRow,
        };
        let _ = item.reply.send(outcome);
    }
    let Some(tx) = waiting.first().map(|(_, _, tx)| *tx) else {
        return;
    };
    let mined = match submit::poll_receipt(chain, tx, receipt_timeout).await {
        Ok(Some(mined)) => mined,
        other => {
            let message = match other {
                Err(e) => format!("reading the receipt: {e}"),
                _ => "not confirmed within the receipt timeout".to_owned(),
            };
            for (item, _, tx) in waiting {
                let _ = item.reply.send(BatchOutcome::Pending(tx, message.clone()));
            }
            return;
        }
    };
    let targets: Vec<Target> = waiting.iter().map(|(_, target, _)| target.clone()).collect();
    let verdicts = verdict::record_mined(
        chain,
        ledger,
        tx,
        &mined,
        gas,
        &targets,
        "this payment's call failed inside the batch transaction",
    )
    .await;
    for ((item, _, _), verdict) in waiting.into_iter().zip(verdicts) {
        let _ = item.reply.send(BatchOutcome::Finished(verdict, Some(tx)));
    }
}
