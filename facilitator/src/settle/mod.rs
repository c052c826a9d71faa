//! Settlement, exactly once per (network, asset, payer, nonce). The key is reserved in the ledger before
//! anything is signed; the signed transaction is stored before it is broadcast; the receipt is awaited for a
//! bounded time. A second settle of the same payload gets the same outcome and transaction; a different
//! payload that reuses the nonce gets `duplicate_settlement`; a payment the chain has not confirmed in time
//! gets `settlement_pending` with its transaction, and the [`reconcile`] loop finishes it in the background.

pub mod batch;
pub mod reconcile;
pub mod signer;
pub mod submit;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use protocol::{SettleResponse, SupportedKind, SupportedResponse, VerifyRequest, reason};

use crate::ledger::{NewSettlement, Reservation, SettlementRecord, SettlementState};
use crate::verify::{Invalid, LedgerCheck, Payment, Verifier, payment_from_request};
use signer::SignerPool;
use submit::{BroadcastError, Outcome};

/// Settlement settings.
#[derive(Debug, Clone)]
pub struct SettleConfig {
    /// How long a settle waits for the receipt before answering `settlement_pending`.
    pub receipt_timeout: Duration,
    /// A reservation this old that never got a signed transaction is released by the reconciler.
    pub stale_reservation_secs: i64,
    /// Batch settlement through Multicall3 (off by default: single transactions).
    pub batch: Option<batch::BatchConfig>,
}

impl Default for SettleConfig {
    fn default() -> Self {
        SettleConfig {
            receipt_timeout: Duration::from_secs(10),
            stale_reservation_secs: 120,
            batch: None,
        }
    }
}

/// The settle engine.
#[derive(Clone)]
pub struct Settler {
    verifier: Verifier,
    pools: Arc<HashMap<String, SignerPool>>,
    batchers: Arc<HashMap<String, batch::Batcher>>,
    config: Arc<SettleConfig>,
}

