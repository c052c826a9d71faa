//! One settle, start to end, inside its own task: verify, take the payment's key in the ledger (or take back a
//! retryable failure of the same payload), hand the call to a signer's nonce owner (or the batcher), and wait —
//! bounded — for the receipt; or follow the row of whoever took the payment on first.

use std::time::Duration;

use alloy::primitives::B256;
use protocol::{SettleResponse, VerifyRequest, reason};

use super::Settler;
use super::answer::{failure, for_verdict, network_of, pending, response_for_record, unexpected};
use super::batch::BatchOutcome;
use super::signer::Placed;
use super::submit;
use super::verdict::{self, Target};
use crate::ledger::{NewSettlement, Reservation, SettlementRecord, SettlementState};
use crate::verify::{LedgerCheck, Payment, payment_from_request};

impl Settler {
    /// The whole settle (the caller runs it in a task of its own, so a dropped request cancels nothing).
    pub(super) async fn settle_to_end(&self, request: &VerifyRequest, now: u64) -> SettleResponse {
        let ledger = self.verifier.ledger();
        let payment = match self
            .verifier
            .verify(request, now, LedgerCheck::IgnoreOwnReservation)
            .await
        {
            Ok(payment) => payment,
            Err(invalid) => {
                // A payment this facilitator took on fails verify once it is settled (its nonce reads as used),
                // and its row was written before anything was sent: so look before answering the failure. A
                // resend, a racing request or another replica then gets that payment's own outcome.
                let Ok(payment) = payment_from_request(request, |n| self.verifier.chain(n).cloned()) else {
                    return failure(&invalid, network_of(request), None);
                };
                if let Ok(Some(row)) = ledger.get(&payment.key()).await {
                    return self.follow(row, &payment).await;
                }
                return failure(&invalid, &payment.chain.caip2, None);
            }
        };
        // A payment already in flight passes verify (its own reservation is ignored) and meets its row here.
        let key = payment.key();
        let new = NewSettlement {
            key: key.clone(),
            payload_hash: payment.payload_hash,
            pay_to: payment.pay_to,
            amount: payment.amount,
        };
        match ledger.reserve(&new).await {
            Ok(Reservation::Reserved) => self.drive(&payment).await,
            Ok(Reservation::Existing(row))
                if row.state == SettlementState::Failed
                    && row.retryable
                    && row.payload_hash == payment.payload_hash =>
            {
                // An earlier attempt failed for a reason that was not the payment's, and verify has just seen
                // the payment unused on chain and inside its window: take it on again.
                match ledger.retake(&key, payment.payload_hash).await {
                    Ok(true) => {
                        tracing::info!(payer = %key.payer, nonce = %key.nonce, "retrying a payment whose earlier settlement failed transiently");
                        self.drive(&payment).await
                    }
                    _ => match ledger.get(&key).await {
                        Ok(Some(row)) => self.follow(row, &payment).await,
                        _ => response_for_record(&row, payment.payer()),
                    },
                }
            }
            Ok(Reservation::Existing(row)) => self.follow(*row, &payment).await,
            Err(e) => unexpected(&payment, format!("reserving in the ledger: {e}")),
        }
    }

