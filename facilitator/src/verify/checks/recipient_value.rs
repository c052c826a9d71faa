//! Check 5: the authorization pays the seller (`to == payTo`) exactly the price (`value == amount`).

use protocol::reason;

use super::super::{Invalid, Payment};

pub fn check(payment: &Payment) -> Result<(), Invalid> {
    let auth = &payment.authorization;
    if auth.to != payment.pay_to {
        return Err(payment.invalid(
            reason::INVALID_EXACT_EVM_RECIPIENT_MISMATCH,
            format!(
                "authorization pays {} but the requirement's payTo is {}",
                auth.to, payment.pay_to
            ),
        ));
    }
    if auth.value != payment.amount {
        return Err(payment.invalid(
            reason::INVALID_EXACT_EVM_AUTHORIZATION_VALUE,
            format!(
                "authorization value {} but the required amount is {}",
                auth.value, payment.amount
            ),
        ));
    }
    Ok(())
}
