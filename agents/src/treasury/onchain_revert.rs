//! A `Treasury` contract's revert as a [`CustodyError`]: its custom errors decoded from the revert data and
//! named with the off-chain policy engine's rules (`ExceedsPerTxLimit` → `per_tx_cap`, `ExceedsDailyLimit` →
//! `daily_cap`, `RecipientNotAllowed` → `payee_allow_list`), caller errors as `NotAllowed`, and errors about a
//! proposal's state (`NotEnoughApprovals`, `ProposalExpired`, …) as `WrongState`. Anything else (no revert
//! data, a transport failure) is a chain error.

use contracts::bindings::Treasury::TreasuryErrors as E;

use crate::treasury::custody::CustodyError;

fn refused(rule: &str, message: String) -> CustodyError {
    CustodyError::Refused {
        rule: rule.to_owned(),
        message,
    }
}

fn wrong_state(id: alloy::primitives::U256, state: &str, message: impl Into<String>) -> CustodyError {
    CustodyError::WrongState {
        id: u64::try_from(id).unwrap_or(u64::MAX),
        state: state.to_owned(),
        message: message.into(),
    }
}

/// The error a failed call or transaction of the Treasury carried.
pub fn custody_error(error: &alloy::contract::Error) -> CustodyError {
    match error.as_decoded_interface_error::<E>() {
        Some(decoded) => from_revert(decoded),
        None => CustodyError::Chain(error.to_string()),
    }
}

/// A decoded Treasury revert.
pub fn from_revert(error: E) -> CustodyError {
    match error {
        E::ExceedsPerTxLimit(e) => refused(
            "per_tx_cap",
            format!("{} is above the per-transaction limit {}", e.amount, e.perTxLimit),
        ),
        E::ExceedsDailyLimit(e) => refused(
            "daily_cap",
            format!("{} is above what may still leave today ({})", e.amount, e.remaining),
        ),
        E::RecipientNotAllowed(e) => refused("payee_allow_list", format!("{} is not on the allow-list", e.to)),
        E::InvalidRecipient(_) => refused("invalid_recipient", "cannot pay the zero address".to_owned()),
        E::ZeroAmount(_) => refused("zero_amount", "the amount is zero".to_owned()),
        E::ValidityTooLong(e) => refused(
            "proposal_ttl",
            format!(
                "validBefore {} is past the latest the policy allows ({})",
                e.validBefore, e.latest
            ),
        ),
        E::ValidBeforePassed(e) => refused(
            "valid_before_passed",
            format!("validBefore {} has passed", e.validBefore),
        ),
        E::ValidityWindowEmpty(_) => refused("validity_window", "validAfter is not before validBefore".to_owned()),
        E::AuthorizationNonceUsed(e) => refused("nonce_used", format!("nonce {} was used", e.nonce)),
        E::DigestAlreadyApproved(e) => refused("digest_approved", format!("digest {} is approved already", e.digest)),
        E::CallerNotSpender(e) => CustodyError::NotAllowed(format!("{} is not a spender of the treasury", e.caller)),
        E::CallerNotOwner(e) => CustodyError::NotAllowed(format!("{} is not an owner of the treasury", e.caller)),
        E::CallerCannotCancel(e) => CustodyError::NotAllowed(format!("{} may not cancel this proposal", e.caller)),
        E::UnknownProposal(e) => CustodyError::UnknownProposal(u64::try_from(e.id).unwrap_or(u64::MAX)),
        E::NotEnoughApprovals(e) => wrong_state(
            e.id,
            "pending_approval",
            format!("{} of {} approvals", e.approvals, e.threshold),
        ),
        E::ProposalExpired(e) => wrong_state(e.id, "expired", "the proposal expired"),
        E::ProposalAlreadyExecuted(e) => wrong_state(e.id, "executed", "the proposal was executed already"),
        E::ProposalAlreadyCancelled(e) => wrong_state(e.id, "cancelled", "the proposal was cancelled"),
        E::AlreadyApproved(e) => wrong_state(e.id, "pending_approval", format!("{} approved it already", e.owner)),
        E::NotApproved(e) => wrong_state(e.id, "pending_approval", format!("{} has not approved it", e.owner)),
        other => CustodyError::Chain(format!("the treasury reverted: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, U256};
    use contracts::bindings::Treasury;

    #[test]
    fn reverts_are_named_like_the_policy_engines_rules() {
        let daily = from_revert(E::ExceedsDailyLimit(Treasury::ExceedsDailyLimit {
            amount: U256::from(5u64),
            remaining: U256::from(1u64),
        }));
        assert_eq!(daily.reason(), "daily_cap");
        let per_tx = from_revert(E::ExceedsPerTxLimit(Treasury::ExceedsPerTxLimit {
            amount: U256::from(5u64),
            perTxLimit: U256::from(1u64),
        }));
        assert_eq!(per_tx.reason(), "per_tx_cap");
        let listed = from_revert(E::RecipientNotAllowed(Treasury::RecipientNotAllowed {
            to: Address::ZERO,
        }));
        assert_eq!(listed.reason(), "payee_allow_list");
        let owner = from_revert(E::CallerNotOwner(Treasury::CallerNotOwner { caller: Address::ZERO }));
        assert_eq!(owner.reason(), "not_allowed");
        let short = from_revert(E::NotEnoughApprovals(Treasury::NotEnoughApprovals {
            id: U256::from(3u64),
            approvals: U256::from(1u64),
            threshold: U256::from(2u64),
        }));
        assert!(
            matches!(&short, CustodyError::WrongState { id: 3, state, .. } if state == "pending_approval"),
            "{short:?}"
        );
        let expired = from_revert(E::ProposalExpired(Treasury::ProposalExpired { id: U256::from(4u64) }));
        assert!(matches!(&expired, CustodyError::WrongState { id: 4, state, .. } if state == "expired"));
    }
}