    /// Carries a payment this caller reserved to a final state (or to `settlement_pending`).
    async fn drive(&self, payment: &Payment) -> SettleResponse {
        let key = payment.key();
        let ledger = self.verifier.ledger();
        if let Some(batcher) = self.batchers.get(&key.network) {
            return match batcher.settle(payment.clone()).await {
                BatchOutcome::Finished(verdict, tx) => for_verdict(payment, &verdict, tx),
                BatchOutcome::Pending(tx, message) => pending(payment, tx, message),
                BatchOutcome::NotSent(message) => {
                    let _ = ledger.release_stale_reservation(&key, 0).await;
                    unexpected(payment, message)
                }
                BatchOutcome::FollowRow => self.follow_key(payment).await,
            };
        }
        let Some(pool) = self.pools.get(&key.network) else {
            let _ = ledger.release_stale_reservation(&key, 0).await;
            return unexpected(payment, "no settlement signer for this network".into());
        };
        let signer = pool.next();
        let call = match submit::settlement_call(&payment.chain, signer.address(), payment).await {
            Ok(call) => call,
            Err(e) => {
                // Nothing was signed, so nothing can be on chain: give the reservation back.
                let _ = ledger.release_stale_reservation(&key, 0).await;
                return unexpected(payment, format!("estimating the settlement's gas: {e}"));
            }
        };
        let gas = call.gas;
        let target = Target {
            key: key.clone(),
            amount: payment.amount,
        };
        let placed = signer.submit(call, vec![target]).await.into_iter().next();
        match placed {
            Some(Placed::InFlight(tx)) => self.finish(payment, tx, gas).await,
            Some(Placed::Uncertain(tx, message)) => pending(payment, tx, message),
            Some(Placed::Finished(verdict)) => for_verdict(payment, &verdict, None),
            Some(Placed::NotStored(message)) => {
                let _ = ledger.release_stale_reservation(&key, 0).await;
                unexpected(payment, message)
            }
            Some(Placed::Moved | Placed::Lost(_)) | None => self.follow_key(payment).await,
        }
    }

    /// Waits for the receipt of a broadcast settlement and records the outcome.
    async fn finish(&self, payment: &Payment, tx_hash: B256, gas_limit: u64) -> SettleResponse {
        let chain = &payment.chain;
        match submit::poll_receipt(chain, tx_hash, self.config.receipt_timeout).await {
            Ok(Some(mined)) => {
                let target = Target {
                    key: payment.key(),
                    amount: payment.amount,
                };
                let verdicts = verdict::record_mined(
                    chain,
                    self.verifier.ledger(),
                    tx_hash,
                    &mined,
                    gas_limit,
                    std::slice::from_ref(&target),
                    "the settlement transaction reverted",
                )
                .await;
                match verdicts.first() {
                    Some(verdict) => for_verdict(payment, verdict, Some(tx_hash)),
                    None => pending(payment, tx_hash, "the outcome was not recorded".into()),
                }
            }
            Ok(None) => pending(payment, tx_hash, "not confirmed within the receipt timeout".into()),
            Err(e) => pending(payment, tx_hash, format!("reading the receipt: {e}")),
        }
    }

    /// Follows the payment's row as it is now.
    async fn follow_key(&self, payment: &Payment) -> SettleResponse {
        match self.verifier.ledger().get(&payment.key()).await {
            Ok(Some(row)) => self.follow(row, payment).await,
            Ok(None) => unexpected(payment, "the attempt was abandoned before sending".into()),
            Err(e) => unexpected(payment, format!("reading the ledger: {e}")),
        }
    }

    /// Answers for a payment someone else (another request, an earlier run, another replica) has taken on.
    async fn follow(&self, row: SettlementRecord, payment: &Payment) -> SettleResponse {
        if row.payload_hash != payment.payload_hash {
            return failure(
                &payment.invalid(
                    reason::DUPLICATE_SETTLEMENT,
                    "this nonce belongs to a different payment that was already taken on",
                ),
                &row.key.network,
                row.tx_hash,
            );
        }
        let deadline = tokio::time::Instant::now() + self.config.receipt_timeout;
        let mut row = row;
        let mut interval = Duration::from_millis(10);
        while !row.state.is_final() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(Duration::from_millis(200));
            match self.verifier.ledger().get(&row.key).await {
                Ok(Some(fresh)) => row = fresh,
                // A released reservation: the payment was never sent; the caller may settle again.
                Ok(None) => return unexpected(payment, "the earlier attempt was abandoned before sending".into()),
                Err(_) => {}
            }
        }
        response_for_record(&row, payment.payer())
    }
}
