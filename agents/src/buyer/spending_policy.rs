//! The spending policy: the one choke point before any signature. Static rules (scheme, network, asset and
//! payee allow-lists, the per-request maximum, the longest authorization it signs) decide which offers are
//! payable at all; the budgets (daily,
//! per host per day) are enforced atomically by the spend ledger when the payment is recorded. A refusal says
//! which rule and by how much; it is not a failure.

use alloy::primitives::{Address, U256};
use protocol::money::format_usd;

use crate::buyer::offers::Offer;
use crate::buyer::spend_ledger::Budgets;

#[derive(Debug, Clone)]
pub struct SpendingPolicy {
    /// Largest single payment, atomic units.
    pub max_per_request: U256,
    /// Per UTC day, all hosts.
    pub daily_budget: Option<U256>,
    /// Per UTC day, per host.
    pub per_host_daily_budget: Option<U256>,
    /// CAIP-2 ids this buyer pays on.
    pub networks: Vec<String>,
    /// Token contracts this buyer pays in.
    pub assets: Vec<Address>,
    /// When set, only these payees.
    pub payees: Option<Vec<Address>>,
    /// The longest `maxTimeoutSeconds` it signs: an unproven payment counts against budgets until its
    /// authorization expires, so this bounds how long a lost payment can hold a budget.
    pub max_timeout_seconds: u64,
}

/// The default [`SpendingPolicy::max_timeout_seconds`].
pub const DEFAULT_MAX_TIMEOUT_SECONDS: u64 = 300;

impl Default for SpendingPolicy {
    /// v2 clients have no default cap; ours does: $0.10 a request and $5.00 a day, USDC on Arc only.
    fn default() -> Self {
        SpendingPolicy {
            max_per_request: U256::from(100_000u64),
            daily_budget: Some(U256::from(5_000_000u64)),
            per_host_daily_budget: None,
            networks: vec![
                protocol::network::caip2(protocol::network::ARC_TESTNET_CHAIN_ID),
                protocol::network::caip2(protocol::network::ARC_MAINNET_CHAIN_ID),
            ],
            assets: vec![protocol::network::ARC_USDC],
            payees: None,
            max_timeout_seconds: DEFAULT_MAX_TIMEOUT_SECONDS,
        }
    }
}

/// Why an offer cannot be paid under this policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferRefusal {
    #[error("scheme `{0}` is not supported (only `exact`)")]
    Scheme(String),
    #[error("network `{0}` is not allowed by the spending policy")]
    Network(String),
    #[error("asset {0} is not allowed by the spending policy")]
    Asset(Address),
    #[error("payee {0} is not allowed by the spending policy")]
    Payee(Address),
    #[error("the offer's authorization would stay valid {offered} s, over the policy's {max} s")]
    Timeout { offered: u64, max: u64 },
    #[error("the price {price} is over the per-request maximum {max}")]
    OverMaximum { price: String, max: String },
}

impl OfferRefusal {
    /// Over the per-request maximum is a budget matter; the rest make the offer unpayable.
    pub fn is_budget(&self) -> bool {
        matches!(self, OfferRefusal::OverMaximum { .. })
    }
}

impl SpendingPolicy {
    /// Whether `offer` may be paid at all (budgets aside).
    pub fn admits(&self, offer: &Offer) -> Result<(), OfferRefusal> {
        if offer.scheme() != protocol::SCHEME_EXACT {
            return Err(OfferRefusal::Scheme(offer.scheme().to_owned()));
        }
        let network = offer
            .caip2()
            .ok_or_else(|| OfferRefusal::Network(offer.network().to_owned()))?;
        if !self.networks.contains(&network) {
            return Err(OfferRefusal::Network(network));
        }
        if offer.max_timeout_seconds() > self.max_timeout_seconds {
            return Err(OfferRefusal::Timeout {
                offered: offer.max_timeout_seconds(),
                max: self.max_timeout_seconds,
            });
        }
        self.admits_payment(offer.asset(), offer.pay_to(), offer.amount())
    }

