//! Getting one in-flight transaction into the node, acting on each kind of refusal: "already known" counts as
//! submitted; "underpriced" re-signs the same nonce with higher fees; "nonce too low" means the nonce is used —
//! the payments the chain shows as used are confirmed, expired ones fail, and the rest move to a fresh nonce
//! (one transaction for all of them); "insufficient funds" and "exceeds block gas limit" give the transaction
//! up (its nonce is released when it is the newest) and fail its payments as retryable; unknown errors and
//! transport faults are retried, then given up or left in flight.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::primitives::U256;
use protocol::reason;
use tokio::time::Instant;

use super::Placed;
use super::owner::{InFlight, Owner};
use crate::ledger::Failure;
use crate::settle::calls;
use crate::settle::node_error::{Action, Refusal, RefusalKind, broadcast};
use crate::settle::submit;
use crate::settle::verdict::{self, Target, Verdict};

/// How often each action is tried for one transaction before the owner stops.
const MAX_RETRIES: u32 = 3;
const MAX_BUMPS: u32 = 3;
const MAX_MOVES: u32 = 3;
/// An authorization this close to its `validBefore` is not re-signed: it would expire on the way.
const EXPIRY_MARGIN_SECS: u64 = 5;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Owner {
    /// Broadcasts the transaction in flight at `nonce` until the node holds it or the owner gives it up. One
    /// placement per target it carried, in order.
    pub(super) async fn push(&mut self, nonce: u64) -> Vec<Placed> {
        let Some(entry) = self.in_flight.get(&nonce) else {
            return Vec::new();
        };
        // Every target keeps its position in the answer even when the transaction carrying it changes.
        let order: Vec<_> = entry.targets.iter().map(|t| t.key.clone()).collect();
        let mut finished: Vec<(crate::ledger::SettlementKey, Placed)> = Vec::new();
        let (mut nonce, mut retries, mut bumps, mut moves) = (nonce, 0, 0, 0);
        let last: Vec<(crate::ledger::SettlementKey, Placed)> = loop {
            let Some(entry) = self.in_flight.get(&nonce).cloned() else {
                break Vec::new();
            };
            let with =
                |placed: Placed| -> Vec<_> { entry.targets.iter().map(|t| (t.key.clone(), placed.clone())).collect() };
            let refusal = match broadcast(&self.chain, &entry.raw).await {
                Ok(()) => break with(Placed::InFlight(entry.hash)),
                Err(refusal) => refusal,
            };
            tracing::warn!(signer = %self.address, nonce, kind = refusal.kind.as_str(), message = %refusal.message, "broadcast refused");
            match refusal.kind.action() {
                Action::MarkSubmitted => break with(Placed::InFlight(entry.hash)),
                Action::Retry if retries < MAX_RETRIES => {
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(50 << retries)).await;
                }
                Action::Retry if refusal.kind == RefusalKind::Transport => {
                    break with(Placed::Uncertain(entry.hash, refusal.message.clone()));
                }
                Action::BumpFee if bumps < MAX_BUMPS => {
                    bumps += 1;
                    if let Err(placed) = self.bump_fee(nonce, &entry).await {
                        break with(placed);
                    }
                }
                Action::Resync if moves < MAX_MOVES => {
                    moves += 1;
                    match self.move_on(nonce, entry).await {
                        Moved::To(fresh, done) => {
                            finished.extend(done);
                            nonce = fresh;
                        }
                        Moved::Done(done) => break done,
                    }
                }
                Action::Retry | Action::BumpFee | Action::Resync | Action::FailWithReason => {
                    break self.give_up(nonce, &entry, &refusal).await;
                }
            }
        };
        finished.extend(last);
        order
            .iter()
            .map(|key| {
                finished
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, placed)| placed.clone())
                    .unwrap_or(Placed::Moved)
            })
            .collect()
    }

    /// Re-signs the call at the same nonce with higher fees and moves the rows to it.
    async fn bump_fee(&mut self, nonce: u64, entry: &InFlight) -> Result<(), Placed> {
        let current = match self.chain.fees().await {
            Ok(fees) => fees.into(),
            Err(_) => entry.fees,
        };
        let fees = entry.fees.bumped(current);
        let signed = self
            .sign_at(&entry.call, nonce, Some(fees))
            .await
            .map_err(|message| Placed::Uncertain(entry.hash, message))?;
        self.replace(entry, &signed).await?;
        tracing::info!(signer = %self.address, nonce, old = %entry.hash, new = %signed.hash, "fee bumped");
        self.in_flight.insert(
            nonce,
            InFlight {
                hash: signed.hash,
                raw: signed.raw,
                fees: signed.fees,
                sent_at: Instant::now(),
                ..entry.clone()
            },
        );
        Ok(())
    }

    /// Moves the ledger rows of `entry` to `signed`; the rows must still hold `entry`'s transaction.
    async fn replace(&self, entry: &InFlight, signed: &submit::Signed) -> Result<(), Placed> {
        if entry.targets.is_empty() {
            return Ok(());
        }
        let keys: Vec<_> = entry.targets.iter().map(|t| t.key.clone()).collect();
        match self
            .ledger
            .replace_submissions(&keys, entry.hash, signed.hash, &signed.raw, self.address, signed.nonce)
            .await
        {
            Ok(0) => Err(Placed::Moved),
            Ok(_) => Ok(()),
            Err(e) => Err(Placed::Uncertain(entry.hash, format!("recording the replacement: {e}"))),
        }
    }

    /// The nonce of `entry` is used on chain. If `entry` itself was mined, its receipt tells; otherwise each
    /// payment is looked up on chain, and those still to settle move to one new transaction at a fresh nonce.
    async fn move_on(&mut self, nonce: u64, entry: InFlight) -> Moved {
        let placed_all =
            |placed: Placed| -> Vec<_> { entry.targets.iter().map(|t| (t.key.clone(), placed.clone())).collect() };
        match submit::poll_receipt(&self.chain, entry.hash, Duration::ZERO).await {
            Ok(Some(_)) => {
                self.in_flight.remove(&nonce);
                return Moved::Done(placed_all(Placed::InFlight(entry.hash)));
            }
            Ok(None) => {}
            Err(e) => return Moved::Done(placed_all(Placed::Uncertain(entry.hash, e.to_string()))),
        }
        // Not mined, and its nonce is gone: this transaction can never be mined.
        self.in_flight.remove(&nonce);
        let carried = calls::authorizations(&entry.call);
        let mut done = Vec::new();
        let mut remaining: Vec<Target> = Vec::new();
        for target in &entry.targets {
            let key = &target.key;
            match self.chain.authorization_used(key.asset, key.payer, key.nonce).await {
                Ok(true) => {
                    let verdict = verdict::confirm_used(&self.chain, &self.ledger, key, None).await;
                    done.push((key.clone(), Placed::Finished(verdict)));
                    continue;
                }
                Ok(false) => {}
                Err(e) => {
                    // Undecidable now: keep it in flight under its old transaction for the next pass.
                    self.in_flight.insert(nonce, entry.clone());
                    return Moved::Done(placed_all(Placed::Uncertain(entry.hash, e.to_string())));
                }
            }
            let expired = carried
                .iter()
                .find(|c| c.is(key))
                .is_some_and(|c| c.valid_before <= U256::from(unix_now() + EXPIRY_MARGIN_SECS));
            if expired {
                let failure = Failure::permanent(
                    reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_BEFORE,
                    "the authorization expired before its settlement could be mined",
                );
                let verdict = verdict::fail_unless_used(&self.chain, &self.ledger, key, failure, None).await;
                done.push((key.clone(), Placed::Finished(verdict)));
                continue;
            }
            remaining.push(target.clone());
        }
        let narrowed = calls::narrowed(&entry.call, |c| remaining.iter().any(|t| c.is(&t.key)));
        let Some(call) = narrowed.filter(|_| !remaining.is_empty()) else {
            return Moved::Done(done);
        };
        // A fresh nonce: never below what the chain has already counted.
        if let Ok(counts) = self.chain.nonce_counts(self.address).await {
            self.next = Some(self.next.unwrap_or(0).max(counts.pending).max(counts.latest));
        }
        let fresh = self.next.unwrap_or(nonce + 1);
        let signed = match self.sign_at(&call, fresh, None).await {
            Ok(signed) => signed,
            Err(message) => {
                done.extend(
                    remaining
                        .iter()
                        .map(|t| (t.key.clone(), Placed::Uncertain(entry.hash, message.clone()))),
                );
                return Moved::Done(done);
            }
        };
        let moving = InFlight {
            targets: remaining.clone(),
            ..entry.clone()
        };
        if let Err(placed) = self.replace(&moving, &signed).await {
            done.extend(remaining.iter().map(|t| (t.key.clone(), placed.clone())));
            return Moved::Done(done);
        }
        self.next = Some(fresh + 1);
        tracing::warn!(signer = %self.address, old_nonce = nonce, nonce = fresh, old = %entry.hash, new = %signed.hash, payments = remaining.len(), "nonce was taken; re-signed at a fresh nonce");
        self.in_flight.insert(
            fresh,
            InFlight {
                hash: signed.hash,
                raw: signed.raw,
                call,
                fees: signed.fees,
                targets: remaining,
                sent_at: Instant::now(),
            },
        );
        Moved::To(fresh, done)
    }

    /// The node will not take the transaction. If it is the newest, its nonce is released and its payments fail
    /// (retryable, unless the chain shows them used); otherwise it stays in flight for the gap check.
    async fn give_up(
        &mut self,
        nonce: u64,
        entry: &InFlight,
        refusal: &Refusal,
    ) -> Vec<(crate::ledger::SettlementKey, Placed)> {
        let message = format!(
            "the node refused the settlement transaction ({}): {}",
            refusal.kind.as_str(),
            refusal.message
        );
        if self.next != Some(nonce + 1) {
            return entry
                .targets
                .iter()
                .map(|t| (t.key.clone(), Placed::Uncertain(entry.hash, message.clone())))
                .collect();
        }
        self.in_flight.remove(&nonce);
        self.next = Some(nonce);
        let mut placed = Vec::with_capacity(entry.targets.len());
        for target in &entry.targets {
            let failure = Failure::transient(reason::UNEXPECTED_SETTLE_ERROR, message.clone());
            let verdict = verdict::fail_unless_used(&self.chain, &self.ledger, &target.key, failure, None).await;
            if let Verdict::Unknown(why) = &verdict {
                tracing::error!(payer = %target.key.payer, %why, "a refused settlement could not be recorded");
            }
            placed.push((target.key.clone(), Placed::Finished(verdict)));
        }
        placed
    }
}

/// What became of a transaction whose nonce was taken.
enum Moved {
    /// Its remaining payments now ride the transaction at this nonce; these were finished on the way.
    To(u64, Vec<(crate::ledger::SettlementKey, Placed)>),
    /// Nothing more to send.
    Done(Vec<(crate::ledger::SettlementKey, Placed)>),
}
