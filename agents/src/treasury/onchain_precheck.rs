//! The early, off-chain refusal of a payment a `Treasury` contract would revert: the contract's policy read from it
//! (limits, remaining daily allowance, whether the payee is allow-listed) run through the off-chain policy engine
//! (`policy_engine::evaluate`), so the refusal carries the engine's rule name and message, after the caller checks
//! (a spender, never an owner) and the contract's zero checks. The contract stays authoritative: a payment this
//! passes can still revert (the day turned, another spender spent first), and that revert is decoded the same way.
//! Whether the amount needs M approvals is answered too, so a caller can say `pending_approval` before sending.

use std::collections::{BTreeMap, BTreeSet};

use alloy::primitives::{Address, U256};

use crate::treasury::custody::CustodyError;
use crate::treasury::policy_engine::{Decision, History, PaymentFacts, PolicyRules, evaluate};

/// The contract's policy and the facts about one payment, as read from the chain just before sending it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainFacts {
    pub per_tx_limit: U256,
    pub daily_limit: U256,
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

/// The contract's policy as the off-chain engine's rules: its per-transaction and daily limits, its allow-list
/// (as far as this payee is concerned), and `approvalThreshold` (at or above it) as `approval_above` (above
/// it). Built here rather than through `TreasuryRules::validate`: the contract validated its own policy.
fn engine_rules(to: Address, facts: &ChainFacts) -> PolicyRules {
    PolicyRules {
        per_tx_cap: Some(facts.per_tx_limit),
        daily_cap: Some(facts.daily_limit),
        weekly_cap: None,
        monthly_cap: None,
        per_payee_daily_caps: BTreeMap::new(),
        payee_allow: facts
            .allow_list_enabled
            .then(|| facts.recipient_allowed.then_some(to).into_iter().collect()),
        payee_deny: BTreeSet::new(),
        assets: None,
        networks: None,
        allowed_hours: None,
        velocity: None,
        first_time_payee_needs_approval: false,
        // The contract asks approval for `amount >= approvalThreshold` (every amount when it is 0).
        approval_above: Some(facts.approval_threshold.saturating_sub(U256::from(1u8))),
        owners: Vec::new(),
        threshold: 0,
        proposal_ttl_seconds: 0,
    }
}

/// The refusal the contract would revert with, as the policy engine names it, or what it will do.
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
    let payment = PaymentFacts {
        to,
        amount,
        // The contract holds one token on one chain: the engine's asset and network rules are off here.
        asset: Address::ZERO,
        network: String::new(),
        at: 0,
    };
    let history = History {
        spent_today: facts.daily_limit.saturating_sub(facts.remaining_today),
        ..History::default()
    };
    match evaluate(&engine_rules(to, facts), &payment, &history) {
        Decision::Allow => Ok(Expect::ExecutesAtOnce),
        Decision::NeedsApproval { .. } => Ok(Expect::NeedsApproval),
        Decision::Deny { rule, message } => Err(refused(rule.as_str(), message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ChainFacts {
        ChainFacts {
            per_tx_limit: U256::from(10_000_000u64),
            daily_limit: U256::from(100_000_000u64),
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
        // Over both caps: the per-transaction one is named, as the engine (and the contract) checks it first.
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