impl Settler {
    /// `pools` maps each CAIP-2 network to its settlement signers. With batching configured this spawns one
    /// batching task per network (so it needs a Tokio runtime).
    pub fn new(verifier: Verifier, pools: HashMap<String, SignerPool>, config: SettleConfig) -> Self {
        let mut batchers = HashMap::new();
        if let Some(batch_config) = config.batch {
            for chain in verifier.chains() {
                if let Some(pool) = pools.get(&*chain.caip2) {
                    let batcher = batch::Batcher::spawn(
                        chain.clone(),
                        pool.clone(),
                        verifier.ledger().clone(),
                        batch_config,
                        config.receipt_timeout,
                    );
                    batchers.insert(chain.caip2.to_string(), batcher);
                }
            }
        }
        Settler {
            verifier,
            pools: Arc::new(pools),
            batchers: Arc::new(batchers),
            config: Arc::new(config),
        }
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    pub fn pool(&self, network: &str) -> Option<&SignerPool> {
        self.pools.get(network)
    }

    pub fn pools(&self) -> &HashMap<String, SignerPool> {
        &self.pools
    }

    pub fn config(&self) -> &SettleConfig {
        &self.config
    }

    /// The `/supported` answer: both protocol versions for every configured network, and the settlement
    /// signers' addresses.
    pub fn supported(&self) -> SupportedResponse {
        let mut answer = SupportedResponse::default();
        for chain in self.verifier.chains() {
            answer.kinds.push(SupportedKind {
                x402_version: 2,
                scheme: protocol::SCHEME_EXACT.into(),
                network: chain.caip2.to_string(),
                extra: None,
            });
            answer.kinds.push(SupportedKind {
                x402_version: 1,
                scheme: protocol::SCHEME_EXACT.into(),
                network: chain.network.name.clone(),
                extra: None,
            });
        }
        answer
            .kinds
            .sort_by(|a, b| (b.x402_version, &a.network).cmp(&(a.x402_version, &b.network)));
        let mut signers: Vec<String> = self
            .pools
            .values()
            .flat_map(|pool| pool.addresses())
            .map(|a| a.to_checksum(None))
            .collect();
        signers.sort();
        signers.dedup();
        answer.signers.insert("eip155:*".into(), signers);
        answer
    }

    /// Settles a payment (or reports how an earlier settle of it went).
    pub async fn settle(&self, request: &VerifyRequest, now: u64) -> SettleResponse {
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
                batch::BatchOutcome::Confirmed(tx) => success(payment, tx),
                batch::BatchOutcome::Failed(tx) => failure(
                    &payment.invalid(
                        reason::INVALID_EXACT_EVM_TRANSACTION_FAILED,
                        "the payment's call failed in its batch",
                    ),
                    &key.network,
                    Some(tx),
                ),
                batch::BatchOutcome::Pending(tx) => {
                    pending(payment, tx, "not confirmed within the receipt timeout".into())
                }
                batch::BatchOutcome::NotSent(message) => {
                    let _ = ledger.release_stale_reservation(&key, 0).await;
                    unexpected(payment, message)
                }
            };
        }
        let Some(pool) = self.pools.get(&key.network) else {
            let _ = ledger.release_stale_reservation(&key, 0).await;
            return unexpected(payment, "no settlement signer for this network".into());
        };
        let signer = pool.next();
        let mut signed = match submit::sign_settlement(&payment.chain, &signer, payment).await {
            Ok(signed) => signed,
            Err(e) => {
                // Nothing was signed, so nothing can be on chain: give the reservation back.
                signer.resync().await;
                let _ = ledger.release_stale_reservation(&key, 0).await;
                return unexpected(payment, format!("signing the settlement: {e}"));
            }
        };
        match ledger
            .mark_submitted(&key, signed.hash, &signed.raw, signed.signer, signed.nonce)
            .await
        {
            Ok(true) => {}
            Ok(false) => return unexpected(payment, "the reservation was lost before submission".into()),
            Err(e) => {
                // The transaction was never broadcast; the stale reservation is released later.
                signer.resync().await;
                return unexpected(payment, format!("recording the transaction: {e}"));
            }
        }
        let mut attempts = 0;
        loop {
            match submit::broadcast(&payment.chain, &signed.raw).await {
                Ok(()) => break,
                Err(BroadcastError::NonceRefused(message)) if attempts < 3 => {
                    attempts += 1;
                    tracing::warn!(signer = %signed.signer, nonce = signed.nonce, %message, "nonce refused; re-signing");
                    signer.resync().await;
                    let fresh = match submit::sign_settlement(&payment.chain, &signer, payment).await {
                        Ok(fresh) => fresh,
                        Err(e) => return pending(payment, signed.hash, format!("re-signing: {e}")),
                    };
                    match ledger
                        .replace_submission(&key, signed.hash, fresh.hash, &fresh.raw, fresh.signer, fresh.nonce)
                        .await
                    {
                        Ok(true) => signed = fresh,
                        _ => return pending(payment, signed.hash, "the ledger row changed while re-signing".into()),
                    }
                }
                Err(BroadcastError::NonceRefused(message) | BroadcastError::Refused(message)) => {
                    signer.resync().await;
                    let _ = ledger
                        .mark_failed(&key, reason::INVALID_EXACT_EVM_TRANSACTION_FAILED, &message, None)
                        .await;
                    return failure(
                        &payment.invalid(reason::INVALID_EXACT_EVM_TRANSACTION_FAILED, message),
                        &key.network,
                        None,
                    );
                }
                Err(BroadcastError::Transport(message)) => {
                    // It may have reached the node: the reconciler rebroadcasts the same bytes.
                    return pending(payment, signed.hash, message);
                }
            }
        }
        self.finish(payment, signed.hash).await
    }

    /// Waits for the receipt of a broadcast settlement and records the outcome.
    async fn finish(&self, payment: &Payment, tx_hash: alloy::primitives::B256) -> SettleResponse {
        let key = payment.key();
        let ledger = self.verifier.ledger();
        let check = Some((key.asset, key.payer, key.nonce));
        match submit::await_outcome(&payment.chain, tx_hash, check, self.config.receipt_timeout).await {
            Ok(Outcome::Confirmed) => {
                if let Err(e) = ledger.mark_confirmed(&key, tx_hash).await {
                    tracing::error!(%tx_hash, error = %e, "confirmed on chain but not recorded; the reconciler will");
                }
                success(payment, tx_hash)
            }
            Ok(Outcome::Reverted) => {
                let message = "the settlement transaction reverted";
                let _ = ledger
                    .mark_failed(
                        &key,
                        reason::INVALID_EXACT_EVM_TRANSACTION_FAILED,
                        message,
                        Some(tx_hash),
                    )
                    .await;
                failure(
                    &payment.invalid(reason::INVALID_EXACT_EVM_TRANSACTION_FAILED, message),
                    &key.network,
                    Some(tx_hash),
                )
            }
            Ok(Outcome::Pending) => pending(payment, tx_hash, "not confirmed within the receipt timeout".into()),
            Err(e) => pending(payment, tx_hash, format!("reading the receipt: {e}")),
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

/// The answer a ledger row stands for.
pub fn response_for_record(row: &SettlementRecord, payer: alloy::primitives::Address) -> SettleResponse {
    let tx = row.tx_hash.map(|h| h.to_string()).unwrap_or_default();
    let base = SettleResponse {
        success: false,
        error_reason: None,
        error_message: None,
        payer: Some(payer),
        transaction: tx,
        network: row.key.network.clone(),
        amount: Some(row.amount),
    };
    match row.state {
        SettlementState::Confirmed => SettleResponse { success: true, ..base },
        SettlementState::Failed => SettleResponse {
            error_reason: row
                .error_reason
                .clone()
                .or_else(|| Some(reason::UNEXPECTED_SETTLE_ERROR.into())),
            error_message: row.error_message.clone(),
            ..base
        },
        SettlementState::Reserved | SettlementState::Submitted => SettleResponse {
            error_reason: Some(reason::SETTLEMENT_PENDING.into()),
            error_message: Some("the settlement is not final yet; settle again or query its status".into()),
            ..base
        },
    }
}

fn network_of(request: &VerifyRequest) -> &str {
    match request {
        VerifyRequest::V1(r) => &r.payment_requirements.network,
        VerifyRequest::V2(r) => &r.payment_requirements.network,
    }
}

fn success(payment: &Payment, tx_hash: alloy::primitives::B256) -> SettleResponse {
    SettleResponse {
        success: true,
        error_reason: None,
        error_message: None,
        payer: Some(payment.payer()),
        transaction: tx_hash.to_string(),
        network: payment.chain.caip2.to_string(),
        amount: Some(payment.amount),
    }
}

fn failure(invalid: &Invalid, network: &str, tx_hash: Option<alloy::primitives::B256>) -> SettleResponse {
    SettleResponse {
        success: false,
        error_reason: Some(invalid.reason.to_owned()),
        error_message: Some(invalid.message.clone()),
        payer: invalid.payer,
        transaction: tx_hash.map(|h| h.to_string()).unwrap_or_default(),
        network: network.to_owned(),
        amount: None,
    }
}

fn pending(payment: &Payment, tx_hash: alloy::primitives::B256, message: String) -> SettleResponse {
    SettleResponse {
        success: false,
        error_reason: Some(reason::SETTLEMENT_PENDING.into()),
        error_message: Some(message),
        payer: Some(payment.payer()),
        transaction: tx_hash.to_string(),
        network: payment.chain.caip2.to_string(),
        amount: Some(payment.amount),
    }
}

fn unexpected(payment: &Payment, message: String) -> SettleResponse {
    failure(
        &payment.invalid(reason::UNEXPECTED_SETTLE_ERROR, message),
        &payment.chain.caip2,
        None,
    )
}
