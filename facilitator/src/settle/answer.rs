//! The `SettleResponse` every outcome stands for: success, a failure with its reason, `settlement_pending`
//! with the transaction, and the answer a ledger row gives.

use alloy::primitives::{Address, B256};
use protocol::{SettleResponse, VerifyRequest, reason};

use super::verdict::Verdict;
use crate::ledger::{SettlementRecord, SettlementState};
use crate::verify::{Invalid, Payment};

/// The answer a ledger row stands for.
pub fn response_for_record(row: &SettlementRecord, payer: Address) -> SettleResponse {
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

/// The answer for a payment a verdict finished; `Unknown` reads as pending on `tx` (the reconciler decides).
pub fn for_verdict(payment: &Payment, verdict: &Verdict, tx: Option<B256>) -> SettleResponse {
    match verdict {
        Verdict::Confirmed(tx) => success(payment, *tx),
        Verdict::Failed(failure) => SettleResponse {
            success: false,
            error_reason: Some(failure.reason.clone()),
            error_message: Some(failure.message.clone()),
            payer: Some(payment.payer()),
            transaction: tx.map(|h| h.to_string()).unwrap_or_default(),
            network: payment.chain.caip2.to_string(),
            amount: None,
        },
        Verdict::Unknown(message) => match tx {
            Some(tx) => pending(payment, tx, message.clone()),
            None => unexpected(payment, message.clone()),
        },
    }
}

pub fn network_of(request: &VerifyRequest) -> &str {
    match request {
        VerifyRequest::V1(r) => &r.payment_requirements.network,
        VerifyRequest::V2(r) => &r.payment_requirements.network,
    }
}

pub fn success(payment: &Payment, tx_hash: B256) -> SettleResponse {
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

pub fn failure(invalid: &Invalid, network: &str, tx_hash: Option<B256>) -> SettleResponse {
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

pub fn pending(payment: &Payment, tx_hash: B256, message: String) -> SettleResponse {
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

pub fn unexpected(payment: &Payment, message: String) -> SettleResponse {
    failure(
        &payment.invalid(reason::UNEXPECTED_SETTLE_ERROR, message),
        &payment.chain.caip2,
        None,
    )
}
