//! Check 8: the payer's balance covers this payment plus the payer's other payments still being settled, so
//! a burst of payments cannot be verified against the same funds.

use alloy::primitives::U256;
use protocol::reason;

use super::super::{Invalid, Payment, total};
use crate::chain::ChainSnapshot;

pub fn check(payment: &Payment, snapshot: &ChainSnapshot, in_flight: U256) -> Result<(), Invalid> {
    covers(payment, snapshot.balance, in_flight)
}

/// The same check against a balance read earlier (a reused verify).
pub fn covers(payment: &Payment, balance: U256, in_flight: U256) -> Result<(), Invalid> {
    let needed = total(payment.amount, in_flight);
    match needed {
        Some(needed) if balance >= needed => Ok(()),
        _ => Err(payment.invalid(
            reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE,
            format!(
                "balance {} does not cover {} plus {in_flight} in payments still settling",
                balance, payment.amount
            ),
        )),
    }
}
