//! Ledger rows as typed values: the key a payment is settled under, its state machine, and the row itself.

use alloy::primitives::{Address, B256, Bytes, U256};

/// What identifies one payment on chain: the token keys authorizations by (authorizer, nonce).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SettlementKey {
    /// CAIP-2 network id.
    pub network: String,
    pub asset: Address,
    pub payer: Address,
    pub nonce: B256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SettlementState {
    /// The key is taken; nothing has been signed yet.
    Reserved,
    /// A signed transaction is stored and may have been broadcast.
    Submitted,
    /// Mined successfully: final on Arc.
    Confirmed,
    /// Refused or reverted: final; the reason is stored.
    Failed,
}

impl SettlementState {
    pub fn as_str(self) -> &'static str {
        match self {
            SettlementState::Reserved => "reserved",
            SettlementState::Submitted => "submitted",
            SettlementState::Confirmed => "confirmed",
            SettlementState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "reserved" => SettlementState::Reserved,
            "submitted" => SettlementState::Submitted,
            "confirmed" => SettlementState::Confirmed,
            "failed" => SettlementState::Failed,
            _ => return None,
        })
    }

    /// Confirmed or failed: nothing more will happen to the payment.
    pub fn is_final(self) -> bool {
        matches!(self, SettlementState::Confirmed | SettlementState::Failed)
    }
}

/// What is known of a payment when its key is reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSettlement {
    pub key: SettlementKey,
    /// Hash of the exact payload (authorization and signature): tells a resend of the same payment from a
    /// different payment that reuses the nonce.
    pub payload_hash: B256,
    pub pay_to: Address,
    pub amount: U256,
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementRecord {
    pub key: SettlementKey,
    pub payload_hash: B256,
    pub pay_to: Address,
    pub amount: U256,
    pub state: SettlementState,
    pub tx_hash: Option<B256>,
    pub raw_tx: Option<Bytes>,
    pub signer: Option<Address>,
    pub signer_nonce: Option<u64>,
    pub error_reason: Option<String>,
    pub error_message: Option<String>,
    /// A failure that was not the payment's own (see [`Failure::retryable`]).
    pub retryable: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Why a payment failed, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The x402 reason.
    pub reason: String,
    pub message: String,
    /// The failure was the facilitator's or the chain's (RPC fault, gas, a refused or dropped transaction), not
    /// the payment's: while the payment is unused on chain and inside its validity window, a later settle of the
    /// same payload may take it on again. Bad signatures, expiry and the payer's balance are never retryable.
    pub retryable: bool,
}

impl Failure {
    /// A failure of the payment itself: final.
    pub fn permanent(reason: &str, message: impl Into<String>) -> Self {
        Failure {
            reason: reason.to_owned(),
            message: message.into(),
            retryable: false,
        }
    }

    /// A failure of the facilitator or the chain: a later settle may try again.
    pub fn transient(reason: &str, message: impl Into<String>) -> Self {
        Failure {
            reason: reason.to_owned(),
            message: message.into(),
            retryable: true,
        }
    }
}
