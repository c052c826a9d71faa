//! Building, signing and broadcasting one settlement transaction, and waiting (bounded) for its receipt.
//! The signed raw transaction is stored in the ledger *before* it is broadcast, so a crash at any point leaves
//! a row from which the same transaction — never a second one — can be rebroadcast.

use std::time::Duration;

use alloy::eips::eip2718::Encodable2718;
use alloy::network::{NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolEvent;

use super::signer::SettlementSigner;
use crate::chain::token::{IFiatToken, transfer_with_authorization_calldata};
use crate::chain::{ChainClient, ChainError};
use crate::verify::Payment;

/// Gas for `transferWithAuthorization` with a 65-byte signature (~86.5k measured) with headroom; contract
/// wallets are estimated instead.
const EOA_SETTLEMENT_GAS: u64 = 150_000;

/// A signed settlement transaction.
#[derive(Debug, Clone)]
pub struct SignedSettlement {
    pub hash: B256,
    pub raw: Bytes,
    pub signer: Address,
    pub nonce: u64,
}

/// How a broadcast transaction ended, as far as we waited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Mined and the token recorded the authorization as used.
    Confirmed,
    /// Mined and reverted (or mined without using the authorization).
    Reverted,
    /// No receipt within the wait.
    Pending,
}

/// `transferWithAuthorization(…, bytes signature)` calldata for a payment.
pub fn calldata(payment: &Payment) -> Bytes {
    transfer_with_authorization_calldata(&payment.authorization, &payment.signature)
}

/// Signs a call from `signer` with a freshly allocated nonce and the chain's current EIP-1559 fees.
pub async fn sign_call(
    chain: &ChainClient,
    signer: &SettlementSigner,
    to: Address,
    input: Bytes,
    gas: Option<u64>,
) -> Result<SignedSettlement, ChainError> {
    let fees = chain.fees().await?;
    let mut request = TransactionRequest::default()
        .with_from(signer.address())
        .with_to(to)
        .with_input(input)
        .with_value(U256::ZERO)
        .with_chain_id(chain.chain_id())
        .with_max_fee_per_gas(fees.max_fee_per_gas)
        .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
    let gas = match gas {
        Some(gas) => gas,
        None => {
            let estimate = chain
                .provider()
                .estimate_gas(request.clone())
                .await
                .map_err(|e| ChainError::Rpc(e.to_string()))?;
            estimate.saturating_mul(13) / 10
        }
    };
    let nonce = signer.allocate_nonce(chain).await?;
    request = request.with_gas_limit(gas).with_nonce(nonce);
    let envelope = request
        .build(signer.wallet())
        .await
        .map_err(|e| ChainError::Rpc(format!("signing: {e}")))?;
    Ok(SignedSettlement {
        hash: *envelope.tx_hash(),
        raw: envelope.encoded_2718().into(),
        signer: signer.address(),
        nonce,
    })
}

/// Signs the settlement of one payment.
pub async fn sign_settlement(
    chain: &ChainClient,
    signer: &SettlementSigner,
    payment: &Payment,
) -> Result<SignedSettlement, ChainError> {
    let gas = (payment.signature.len() == 65).then_some(EOA_SETTLEMENT_GAS);
    sign_call(chain, signer, payment.asset.address, calldata(payment), gas).await
}

/// Broadcasts a signed transaction. A node that already has it (or has mined it) is not an error.
pub async fn broadcast(chain: &ChainClient, raw: &Bytes) -> Result<(), BroadcastError> {
    match chain.provider().send_raw_transaction(raw).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let text = e.to_string().to_lowercase();
            if text.contains("already known") || text.contains("already imported") {
                Ok(())
            } else if text.contains("nonce too low") || text.contains("replacement") || text.contains("nonce") {
                Err(BroadcastError::NonceRefused(e.to_string()))
            } else if e.is_error_resp() {
                Err(BroadcastError::Refused(e.to_string()))
            } else {
                Err(BroadcastError::Transport(e.to_string()))
            }
        }
    }
}

/// Why a broadcast did not go through.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BroadcastError {
    /// The node refused the nonce: the transaction is not in its pool.
    #[error("the node refused the transaction's nonce: {0}")]
    NonceRefused(String),
    /// The node refused the transaction for another reason: it is not in its pool.
    #[error("the node refused the transaction: {0}")]
    Refused(String),
    /// The request may or may not have reached the node.
    #[error("broadcast failed in transport: {0}")]
    Transport(String),
}

/// A mined transaction as payments see it: whether it succeeded, and every `(token, authorizer, nonce)` whose
/// authorization it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mined {
    pub succeeded: bool,
    pub used: Vec<(Address, Address, B256)>,
}

/// Polls for the receipt (with back-off, 20 ms up to 250 ms) until `wait` has passed; `None` if none came.
pub async fn poll_receipt(chain: &ChainClient, tx_hash: B256, wait: Duration) -> Result<Option<Mined>, ChainError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut interval = Duration::from_millis(20);
    loop {
        let receipt = chain
            .provider()
            .get_transaction_receipt(tx_hash)
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))?;
        if let Some(receipt) = receipt {
            let used = receipt
                .inner
                .logs()
                .iter()
                .filter_map(|log| {
                    IFiatToken::AuthorizationUsed::decode_log_data(log.data())
                        .ok()
                        .map(|e| (log.address(), e.authorizer, e.nonce))
                })
                .collect();
            return Ok(Some(Mined {
                succeeded: receipt.status(),
                used,
            }));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(interval.min(deadline - tokio::time::Instant::now())).await;
        interval = (interval * 2).min(Duration::from_millis(250));
    }
}

/// Waits (bounded) for a transaction's outcome; with `payment_check = (token, payer, nonce)` it is confirmed
/// only if it used that payment's authorization.
pub async fn await_outcome(
    chain: &ChainClient,
    tx_hash: B256,
    payment_check: Option<(Address, Address, B256)>,
    wait: Duration,
) -> Result<Outcome, ChainError> {
    Ok(match poll_receipt(chain, tx_hash, wait).await? {
        None => Outcome::Pending,
        Some(mined) if !mined.succeeded => Outcome::Reverted,
        Some(mined) => match payment_check {
            Some(payment) if !mined.used.contains(&payment) => Outcome::Reverted,
            _ => Outcome::Confirmed,
        },
    })
}
