//! Settlement transactions as values: the call a payment (or a batch) makes, its fees, signing it at a given
//! nonce, and reading its receipt (bounded polling). Which nonce a transaction gets, when it is stored and how
//! it is broadcast belong to the signer's nonce owner ([`super::signer`]).

use std::time::Duration;

use alloy::eips::eip1559::Eip1559Estimation;
use alloy::eips::eip2718::Encodable2718;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolEvent;

use crate::chain::token::{IFiatToken, transfer_with_authorization_calldata};
use crate::chain::{ChainClient, ChainError};
use crate::verify::Payment;

/// Gas for `transferWithAuthorization` with a 65-byte signature (~86.5k measured) with headroom; contract
/// wallets are estimated instead.
pub const EOA_SETTLEMENT_GAS: u64 = 150_000;

/// What a transaction does: call `to` with `input`, with at most `gas`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub to: Address,
    pub input: Bytes,
    pub gas: u64,
}

/// EIP-1559 fees of one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fees {
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: u128,
}

impl From<Eip1559Estimation> for Fees {
    fn from(e: Eip1559Estimation) -> Self {
        Fees {
            max_fee_per_gas: e.max_fee_per_gas,
            max_priority_fee_per_gas: e.max_priority_fee_per_gas,
        }
    }
}

impl Fees {
    /// Fees that replace a transaction paying `self` (nodes want both fees ≥ 10 % higher; this is 12.5 % and one
    /// wei), and never below the chain's `current` fees.
    pub fn bumped(self, current: Fees) -> Fees {
        let bump = |old: u128| old.saturating_add(old / 8).saturating_add(1);
        let max_priority_fee_per_gas = bump(self.max_priority_fee_per_gas).max(current.max_priority_fee_per_gas);
        let max_fee_per_gas = bump(self.max_fee_per_gas)
            .max(current.max_fee_per_gas)
            .max(max_priority_fee_per_gas);
        Fees {
            max_fee_per_gas,
            max_priority_fee_per_gas,
        }
    }
}

/// A signed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub hash: B256,
    pub raw: Bytes,
    pub nonce: u64,
    pub fees: Fees,
}

/// `transferWithAuthorization(…, bytes signature)` calldata for a payment.
pub fn calldata(payment: &Payment) -> Bytes {
    transfer_with_authorization_calldata(&payment.authorization, &payment.signature)
}

/// The call that settles one payment from `from`: a fixed gas limit for EOA signatures, an estimate (with 30 %
/// headroom) for contract wallets.
pub async fn settlement_call(chain: &ChainClient, from: Address, payment: &Payment) -> Result<Call, ChainError> {
    let (to, input) = (payment.asset.address, calldata(payment));
    let gas = if payment.signature.len() == 65 {
        EOA_SETTLEMENT_GAS
    } else {
        let request = TransactionRequest::default()
            .with_from(from)
            .with_to(to)
            .with_input(input.clone());
        let estimate = chain
            .provider()
            .estimate_gas(request)
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))?;
        estimate.saturating_mul(13) / 10
    };
    Ok(Call { to, input, gas })
}

/// Signs `call` from `wallet`'s key at `nonce` with `fees`.
pub async fn sign(
    wallet: &EthereumWallet,
    from: Address,
    chain_id: u64,
    call: &Call,
    nonce: u64,
    fees: Fees,
) -> Result<Signed, ChainError> {
    let envelope = TransactionRequest::default()
        .with_from(from)
        .with_to(call.to)
        .with_input(call.input.clone())
        .with_value(U256::ZERO)
        .with_chain_id(chain_id)
        .with_max_fee_per_gas(fees.max_fee_per_gas)
        .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas)
        .with_gas_limit(call.gas)
        .with_nonce(nonce)
        .build(wallet)
        .await
        .map_err(|e| ChainError::Rpc(format!("signing: {e}")))?;
    Ok(Signed {
        hash: *envelope.tx_hash(),
        raw: envelope.encoded_2718().into(),
        nonce,
        fees,
    })
}

/// A mined transaction as payments see it: whether it succeeded, every `(token, authorizer, nonce)` whose
/// authorization it used, and the gas it burnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mined {
    pub succeeded: bool,
    pub used: Vec<(Address, Address, B256)>,
    pub gas_used: u64,
}

impl Mined {
    /// Whether it used the authorization of `(token, payer, nonce)`.
    pub fn used(&self, token: Address, payer: Address, nonce: B256) -> bool {
        self.used.contains(&(token, payer, nonce))
    }
}

/// Polls for the receipt (with back-off, 20 ms up to 250 ms) until `wait` has passed; `None` if none came.
pub async fn poll_receipt(chain: &ChainClient, tx_hash: B256, wait: Duration) -> Result<Option<Mined>, ChainError> {
    let deadline = tokio::time::Instant::now() + wait;
    // A receipt poll is one cheap read; a batch of payments waits on it, so look often (10 ms growing to 100 ms).
    let mut interval = Duration::from_millis(10);
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
                gas_used: receipt.gas_used,
            }));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(interval.min(deadline - tokio::time::Instant::now())).await;
        interval = (interval * 3 / 2).min(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bumped_fee_beats_the_old_one_by_more_than_ten_percent() {
        let old = Fees {
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
        };
        let low = Fees {
            max_fee_per_gas: 1,
            max_priority_fee_per_gas: 1,
        };
        let new = old.bumped(low);
        assert!(new.max_fee_per_gas * 10 >= old.max_fee_per_gas * 11);
        assert!(new.max_priority_fee_per_gas * 10 >= old.max_priority_fee_per_gas * 11);
        let high = Fees {
            max_fee_per_gas: 9_000_000_000,
            max_priority_fee_per_gas: 3_000_000_000,
        };
        assert_eq!(old.bumped(high), high, "never below the chain's current fees");
    }
}
