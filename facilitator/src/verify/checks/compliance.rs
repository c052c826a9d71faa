//! Check 9: neither payer nor payee is blacklisted, and the token is not paused (on Arc the blacklist is the
//! chain's own blocklist, answered by `USDC.isBlacklisted`).

use protocol::reason;

use super::super::{Invalid, Payment};
use crate::chain::ChainSnapshot;

pub fn check(payment: &Payment, snapshot: &ChainSnapshot) -> Result<(), Invalid> {
    if snapshot.paused {
        return Err(payment.invalid(reason::INVALID_EXACT_EVM_TOKEN_PAUSED, "the token is paused"));
    }
    if snapshot.from_blacklisted {
        return Err(payment.invalid(
            reason::INVALID_EXACT_EVM_ADDRESS_BLACKLISTED,
            format!("payer {} is blacklisted", payment.authorization.from),
        ));
    }
    if snapshot.to_blacklisted {
        return Err(payment.invalid(
            reason::INVALID_EXACT_EVM_ADDRESS_BLACKLISTED,
            format!("payee {} is blacklisted", payment.authorization.to),
        ));
    }
    Ok(())
}