    /// The rules every payment meets, an offer's or a direct transfer's: asset, payee, per-request maximum.
    pub fn admits_payment(&self, asset: Address, pay_to: Address, amount: U256) -> Result<(), OfferRefusal> {
        if !self.assets.contains(&asset) {
            return Err(OfferRefusal::Asset(asset));
        }
        if let Some(payees) = &self.payees
            && !payees.contains(&pay_to)
        {
            return Err(OfferRefusal::Payee(pay_to));
        }
        if amount > self.max_per_request {
            return Err(OfferRefusal::OverMaximum {
                price: format_usd(amount, 6),
                max: format_usd(self.max_per_request, 6),
            });
        }
        Ok(())
    }

    /// The budgets for the spend ledger, in its integer units (saturating: a budget beyond i64 is none).
    pub fn budgets(&self) -> Budgets {
        let clamp = |v: Option<U256>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        Budgets {
            daily: clamp(self.daily_budget),
            per_host_daily: clamp(self.per_host_daily_budget),
        }
    }

    /// Adds a network (CAIP-2) to the allow-list.
    pub fn allow_network(&mut self, caip2: String) {
        if !self.networks.contains(&caip2) {
            self.networks.push(caip2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::wire::{Extra, v2};

    fn offer(network: &str, asset: Address, amount: u64, scheme: &str) -> Offer {
        offer_lasting(network, asset, amount, scheme, 60)
    }

    fn offer_lasting(network: &str, asset: Address, amount: u64, scheme: &str, timeout: u64) -> Offer {
        Offer::v2(
            v2::PaymentRequirements {
                scheme: scheme.into(),
                network: network.into(),
                amount: U256::from(amount),
                asset,
                pay_to: Address::repeat_byte(9),
                max_timeout_seconds: timeout,
                extra: Some(Extra::eip712("USDC", "2")),
            },
            None,
        )
    }

    #[test]
    fn each_rule_refuses_with_its_own_reason() {
        let usdc = protocol::network::ARC_USDC;
        let mut policy = SpendingPolicy::default();
        assert_eq!(policy.admits(&offer("eip155:5042002", usdc, 1_000, "exact")), Ok(()));
        assert!(matches!(
            policy.admits(&offer("eip155:5042002", usdc, 1_000, "upto")),
            Err(OfferRefusal::Scheme(_))
        ));
        assert!(matches!(
            policy.admits(&offer("eip155:1", usdc, 1_000, "exact")),
            Err(OfferRefusal::Network(_))
        ));
        assert!(matches!(
            policy.admits(&offer("eip155:5042002", Address::repeat_byte(1), 1_000, "exact")),
            Err(OfferRefusal::Asset(_))
        ));
        let over = policy
            .admits(&offer("eip155:5042002", usdc, 100_001, "exact"))
            .unwrap_err();
        assert!(over.is_budget());
        assert_eq!(
            over.to_string(),
            "the price $0.100001 is over the per-request maximum $0.1"
        );
        assert_eq!(
            policy.admits(&offer_lasting("eip155:5042002", usdc, 1, "exact", 300)),
            Ok(())
        );
        let long = policy
            .admits(&offer_lasting("eip155:5042002", usdc, 1, "exact", 301))
            .unwrap_err();
        assert_eq!(long, OfferRefusal::Timeout { offered: 301, max: 300 });
        assert!(!long.is_budget());
        policy.payees = Some(vec![Address::repeat_byte(8)]);
        assert!(matches!(
            policy.admits(&offer("eip155:5042002", usdc, 1, "exact")),
            Err(OfferRefusal::Payee(_))
        ));
        policy.allow_network("eip155:1".into());
        policy.payees = None;
        assert_eq!(policy.admits(&offer("eip155:1", usdc, 1, "exact")), Ok(()));
    }
}
