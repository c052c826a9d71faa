//! Check 10: an `eth_call` of the very settlement transaction, from the settlement address, succeeds — the
//! last word on anything the other checks could not see. A verify answered from the mirror simulates nothing:
//! settlement, which submits the same call, decides.

use protocol::reason;

use super::super::{Invalid, Payment};
use crate::chain::ChainSnapshot;

pub fn check(payment: &Payment, snapshot: &ChainSnapshot) -> Result<(), Invalid> {
    match &snapshot.simulation {
        None | Some(Ok(())) => Ok(()),
        Some(Err(revert)) => Err(payment.invalid(
            reason::INVALID_EXACT_EVM_TRANSACTION_SIMULATION_FAILED,
            format!("the settlement would revert: {revert}"),
        )),
    }
}
