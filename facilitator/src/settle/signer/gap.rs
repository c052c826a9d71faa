//! The nonce gap check. Transactions behind a missing nonce queue in the node and never mine; the chain's
//! pending count then stays below the owner's next nonce. When that lasts longer than `resync_after` (counted
//! from the oldest transaction still in flight), every nonce of the gap is sent again: the stored transaction
//! there (same bytes; re-signed by the push rules if the node wants that), or — for a nonce no payment holds — a
//! zero-value transfer to the signer itself that just closes the gap.

use alloy::primitives::Bytes;
use tokio::time::Instant;

use super::owner::{InFlight, Owner};
use crate::settle::submit::Call;

/// Gas of a plain transfer (the gap filler).
const TRANSFER_GAS: u64 = 21_000;

impl Owner {
    /// Compares the sequence with the chain; prunes what was mined and re-sends a gap that has lasted.
    pub(super) async fn check_gap(&mut self) {
        let Some(next) = self.next else { return };
        if self.in_flight.is_empty() {
            return;
        }
        let Ok(counts) = self.chain.nonce_counts(self.address).await else {
            return;
        };
        // Mined (by whichever transaction): nothing of ours is in flight below the chain's count.
        self.in_flight.retain(|nonce, _| *nonce >= counts.latest);
        if counts.latest > next {
            // Someone else used this key: carry on above what the chain has.
            tracing::warn!(signer = %self.address, next, chain = counts.latest, "the chain is ahead of the nonce owner");
            self.next = Some(counts.pending.max(counts.latest));
            return;
        }
        if counts.pending >= next {
            return;
        }
        let Some(oldest) = self
            .in_flight
            .range(counts.pending..)
            .map(|(_, entry)| entry.sent_at)
            .min()
        else {
            return;
        };
        if oldest.elapsed() < self.options.resync_after {
            return;
        }
        tracing::warn!(signer = %self.address, chain_pending = counts.pending, next, "nonce gap: re-sending from the chain's pending nonce");
        for nonce in counts.pending..next {
            if !self.in_flight.contains_key(&nonce) && !self.fill(nonce).await {
                break;
            }
            let placed = self.push(nonce).await;
            tracing::info!(signer = %self.address, nonce, ?placed, "gap nonce re-sent");
            if let Some(entry) = self.in_flight.get_mut(&nonce) {
                entry.sent_at = Instant::now();
            }
        }
    }

    /// Puts a zero-value transfer to the signer itself at `nonce` (a nonce nothing of ours holds).
    async fn fill(&mut self, nonce: u64) -> bool {
        let call = Call {
            to: self.address,
            input: Bytes::new(),
            gas: TRANSFER_GAS,
        };
        match self.sign_at(&call, nonce, None).await {
            Ok(signed) => {
                tracing::warn!(signer = %self.address, nonce, tx = %signed.hash, "filling a nonce gap nothing holds");
                self.in_flight.insert(
                    nonce,
                    InFlight {
                        hash: signed.hash,
                        raw: signed.raw,
                        call,
                        fees: signed.fees,
                        targets: Vec::new(),
                        sent_at: Instant::now(),
                    },
                );
                true
            }
            Err(message) => {
                tracing::warn!(signer = %self.address, nonce, %message, "cannot sign a gap filler");
                false
            }
        }
    }
}
