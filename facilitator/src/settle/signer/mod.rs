//! Settlement signers: one or several keys, used round-robin. Each key's nonce sequence on a network has exactly
//! one owner — a task ([`owner`]) fed by a channel — which allocates a nonce, signs, stores the signed
//! transaction in the ledger and broadcasts it as one step nobody can interrupt, acts on the node's refusals
//! ([`super::node_error`]), re-sends or re-signs a nonce gap when the chain's pending count stays behind, and
//! is also the only way the reconciler re-sends or re-signs anything. A dropped caller cancels nothing: a
//! command, once sent, is carried out. Keys are never printed: `Debug` shows only the address.

mod gap;
mod owner;
mod push;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes};
use alloy::signers::local::PrivateKeySigner;
use tokio::sync::{mpsc, oneshot};

use super::submit::Call;
use super::verdict::{Target, Verdict};
use crate::chain::ChainClient;
use crate::ledger::Ledger;

/// How the nonce owner watches for gaps.
#[derive(Debug, Clone, Copy)]
pub struct SignerOptions {
    /// When the chain's pending count stays below the next nonce and the oldest transaction in flight is older
    /// than this, the gap is re-sent (or re-signed).
    pub resync_after: Duration,
    /// How often the owner compares its sequence with the chain while it has transactions in flight.
    pub check_every: Duration,
}

impl Default for SignerOptions {
    fn default() -> Self {
        SignerOptions {
            resync_after: Duration::from_secs(20),
            check_every: Duration::from_secs(2),
        }
    }
}

/// Where the owner left one payment of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// Carried by this transaction, which the node holds (or has mined): wait for its receipt.
    InFlight(B256),
    /// Stored, but whether the node got it is unknown (transport fault); it is sent again later.
    Uncertain(B256, String),
    /// Finished without a (new) transaction: found used on chain, expired, or refused by the node; the ledger
    /// row is written.
    Finished(Verdict),
    /// Nothing was stored for it: the reservation is still the caller's.
    NotStored(String),
    /// The ledger row moved on meanwhile (another replacement or a final state): read the row.
    Moved,
    /// The owner stopped while handling it; the ledger row tells (the reconciler finishes it).
    Lost(String),
}

pub(super) enum Command {
    /// Allocate, sign, store (reserved → submitted for every target) and broadcast.
    Submit {
        call: Call,
        targets: Vec<Target>,
        reply: oneshot::Sender<Vec<Placed>>,
    },
    /// Send a stored transaction again (re-signing it if its nonce was taken).
    Resubmit {
        tx_hash: B256,
        raw: Bytes,
        targets: Vec<Target>,
        reply: oneshot::Sender<Vec<Placed>>,
    },
    /// Compare the sequence with the chain now (as the periodic check does).
    CheckNonces { reply: oneshot::Sender<()> },
}

/// The way to one signer's nonce owner.
#[derive(Clone)]
pub struct SignerHandle {
    address: Address,
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for SignerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerHandle")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl SignerHandle {
    pub fn address(&self) -> Address {
        self.address
    }

    /// Sends `call` for `targets` (their rows must be reserved). One placement per target, in order.
    pub async fn submit(&self, call: Call, targets: Vec<Target>) -> Vec<Placed> {
        let n = targets.len();
        let (reply, answer) = oneshot::channel();
        self.ask(Command::Submit { call, targets, reply }, answer, n, true)
            .await
    }

    /// Sends the stored transaction `raw` (hash `tx_hash`, carrying `targets`) again.
    pub async fn resubmit(&self, tx_hash: B256, raw: Bytes, targets: Vec<Target>) -> Vec<Placed> {
        let n = targets.len();
        let (reply, answer) = oneshot::channel();
        let command = Command::Resubmit {
            tx_hash,
            raw,
            targets,
            reply,
        };
        self.ask(command, answer, n, false).await
    }

    /// Runs the gap check now and waits for it.
    pub async fn check_nonces(&self) {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::CheckNonces { reply }).await.is_ok() {
            let _ = answer.await;
        }
    }

    async fn ask(
        &self,
        command: Command,
        answer: oneshot::Receiver<Vec<Placed>>,
        n: usize,
        nothing_stored_if_unsent: bool,
    ) -> Vec<Placed> {
        let stopped = "the signer's nonce owner has stopped".to_owned();
        if self.commands.send(command).await.is_err() {
            let placed = if nothing_stored_if_unsent {
                Placed::NotStored(stopped)
            } else {
                Placed::Lost(stopped)
            };
            return vec![placed; n];
        }
        answer.await.unwrap_or_else(|_| vec![Placed::Lost(stopped); n])
    }
}

/// The settlement keys of one network, taken in turn.
#[derive(Debug, Clone)]
pub struct SignerPool {
    signers: Arc<Vec<SignerHandle>>,
    turn: Arc<AtomicUsize>,
}

impl SignerPool {
    /// Starts one nonce owner per key on `chain` (so it needs a Tokio runtime). At least one key is required.
    pub fn spawn(
        keys: Vec<PrivateKeySigner>,
        chain: ChainClient,
        ledger: Ledger,
        options: SignerOptions,
    ) -> Option<Self> {
        if keys.is_empty() {
            return None;
        }
        let signers = keys
            .into_iter()
            .map(|key| owner::spawn(key, chain.clone(), ledger.clone(), options))
            .collect();
        Some(SignerPool {
            signers: Arc::new(signers),
            turn: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The next signer, round-robin.
    pub fn next(&self) -> SignerHandle {
        let i = self.turn.fetch_add(1, Ordering::Relaxed) % self.signers.len();
        self.signers[i].clone()
    }

    /// The signer with this address, if it is one of ours (for reconciling a stored transaction).
    pub fn by_address(&self, address: Address) -> Option<SignerHandle> {
        self.signers.iter().find(|s| s.address == address).cloned()
    }

    pub fn addresses(&self) -> Vec<Address> {
        self.signers.iter().map(|s| s.address).collect()
    }

    /// The first settlement address (the one verify simulates from).
    pub fn primary(&self) -> Address {
        self.signers[0].address
    }

    /// Runs every owner's gap check now.
    pub async fn check_nonces(&self) {
        for signer in self.signers.iter() {
            signer.check_nonces().await;
        }
    }
}
