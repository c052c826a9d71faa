//! The nonce owner of one settlement key on one network: a task holding the next nonce and every transaction
//! it has in flight, fed by a channel. It learns its starting point from the chain (pending count) and the
//! ledger (this signer's submitted rows), so after a restart it knows what it had sent. Commands are handled
//! one at a time, each to the end, so no nonce is ever allocated twice or left allocated without a stored
//! transaction behind it; submissions that queued up meanwhile are handled as one: consecutive nonces, one fee
//! reading and one ledger commit for all, then each broadcast in nonce order.

use std::collections::{BTreeMap, HashMap};

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, Bytes};
use alloy::signers::local::PrivateKeySigner;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Command, Placed, SignerHandle, SignerOptions};
use crate::chain::ChainClient;
use crate::ledger::{Ledger, SettlementKey, SettlementState, SubmittedTx};
use crate::settle::calls::StoredTx;
use crate::settle::submit::{self, Call, Fees};
use crate::settle::verdict::Target;

/// At most this many queued submissions are signed and stored together.
const MAX_GROUP: usize = 32;

/// A submission waiting for the owner: the call, the payments it carries, and where to answer.
type Submission = (Call, Vec<Target>, tokio::sync::oneshot::Sender<Vec<Placed>>);

/// `first` and the submissions already queued behind it (consecutive nonces, one commit), up to the first
/// other command, which is handed back to run after them.
fn with_queued(first: Submission, receiver: &mut mpsc::Receiver<Command>) -> (Vec<Submission>, Option<Command>) {
    let mut group = vec![first];
    while group.len() < MAX_GROUP {
        match receiver.try_recv() {
            Ok(Command::Submit { call, targets, reply }) => group.push((call, targets, reply)),
            Ok(other) => return (group, Some(other)),
            Err(_) => break,
        }
    }
    (group, None)
}

/// One transaction this owner has signed and not yet seen mined.
#[derive(Debug, Clone)]
pub(super) struct InFlight {
    pub hash: B256,
    pub raw: Bytes,
    pub call: Call,
    pub fees: Fees,
    /// The payments it carries (empty for a gap filler).
    pub targets: Vec<Target>,
    pub sent_at: Instant,
}

pub(super) struct Owner {
    pub address: Address,
    pub wallet: EthereumWallet,
    pub chain: ChainClient,
    pub ledger: Ledger,
    pub options: SignerOptions,
    /// The next nonce to allocate; `None` until read from the chain and the ledger.
    pub next: Option<u64>,
    pub in_flight: BTreeMap<u64, InFlight>,
}

/// Starts the owner of `key` on `chain`.
pub(super) fn spawn(key: PrivateKeySigner, chain: ChainClient, ledger: Ledger, options: SignerOptions) -> SignerHandle {
    let (commands, receiver) = mpsc::channel(4_096);
    let owner = Owner {
        address: key.address(),
        wallet: EthereumWallet::from(key),
        chain,
        ledger,
        options,
        next: None,
        in_flight: BTreeMap::new(),
    };
    let address = owner.address;
    tokio::spawn(owner.run(receiver));
    SignerHandle { address, commands }
}

