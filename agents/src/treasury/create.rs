//! Deploying an organisation's `Treasury` through the `TreasuryFactory`: owners, threshold M, spenders and the
//! policy from dollar amounts (`--approval-above $5` makes amounts *above* $5 need approval, so the contract's
//! `approvalThreshold` — at or above it needs approval — is $5 plus one atomic unit). The set-up is refused before
//! anything is sent when it cannot work: no owners, M out of range, a spender that is also an owner (an agent's
//! key is never an owner), a per-transaction limit above the daily one. The new address is read from the
//! factory's `TreasuryCreated` event.

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use contracts::bindings::TreasuryFactory;

use crate::treasury::custody::CustodyError;
use crate::treasury::onchain_custody::{OnChainCustody, event_in, mined};

/// One day: the default time a proposal stays executable (the `[treasury]` default too).
pub use crate::treasury::rules_config::DEFAULT_PROPOSAL_TTL_SECONDS;

/// What `treasury create` asks for, amounts in atomic units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreasurySpec {
    pub owners: Vec<Address>,
    pub threshold: u64,
    pub spenders: Vec<Address>,
    pub per_tx: U256,
    pub daily: U256,
    /// Amounts strictly above this need M approvals.
    pub approval_above: U256,
    pub proposal_ttl_seconds: u64,
}

fn invalid(message: impl Into<String>) -> CustodyError {
    CustodyError::Refused {
        rule: "invalid_treasury".to_owned(),
        message: message.into(),
    }
}

impl TreasurySpec {
    /// Refuses a set-up the contract would refuse, or one that would make an agent an owner.
    pub fn validate(&self) -> Result<(), CustodyError> {
        if self.owners.is_empty() {
            return Err(invalid("at least one owner is needed"));
        }
        for (i, owner) in self.owners.iter().enumerate() {
            if *owner == Address::ZERO || self.owners[..i].contains(owner) {
                return Err(invalid(format!("owner {owner} is zero or listed twice")));
            }
        }
        if self.threshold == 0 || self.threshold > self.owners.len() as u64 {
            return Err(invalid(format!(
                "the threshold must be between 1 and the {} owners",
                self.owners.len()
            )));
        }
        if let Some(both) = self.spenders.iter().find(|s| self.owners.contains(s)) {
            return Err(invalid(format!(
                "{both} is both a spender and an owner: an agent's key is never an owner"
            )));
        }
        if self.spenders.contains(&Address::ZERO) {
            return Err(invalid("a spender is the zero address"));
        }
        if self.per_tx > self.daily {
            return Err(invalid("the per-transaction limit is above the daily limit"));
        }
        if self.proposal_ttl_seconds == 0 {
            return Err(invalid("the proposal TTL must be at least one second"));
        }
        Ok(())
    }

    /// The contract's policy: `approvalThreshold` is the first amount that needs approval.
    pub fn policy(&self) -> TreasuryFactory::Policy {
        TreasuryFactory::Policy {
            perTxLimit: self.per_tx,
            dailyLimit: self.daily,
            approvalThreshold: self.approval_above.saturating_add(U256::from(1u8)),
            proposalTtl: self.proposal_ttl_seconds,
            allowListEnabled: false,
        }
    }
}

/// Deploys a Treasury for `spec` through `factory`, sent by `creator`; returns its address.
pub async fn create(
    rpc_url: &str,
    factory: Address,
    creator: &PrivateKeySigner,
    spec: &TreasurySpec,
) -> Result<Address, CustodyError> {
    spec.validate()?;
    // The factory's provider: any custody handle knows how to sign with a key on this RPC.
    let signing = OnChainCustody::new(rpc_url, factory, None)?.provider_for(creator);
    let factory_contract = TreasuryFactory::new(factory, &signing);
    let call = factory_contract.createTreasury(
        spec.owners.clone(),
        U256::from(spec.threshold),
        spec.spenders.clone(),
        spec.policy(),
        B256::random(),
    );
    let receipt = mined(call).await?;
    let created = event_in::<TreasuryFactory::TreasuryCreated>(&receipt, factory)
        .ok_or_else(|| CustodyError::Chain("the factory's receipt has no TreasuryCreated event".to_owned()))?;
    Ok(created.treasury)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TreasurySpec {
        TreasurySpec {
            owners: vec![
                Address::repeat_byte(1),
                Address::repeat_byte(2),
                Address::repeat_byte(3),
            ],
            threshold: 2,
            spenders: vec![Address::repeat_byte(4)],
            per_tx: U256::from(10_000_000u64),
            daily: U256::from(100_000_000u64),
            approval_above: U256::from(5_000_000u64),
            proposal_ttl_seconds: DEFAULT_PROPOSAL_TTL_SECONDS,
        }
    }

    #[test]
    fn above_five_dollars_means_the_contract_threshold_is_five_dollars_and_one_unit() {
        assert!(spec().validate().is_ok());
        assert_eq!(spec().policy().approvalThreshold, U256::from(5_000_001u64));
    }

    #[test]
    fn a_set_up_that_cannot_work_is_refused_before_sending() {
        let cases = [
            TreasurySpec { threshold: 4, ..spec() },
            TreasurySpec { threshold: 0, ..spec() },
            TreasurySpec {
                owners: vec![],
                ..spec()
            },
            TreasurySpec {
                spenders: vec![Address::repeat_byte(2)],
                ..spec()
            },
            TreasurySpec {
                per_tx: U256::from(200_000_000u64),
                ..spec()
            },
            TreasurySpec {
                owners: vec![Address::repeat_byte(1), Address::repeat_byte(1)],
                threshold: 1,
                ..spec()
            },
        ];
        for case in cases {
            let refused = case.validate().unwrap_err();
            assert_eq!(refused.reason(), "invalid_treasury", "{case:?}");
        }
    }
}
