//! Check 7: the authorization's nonce is unused on chain (`authorizationState`) and not already taken by a
//! payment this facilitator is settling.

use protocol::reason;

use super::super::{Invalid, Payment};
use crate::chain::ChainSnapshot;

pub fn check(payment: &Payment, snapshot: &ChainSnapshot, reserved_in_ledger: bool) -> Result<(), Invalid> {
    if snapshot.nonce_used {
        return Err(payment.invalid(
            reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED,
            format!(
                "nonce {} is already used or canceled on chain",
                payment.authorization.nonce
            ),
        ));
    }
    if reserved_in_ledger {
        return Err(payment.invalid(
            reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED,
            format!(
                "nonce {} belongs to a payment already being settled",
                payment.authorization.nonce
            ),
        ));
    }
    Ok(())
}
