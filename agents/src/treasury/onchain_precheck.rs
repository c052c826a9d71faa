//! The early, off-chain refusal of a payment a `Treasury` contract would revert: the contract's own checks
//! (`_checkSpend`, then `onlySpender`) replayed in the contract's order over facts read from it (its policy,
//! its remaining daily allowance, whether the payee is allow-listed, whether the caller is a spender), with the
//! same rule names the off-chain policy engine uses. The contract stays authoritative: a payment this passes can
//! still revert (the day turned, another spender spent first), and that revert is decoded the same way.
//! Whether the amount needs M approvals is answered too, so a caller can say `pending_approval` before sending.

use alloy::primitives::{Address, U256};

use crate::treasury::custody::CustodyError;

/// The contract's policy and the facts about one payment, as read from the chain just before sending it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainFacts {
    pub per_tx_limit: U256,
    pub remaining_today: U256,
    /// Amounts at or above it need M owner approvals.
    pub approval_threshold: U256,
    pub allow_list_enabled: bool,
    /// Whether `to` is on the Treasury's allow-list (only meaningful when the allow-list is enabled).
    pub recipient_allowed: bool,
    /// Whether the key that will send the proposal is one of the Treasury's spenders.
    pub caller_is_spender: bool,
    /// Whether it is also an owner: an agent's key never is, so such a set-up is refused.
    pub caller_is_owner: bool,
}

/// What the contract will do with a proposal that passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Below the approval threshold: executed (or approved, for an authorization) in the same transaction.
    ExecutesAtOnce,
    /// At or above it: stored, waiting for M approvals.
    NeedsApproval,
}

fn refused(rule: &str, message: String) -> CustodyError {
    CustodyError::Refused {
        rule: rule.to_owned(),
        message,
    }
}

/// The refusal the contract would revert with, first one first, or what it will do.
pub fn precheck(to: Address, amount: U256, facts: &ChainFacts) -> Result<Expect, CustodyError> {
    if facts.caller_is_owner {
        return Err(CustodyError::NotAllowed(
            "this key is an owner of the treasury: an agent's key is never an owner".to_owned(),
        ));
    }
    if !facts.caller_is_spender {
        return Err(CustodyError::NotAllowed(
            "this key is not a spender of the treasury".to_owned(),
        ));
    }
    if to == Address::ZERO {
        return Err(refused("invalid_recipient", "cannot pay the zero address".to_owned()));
    }
    if amount.is_zero() {
        return Err(refused("zero_amount", "the amount is zero".to_owned()));
    }
    if amount > facts.per_tx_limit {
        return Err(refused(
            "per_tx_cap",
            format!("{amount} is above the per-transaction limit {}", facts.per_tx_limit),
        ));
    }
    if amount > facts.remaining_today {
        return Err(refused(
            "daily_cap",
            format!(
                "{amount} is above what may still leave today ({})",
                facts.remaining_today
            ),
        ));
    }
    if facts.allow_list_enabled && !facts.recipient_allowed {
        return Err(refused(
            "payee_allow_list",
            format!("{to} is not on the treasury's allow-list"),
        ));
    }
    Ok(if amount >= facts.approval_threshold {
        Expect::NeedsApproval
    } else {
        Expect::ExecutesAtOnce
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ChainFacts {
        ChainFacts {
            per_tx_limit: U256::from(10_000_000u64),
            remaining_today: U256::from(12_000_000u64),
            approval_threshold: U256::from(5_000_001u64),
            allow_list_enabled: false,
            recipient_allowed: false,
            caller_is_spender: true,
            caller_is_owner: false,
        }
    }

    fn rule(result: Result<Expect, CustodyError>) -> String {
        match result {
            Err(e) => e.reason().to_owned(),
            Ok(expect) => format!("{expect:?}"),
        }
    }

    #[test]
    fn each_contract_check_is_refused_under_the_engines_rule_name_in_the_contracts_order() {
        let to = Address::repeat_byte(7);
        let at = |amount: u64| U256::from(amount);
        assert_eq!(rule(precheck(to, at(5_000_000), &facts())), "ExecutesAtOnce");
        assert_eq!(rule(precheck(to, at(5_000_001), &facts())), "NeedsApproval");
        assert_eq!(rule(precheck(to, at(10_000_001), &facts())), "per_tx_cap");
        let spent = ChainFacts {
            remaining_today: at(3_000_000),
            ..facts()
        };
        assert_eq!(rule(precheck(to, at(3_000_001), &spent)), "daily_cap");
        assert_eq!(rule(precheck(to, at(3_000_000), &spent)), "ExecutesAtOnce");
        // Over both caps: the per-transaction one is named, as the contract checks it first.
        assert_eq!(rule(precheck(to, at(20_000_000), &spent)), "per_tx_cap");
        let listed = ChainFacts {
            allow_list_enabled: true,
            ..facts()
        };
        assert_eq!(rule(precheck(to, at(1), &listed)), "payee_allow_list");
        let allowed = ChainFacts {
            recipient_allowed: true,
            ..listed
        };
        assert_eq!(rule(precheck(to, at(1), &allowed)), "ExecutesAtOnce");
        assert_eq!(rule(precheck(Address::ZERO, at(1), &facts())), "invalid_recipient");
        assert_eq!(rule(precheck(to, U256::ZERO, &facts())), "zero_amount");
        let stranger = ChainFacts {
            caller_is_spender: false,
            ..facts()
        };
        assert_eq!(rule(precheck(to, at(1), &stranger)), "not_allowed");
        let owner = ChainFacts {
            caller_is_owner: true,
            ..facts()
        };
        assert_eq!(rule(precheck(to, at(1), &owner)), "not_allowed");
    }
}
