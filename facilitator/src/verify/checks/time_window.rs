//! Check 6: the authorization is usable now and for long enough to settle, and not for longer than the seller
//! allowed: `validAfter <= now`, `validBefore >= now + 6 s`, `validBefore <= now + maxTimeoutSeconds + skew`.

use alloy::primitives::U256;
use protocol::reason;

use super::super::{Invalid, Payment};

/// Settlement needs the authorization to stay valid at least this long (Arc confirms in under a second;
/// block timestamps have one-second granularity).
pub const MIN_REMAINING_SECS: u64 = 6;

pub fn check(payment: &Payment, now: u64, skew_secs: u64) -> Result<(), Invalid> {
    let auth = &payment.authorization;
    if auth.valid_after > U256::from(now) {
        return Err(payment.invalid(
            reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_AFTER,
            format!("authorization is not valid before {} (now {now})", auth.valid_after),
        ));
    }
    if auth.valid_before < U256::from(now.saturating_add(MIN_REMAINING_SECS)) {
        return Err(payment.invalid(
            reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_BEFORE,
            format!(
                "authorization expires at {}, too soon to settle (now {now})",
                auth.valid_before
            ),
        ));
    }
    let latest = U256::from(now)
        .saturating_add(U256::from(payment.max_timeout_seconds))
        .saturating_add(U256::from(skew_secs));
    if auth.valid_before > latest {
        return Err(payment.invalid(
            reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_BEFORE,
            format!(
                "authorization is valid until {}, longer than maxTimeoutSeconds {} allows (latest {latest})",
                auth.valid_before, payment.max_timeout_seconds
            ),
        ));
    }
    Ok(())
}