impl Owner {
    async fn run(mut self, mut receiver: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(self.options.check_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = receiver.recv() => match command {
                    Some(Command::Submit { call, targets, reply }) => {
                        let (group, after) = with_queued((call, targets, reply), &mut receiver);
                        self.submit_group(group).await;
                        if let Some(command) = after {
                            self.handle(command).await;
                        }
                    }
                    Some(command) => self.handle(command).await,
                    None => break,
                },
                _ = tick.tick() => self.check_gap().await,
            }
        }
    }

    /// Submits several calls at consecutive nonces: one fee reading, every transaction signed, all of them
    /// stored in one ledger commit, then each broadcast in nonce order and answered as soon as it is placed.
    /// If the group cannot be stored as a whole, each call goes alone (the single path decides per call).
    async fn submit_group(&mut self, group: Vec<Submission>) {
        let stored = if group.len() > 1 {
            self.store_group(&group).await
        } else {
            None
        };
        match stored {
            Some(first) => {
                for (i, (_, _, reply)) in group.into_iter().enumerate() {
                    let placed = self.push(first + i as u64).await;
                    let _ = reply.send(placed);
                }
            }
            None => {
                for (call, targets, reply) in group {
                    let placed = self.submit(call, targets).await;
                    let _ = reply.send(placed);
                }
            }
        }
    }

    /// Signs and stores the group's transactions; on success they are in flight from the returned nonce on.
    async fn store_group(&mut self, group: &[Submission]) -> Option<u64> {
        let first = self.ensure_ready().await.ok()?;
        let fees: Fees = self.chain.fees().await.ok()?.into();
        let mut signed = Vec::with_capacity(group.len());
        for (i, (call, _, _)) in group.iter().enumerate() {
            signed.push(self.sign_at(call, first + i as u64, Some(fees)).await.ok()?);
        }
        let keys: Vec<Vec<SettlementKey>> = group
            .iter()
            .map(|(_, targets, _)| targets.iter().map(|t| t.key.clone()).collect())
            .collect();
        let transactions: Vec<SubmittedTx<'_>> = signed
            .iter()
            .zip(&keys)
            .map(|(s, keys)| SubmittedTx {
                keys,
                tx_hash: s.hash,
                raw_tx: &s.raw,
                signer_nonce: s.nonce,
            })
            .collect();
        if !matches!(
            self.ledger
                .mark_transactions_submitted(self.address, &transactions)
                .await,
            Ok(true)
        ) {
            return None;
        }
        let now = Instant::now();
        for ((call, targets, _), s) in group.iter().zip(signed) {
            self.in_flight.insert(
                s.nonce,
                InFlight {
                    hash: s.hash,
                    raw: s.raw,
                    call: call.clone(),
                    fees: s.fees,
                    targets: targets.clone(),
                    sent_at: now,
                },
            );
        }
        self.next = Some(first + group.len() as u64);
        Some(first)
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Submit { call, targets, reply } => self.submit_group(vec![(call, targets, reply)]).await,
            Command::Resubmit {
                tx_hash,
                raw,
                targets,
                reply,
            } => {
                let placed = self.resubmit(tx_hash, raw, targets).await;
                let _ = reply.send(placed);
            }
            Command::CheckNonces { reply } => {
                self.check_gap().await;
                let _ = reply.send(());
            }
        }
    }

    /// Reads the starting point once: the chain's pending count, raised past every transaction of this signer
    /// the ledger still holds as submitted (those are in flight again).
    pub(super) async fn ensure_ready(&mut self) -> Result<u64, String> {
        if let Some(next) = self.next {
            return Ok(next);
        }
        let counts = self
            .chain
            .nonce_counts(self.address)
            .await
            .map_err(|e| format!("reading the signer's nonce: {e}"))?;
        let rows = self
            .ledger
            .submitted_by(&self.chain.caip2, self.address)
            .await
            .map_err(|e| format!("reading the signer's transactions: {e}"))?;
        let mut groups: HashMap<B256, (Bytes, Vec<Target>)> = HashMap::new();
        for row in rows {
            let (Some(hash), Some(raw)) = (row.tx_hash, row.raw_tx) else {
                continue;
            };
            let target = Target {
                key: row.key,
                amount: row.amount,
            };
            groups.entry(hash).or_insert_with(|| (raw, Vec::new())).1.push(target);
        }
        let now = Instant::now();
        for (hash, (raw, targets)) in groups {
            let Some(stored) = StoredTx::decode(&raw) else {
                continue;
            };
            if stored.nonce < counts.latest {
                continue;
            }
            self.in_flight.insert(
                stored.nonce,
                InFlight {
                    hash,
                    raw,
                    call: stored.call,
                    fees: stored.fees,
                    targets,
                    sent_at: now,
                },
            );
        }
        let after_in_flight = self.in_flight.keys().next_back().map_or(0, |n| n + 1);
        let next = counts.pending.max(counts.latest).max(after_in_flight);
        self.next = Some(next);
        if !self.in_flight.is_empty() {
            tracing::info!(signer = %self.address, next, in_flight = self.in_flight.len(), "nonce owner resumed transactions from the ledger");
        }
        Ok(next)
    }

    /// Signs `call` with the chain's current fees at `nonce`.
    pub(super) async fn sign_at(&self, call: &Call, nonce: u64, fees: Option<Fees>) -> Result<submit::Signed, String> {
        let fees = match fees {
            Some(fees) => fees,
            None => self
                .chain
                .fees()
                .await
                .map_err(|e| format!("reading the chain's fees: {e}"))?
                .into(),
        };
        submit::sign(&self.wallet, self.address, self.chain.chain_id(), call, nonce, fees)
            .await
            .map_err(|e| e.to_string())
    }

    /// Allocates the next nonce for `call`, stores the signed transaction for every target (reserved →
    /// submitted) and broadcasts it. The nonce counts as used only once the transaction is stored.
    async fn submit(&mut self, call: Call, targets: Vec<Target>) -> Vec<Placed> {
        let not_stored = |message: String, n: usize| vec![Placed::NotStored(message); n];
        let nonce = match self.ensure_ready().await {
            Ok(next) => next,
            Err(message) => return not_stored(message, targets.len()),
        };
        let signed = match self.sign_at(&call, nonce, None).await {
            Ok(signed) => signed,
            Err(message) => return not_stored(message, targets.len()),
        };
        let keys: Vec<_> = targets.iter().map(|t| t.key.clone()).collect();
        match self
            .ledger
            .mark_batch_submitted(&keys, signed.hash, &signed.raw, self.address, nonce)
            .await
        {
            Ok(0) => return not_stored("the reservation was lost before submission".into(), targets.len()),
            Ok(_) => {}
            Err(e) => return not_stored(format!("recording the transaction: {e}"), targets.len()),
        }
        self.next = Some(nonce + 1);
        self.in_flight.insert(
            nonce,
            InFlight {
                hash: signed.hash,
                raw: signed.raw,
                call,
                fees: signed.fees,
                targets,
                sent_at: Instant::now(),
            },
        );
        self.push(nonce).await
    }

    /// Sends a stored transaction again. If this owner has since replaced the transaction at that nonce, the
    /// caller's copy is stale and the row has moved on.
    async fn resubmit(&mut self, tx_hash: B256, raw: Bytes, targets: Vec<Target>) -> Vec<Placed> {
        let n = targets.len();
        if let Err(message) = self.ensure_ready().await {
            return vec![Placed::Uncertain(tx_hash, message); n];
        }
        let Some(stored) = StoredTx::decode(&raw) else {
            return vec![Placed::Uncertain(tx_hash, "the stored transaction cannot be decoded".into()); n];
        };
        // The caller read the rows earlier; this owner may have finished or replaced them since (the request
        // waited in the queue). Only rows that still hold this very transaction are sent for.
        let mut current = Vec::with_capacity(n);
        for target in &targets {
            let still = matches!(
                self.ledger.get(&target.key).await,
                Ok(Some(row)) if row.state == SettlementState::Submitted && row.tx_hash == Some(tx_hash)
            );
            current.push(still);
        }
        if !current.iter().any(|still| *still) {
            return vec![Placed::Moved; n];
        }
        let order: Vec<SettlementKey> = targets.iter().map(|t| t.key.clone()).collect();
        let targets: Vec<Target> = targets
            .into_iter()
            .zip(&current)
            .filter(|(_, still)| **still)
            .map(|(t, _)| t)
            .collect();
        let placed = self.resubmit_current(tx_hash, raw, stored, targets.clone()).await;
        order
            .iter()
            .map(|key| {
                targets
                    .iter()
                    .position(|t| t.key == *key)
                    .and_then(|i| placed.get(i).cloned())
                    .unwrap_or(Placed::Moved)
            })
            .collect()
    }

    async fn resubmit_current(
        &mut self,
        tx_hash: B256,
        raw: Bytes,
        stored: StoredTx,
        targets: Vec<Target>,
    ) -> Vec<Placed> {
        let n = targets.len();
        match self.in_flight.get_mut(&stored.nonce) {
            Some(entry) if entry.hash != tx_hash => return vec![Placed::Moved; n],
            Some(entry) => entry.targets = targets,
            None => {
                self.in_flight.insert(
                    stored.nonce,
                    InFlight {
                        hash: tx_hash,
                        raw,
                        call: stored.call,
                        fees: stored.fees,
                        targets,
                        sent_at: Instant::now(),
                    },
                );
                if self.next.is_some_and(|next| next <= stored.nonce) {
                    self.next = Some(stored.nonce + 1);
                }
            }
        }
        self.push(stored.nonce).await
    }
}
