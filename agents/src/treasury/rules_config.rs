//! The `[treasury]` section of the buyer's config file, as written (`TreasuryRules`, serde, unknown keys
//! refused), and its validation into the engine's [`PolicyRules`]. Everything that can be wrong with a
//! policy is refused here, at load, with the key that is wrong: caps that do not rise per-tx ≤ daily ≤
//! weekly ≤ monthly (Circle's agent-wallet limits are monotonic the same way), a threshold of 0 or above the
//! number of owners, duplicate or zero owners, an address both allowed and denied, hours that are not
//! `HH:MM-HH:MM`, a velocity of 0, money that does not parse (the same parser `[policy]` uses,
//! `protocol::money::parse_price` at USDC's 6 decimals: `"$10"`, `"10.5"` or atomic units).
//!
//! ```toml
//! [treasury]
//! per_tx_cap = "$10"
//! daily_cap = "$100"
//! weekly_cap = "$300"
//! monthly_cap = "$1000"
//! per_payee_daily_caps = { "0x1111111111111111111111111111111111111111" = "$5" }
//! payee_deny = ["0x2222222222222222222222222222222222222222"]
//! assets = ["0x3600000000000000000000000000000000000000"]
//! networks = ["eip155:5042002"]
//! allowed_hours = "09:00-17:30"          # UTC; "22:00-06:00" wraps midnight
//! velocity = { max_payments = 10, per_minutes = 5 }
//! first_time_payee_needs_approval = true
//! approval_above = "$5"
//! owners = ["0xaaaa…", "0xbbbb…", "0xcccc…"]
//! threshold = 2
//! proposal_ttl_seconds = 86400
//! ```

use std::collections::{BTreeMap, BTreeSet};

use alloy::primitives::{Address, U256};
use protocol::money::{MoneyError, format_usd};
use serde::Deserialize;

use crate::treasury::policy_engine::{AllowedHours, PolicyRules, Velocity};

/// How long a proposal waits for its approvals unless `proposal_ttl_seconds` says otherwise: one day.
pub const DEFAULT_PROPOSAL_TTL_SECONDS: u64 = 86_400;

/// USDC's decimals: the caps are dollar amounts of it.
const DECIMALS: u8 = 6;

/// `[treasury]` as written in the buyer config file. Absent keys are rules that do not apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreasuryRules {
    #[serde(default)]
    pub per_tx_cap: Option<String>,
    #[serde(default)]
    pub daily_cap: Option<String>,
    #[serde(default)]
    pub weekly_cap: Option<String>,
    #[serde(default)]
    pub monthly_cap: Option<String>,
    /// Payee address (`0x…`) → what it may receive per UTC day.
    #[serde(default)]
    pub per_payee_daily_caps: BTreeMap<String, String>,
    /// When present, only these payees (an empty list allows none).
    #[serde(default)]
    pub payee_allow: Option<Vec<Address>>,
    #[serde(default)]
    pub payee_deny: Vec<Address>,
    /// When present, only these token contracts.
    #[serde(default)]
    pub assets: Option<Vec<Address>>,
    /// When present, only these CAIP-2 networks.
    #[serde(default)]
    pub networks: Option<Vec<String>>,
    /// `HH:MM-HH:MM`, UTC, start inclusive, end exclusive; may wrap midnight.
    #[serde(default)]
    pub allowed_hours: Option<String>,
    #[serde(default)]
    pub velocity: Option<VelocityRules>,
    #[serde(default)]
    pub first_time_payee_needs_approval: bool,
    /// Payments above this need M-of-N owner approval.
    #[serde(default)]
    pub approval_above: Option<String>,
    /// Local custody: the owners who approve (never the agent's own key).
    #[serde(default)]
    pub owners: Vec<Address>,
    /// Local custody: approvals needed (M of the N owners).
    #[serde(default)]
    pub threshold: Option<u32>,
    #[serde(default)]
    pub proposal_ttl_seconds: Option<u64>,
}

/// `velocity = { max_payments = N, per_minutes = M }`: at most N payments in any M minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VelocityRules {
    pub max_payments: u32,
    pub per_minutes: u32,
}

/// Why a `[treasury]` section was refused at load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("treasury.{key}: {source}")]
    Money { key: String, source: MoneyError },
    #[error(
        "treasury.{larger}: {larger_amount} is below {smaller} {smaller_amount}; caps must rise per_tx_cap ≤ \
         daily_cap ≤ weekly_cap ≤ monthly_cap"
    )]
    NotMonotonic {
        smaller: &'static str,
        smaller_amount: String,
        larger: &'static str,
        larger_amount: String,
    },
    #[error("treasury.per_payee_daily_caps: `{0}` is not an address")]
    PayeeAddress(String),
    #[error("treasury.per_payee_daily_caps: {0} is named twice")]
    DuplicatePayeeCap(Address),
    #[error("treasury.networks: `{0}` is not a CAIP-2 network id (eip155:<chain id>)")]
    Network(String),
    #[error("treasury.allowed_hours: `{text}` {reason} (expected UTC `HH:MM-HH:MM`, e.g. \"09:00-17:30\")")]
    Hours { text: String, reason: &'static str },
    #[error("treasury.velocity: {0} must be at least 1")]
    Velocity(&'static str),
    #[error("treasury.{0}: {1} is both allowed (payee_allow) and denied")]
    AllowedAndDenied(&'static str, Address),
    #[error("treasury.owners: {0} is listed twice")]
    DuplicateOwner(Address),
    #[error("treasury.owners: the zero address cannot be an owner")]
    ZeroOwner,
    #[error("treasury.threshold: {threshold} of {owners} owners is not possible (1 ≤ threshold ≤ owners)")]
    Threshold { threshold: u32, owners: usize },
    #[error("treasury.threshold: owners are listed but no threshold says how many must approve")]
    MissingThreshold,
    #[error("treasury.proposal_ttl_seconds: must be at least 1")]
    ZeroTtl,
}

impl RulesError {
    /// The config key at fault (`treasury.daily_cap`, …), for the buyer config's own error.
    pub fn key(&self) -> String {
        let key = match self {
            RulesError::Money { key, .. } => return format!("treasury.{key}"),
            RulesError::NotMonotonic { larger, .. } => larger,
            RulesError::PayeeAddress(_) | RulesError::DuplicatePayeeCap(_) => "per_payee_daily_caps",
            RulesError::Network(_) => "networks",
            RulesError::Hours { .. } => "allowed_hours",
            RulesError::Velocity(_) => "velocity",
            RulesError::AllowedAndDenied(key, _) => key,
            RulesError::DuplicateOwner(_) | RulesError::ZeroOwner => "owners",
            RulesError::Threshold { .. } | RulesError::MissingThreshold => "threshold",
            RulesError::ZeroTtl => "proposal_ttl_seconds",
        };
        format!("treasury.{key}")
    }
}

fn money(key: &str, text: &str) -> Result<U256, RulesError> {
    protocol::money::parse_price(text, DECIMALS).map_err(|source| RulesError::Money {
        key: key.to_owned(),
        source,
    })
}

fn optional_money(key: &str, text: Option<&String>) -> Result<Option<U256>, RulesError> {
    text.map(|t| money(key, t)).transpose()
}

/// The caps that are set must not fall from one window to the next larger one.
fn check_monotonic(caps: &[(&'static str, Option<U256>)]) -> Result<(), RulesError> {
    let mut previous: Option<(&'static str, U256)> = None;
    for &(name, cap) in caps {
        let Some(cap) = cap else { continue };
        if let Some((smaller, smaller_cap)) = previous
            && cap < smaller_cap
        {
            return Err(RulesError::NotMonotonic {
                smaller,
                smaller_amount: format_usd(smaller_cap, DECIMALS),
                larger: name,
                larger_amount: format_usd(cap, DECIMALS),
            });
        }
        previous = Some((name, cap));
    }
    Ok(())
}

fn parse_clock(text: &str, whole: &str) -> Result<u16, RulesError> {
    let bad = |reason| RulesError::Hours {
        text: whole.to_owned(),
        reason,
    };
    let (hours, minutes) = text.split_once(':').ok_or(bad("has a time without `:`"))?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(hours) || !two_digits(minutes) {
        return Err(bad("has a time that is not two digits `:` two digits"));
    }
    let (hours, minutes): (u16, u16) = (
        hours.parse().map_err(|_| bad("has an unreadable hour"))?,
        minutes.parse().map_err(|_| bad("has an unreadable minute"))?,
    );
    if hours > 23 || minutes > 59 {
        return Err(bad("has a time past 23:59"));
    }
    Ok(hours * 60 + minutes)
}

fn parse_hours(text: &str) -> Result<AllowedHours, RulesError> {
    let trimmed = text.trim();
    let (start, end) = trimmed.split_once('-').ok_or(RulesError::Hours {
        text: text.to_owned(),
        reason: "has no `-` between start and end",
    })?;
    let start = parse_clock(start.trim(), text)?;
    let end = parse_clock(end.trim(), text)?;
    if start == end {
        return Err(RulesError::Hours {
            text: text.to_owned(),
            reason: "starts and ends at the same minute",
        });
    }
    Ok(AllowedHours {
        start_minute: start,
        end_minute: end,
    })
}

fn check_owners(owners: &[Address], threshold: Option<u32>) -> Result<u32, RulesError> {
    let mut seen = BTreeSet::new();
    for owner in owners {
        if owner.is_zero() {
            return Err(RulesError::ZeroOwner);
        }
        if !seen.insert(*owner) {
            return Err(RulesError::DuplicateOwner(*owner));
        }
    }
    match threshold {
        None if owners.is_empty() => Ok(0),
        None => Err(RulesError::MissingThreshold),
        Some(threshold) if threshold == 0 || threshold as usize > owners.len() => Err(RulesError::Threshold {
            threshold,
            owners: owners.len(),
        }),
        Some(threshold) => Ok(threshold),
    }
}

impl TreasuryRules {
    /// Checks the section and builds the engine's rules; the only way to make a [`PolicyRules`].
    pub fn validate(&self) -> Result<PolicyRules, RulesError> {
        let per_tx_cap = optional_money("per_tx_cap", self.per_tx_cap.as_ref())?;
        let daily_cap = optional_money("daily_cap", self.daily_cap.as_ref())?;
        let weekly_cap = optional_money("weekly_cap", self.weekly_cap.as_ref())?;
        let monthly_cap = optional_money("monthly_cap", self.monthly_cap.as_ref())?;
        check_monotonic(&[
            ("per_tx_cap", per_tx_cap),
            ("daily_cap", daily_cap),
            ("weekly_cap", weekly_cap),
            ("monthly_cap", monthly_cap),
        ])?;

        let mut per_payee_daily_caps = BTreeMap::new();
        for (payee, cap) in &self.per_payee_daily_caps {
            let address: Address = payee
                .trim()
                .parse()
                .map_err(|_| RulesError::PayeeAddress(payee.clone()))?;
            let cap = money(&format!("per_payee_daily_caps.{payee}"), cap)?;
            if per_payee_daily_caps.insert(address, cap).is_some() {
                return Err(RulesError::DuplicatePayeeCap(address));
            }
        }

        let payee_deny: BTreeSet<Address> = self.payee_deny.iter().copied().collect();
        let payee_allow: Option<BTreeSet<Address>> = self.payee_allow.as_ref().map(|a| a.iter().copied().collect());
        if let Some(both) = payee_allow.iter().flatten().find(|a| payee_deny.contains(*a)) {
            return Err(RulesError::AllowedAndDenied("payee_deny", *both));
        }

        if let Some(networks) = &self.networks {
            for network in networks {
                protocol::network::parse_caip2(network).map_err(|_| RulesError::Network(network.clone()))?;
            }
        }
        let allowed_hours = self.allowed_hours.as_deref().map(parse_hours).transpose()?;
        let velocity = match self.velocity {
            None => None,
            Some(v) if v.max_payments == 0 => return Err(RulesError::Velocity("max_payments")),
            Some(v) if v.per_minutes == 0 => return Err(RulesError::Velocity("per_minutes")),
            Some(v) => Some(Velocity {
                max_payments: v.max_payments,
                per_minutes: v.per_minutes,
            }),
        };
        let approval_above = optional_money("approval_above", self.approval_above.as_ref())?;
        let threshold = check_owners(&self.owners, self.threshold)?;
        let proposal_ttl_seconds = match self.proposal_ttl_seconds {
            Some(0) => return Err(RulesError::ZeroTtl),
            Some(ttl) => ttl,
            None => DEFAULT_PROPOSAL_TTL_SECONDS,
        };

        Ok(PolicyRules {
            per_tx_cap,
            daily_cap,
            weekly_cap,
            monthly_cap,
            per_payee_daily_caps,
            payee_allow,
            payee_deny,
            assets: self.assets.as_ref().map(|a| a.iter().copied().collect()),
            networks: self.networks.as_ref().map(|n| n.iter().cloned().collect()),
            allowed_hours,
            velocity,
            first_time_payee_needs_approval: self.first_time_payee_needs_approval,
            approval_above,
            owners: self.owners.clone(),
            threshold,
            proposal_ttl_seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0x1111111111111111111111111111111111111111";
    const B: &str = "0x2222222222222222222222222222222222222222";
    /// An address with letters, so its upper-case spelling is a different string for the same address.
    const L: &str = "0xabcdefabcdefabcdefabcdefabcdefabcdefabcd";

    fn parse(text: &str) -> Result<PolicyRules, RulesError> {
        toml::from_str::<TreasuryRules>(text).expect("toml").validate()
    }

    fn usd(text: &str) -> U256 {
        protocol::money::parse_price(text, 6).unwrap()
    }

    #[test]
    fn a_full_section_loads_with_every_rule() {
        let rules = parse(&format!(
            r#"
            per_tx_cap = "$10"
            daily_cap = "$100"
            weekly_cap = "$300"
            monthly_cap = "$1000"
            per_payee_daily_caps = {{ "{A}" = "$5" }}
            payee_allow = ["{A}"]
            payee_deny = ["{B}"]
            assets = ["0x3600000000000000000000000000000000000000"]
            networks = ["eip155:5042002"]
            allowed_hours = "09:00-17:30"
            velocity = {{ max_payments = 10, per_minutes = 5 }}
            first_time_payee_needs_approval = true
            approval_above = "$5"
            owners = ["{A}", "{B}", "0x3333333333333333333333333333333333333333"]
            threshold = 2
            "#
        ))
        .unwrap();
        assert_eq!(rules.per_tx_cap(), Some(usd("$10")));
        assert_eq!(rules.daily_cap(), Some(usd("$100")));
        assert_eq!(rules.weekly_cap(), Some(usd("$300")));
        assert_eq!(rules.monthly_cap(), Some(usd("$1000")));
        assert_eq!(rules.per_payee_daily_cap(A.parse().unwrap()), Some(usd("$5")));
        assert_eq!(rules.per_payee_daily_cap(B.parse().unwrap()), None);
        assert_eq!(rules.approval_above(), Some(usd("$5")));
        assert_eq!(rules.velocity_window_seconds(), Some(300));
        assert_eq!(
            rules.allowed_hours().map(|h| h.to_string()).as_deref(),
            Some("09:00-17:30")
        );
        assert!(rules.first_time_payee_needs_approval());
        assert_eq!(rules.owners().len(), 3);
        assert_eq!(rules.threshold(), 2);
        assert_eq!(rules.proposal_ttl_seconds(), DEFAULT_PROPOSAL_TTL_SECONDS);
    }

    #[test]
    fn an_empty_section_is_no_rules() {
        let rules = parse("").unwrap();
        assert_eq!(rules.per_tx_cap(), None);
        assert_eq!(rules.velocity_window_seconds(), None);
        assert_eq!(rules.threshold(), 0);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<TreasuryRules>("daily_limit = \"$5\"").is_err());
        assert!(
            toml::from_str::<TreasuryRules>("velocity = { max_payments = 1, per_minutes = 1, burst = 2 }").is_err()
        );
    }

    #[test]
    fn caps_that_fall_from_one_window_to_the_next_are_refused_naming_both() {
        let err = parse("per_tx_cap = \"$10\"\ndaily_cap = \"$5\"").unwrap_err();
        assert_eq!(err.key(), "treasury.daily_cap");
        assert!(err.to_string().contains("$5 is below per_tx_cap $10"), "{err}");
        // A gap in the chain still compares the caps on either side of it.
        let err = parse("daily_cap = \"$100\"\nmonthly_cap = \"$99\"").unwrap_err();
        assert!(matches!(
            err,
            RulesError::NotMonotonic {
                smaller: "daily_cap",
                larger: "monthly_cap",
                ..
            }
        ));
        let err = parse("per_tx_cap = \"$10\"\nweekly_cap = \"$9.999999\"").unwrap_err();
        assert!(matches!(
            err,
            RulesError::NotMonotonic {
                smaller: "per_tx_cap",
                larger: "weekly_cap",
                ..
            }
        ));
        // Equal caps are monotonic.
        assert!(parse("per_tx_cap = \"$10\"\ndaily_cap = \"$10\"\nweekly_cap = \"10000000\"").is_ok());
    }

    #[test]
    fn bad_money_names_its_key() {
        let err = parse("daily_cap = \"-$5\"").unwrap_err();
        assert_eq!(err.key(), "treasury.daily_cap");
        let err = parse("approval_above = \"five\"").unwrap_err();
        assert_eq!(err.key(), "treasury.approval_above");
        let err = parse(&format!("per_payee_daily_caps = {{ \"{A}\" = \"1e6\" }}")).unwrap_err();
        assert!(
            matches!(
                err,
                RulesError::Money {
                    source: MoneyError::Exponent(_),
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn threshold_must_fit_the_owners() {
        let owners = format!("owners = [\"{A}\", \"{B}\"]\n");
        assert_eq!(
            parse(&format!("{owners}threshold = 0")).unwrap_err(),
            RulesError::Threshold {
                threshold: 0,
                owners: 2
            }
        );
        assert_eq!(
            parse(&format!("{owners}threshold = 3")).unwrap_err(),
            RulesError::Threshold {
                threshold: 3,
                owners: 2
            }
        );
        assert_eq!(parse(&owners).unwrap_err(), RulesError::MissingThreshold);
        assert_eq!(
            parse("threshold = 1").unwrap_err(),
            RulesError::Threshold {
                threshold: 1,
                owners: 0
            }
        );
        assert_eq!(parse(&format!("{owners}threshold = 2")).unwrap().threshold(), 2);
    }

    #[test]
    fn duplicate_and_zero_owners_are_refused() {
        let upper = L.to_uppercase().replace("0X", "0x");
        let err = parse(&format!("owners = [\"{L}\", \"{upper}\"]\nthreshold = 1")).unwrap_err();
        assert_eq!(err, RulesError::DuplicateOwner(L.parse().unwrap()));
        let err = parse(&format!("owners = [\"{}\"]\nthreshold = 1", Address::ZERO)).unwrap_err();
        assert_eq!(err, RulesError::ZeroOwner);
    }

    #[test]
    fn an_address_both_allowed_and_denied_is_refused() {
        let err = parse(&format!("payee_allow = [\"{A}\", \"{B}\"]\npayee_deny = [\"{B}\"]")).unwrap_err();
        assert_eq!(err, RulesError::AllowedAndDenied("payee_deny", B.parse().unwrap()));
        assert_eq!(err.key(), "treasury.payee_deny");
    }

    #[test]
    fn per_payee_caps_need_addresses_written_once() {
        assert_eq!(
            parse("per_payee_daily_caps = { \"bob\" = \"$1\" }").unwrap_err(),
            RulesError::PayeeAddress("bob".into())
        );
        let upper = L.to_uppercase().replace("0X", "0x");
        let err = parse(&format!(
            "per_payee_daily_caps = {{ \"{L}\" = \"$1\", \"{upper}\" = \"$2\" }}"
        ))
        .unwrap_err();
        assert_eq!(err, RulesError::DuplicatePayeeCap(L.parse().unwrap()));
    }

    #[test]
    fn bad_hours_are_refused() {
        for bad in [
            "9:00-17:00",
            "09:00",
            "09:00-24:00",
            "09:60-10:00",
            "09:00-09:00",
            "0900-1700",
            "+9:00-17:00",
            "",
        ] {
            let err = parse(&format!("allowed_hours = \"{bad}\"")).unwrap_err();
            assert_eq!(err.key(), "treasury.allowed_hours", "{bad}: {err}");
        }
        let wraps = parse("allowed_hours = \"22:00-06:00\"").unwrap();
        assert_eq!(
            wraps.allowed_hours().map(|h| h.to_string()).as_deref(),
            Some("22:00-06:00")
        );
        assert!(parse("allowed_hours = \"22:00-00:00\"").is_ok(), "midnight as the end");
    }

    #[test]
    fn velocity_and_ttl_of_zero_and_bad_networks_are_refused() {
        assert_eq!(
            parse("velocity = { max_payments = 0, per_minutes = 5 }").unwrap_err(),
            RulesError::Velocity("max_payments")
        );
        assert_eq!(
            parse("velocity = { max_payments = 3, per_minutes = 0 }").unwrap_err(),
            RulesError::Velocity("per_minutes")
        );
        assert_eq!(parse("proposal_ttl_seconds = 0").unwrap_err(), RulesError::ZeroTtl);
        assert_eq!(parse("proposal_ttl_seconds = 60").unwrap().proposal_ttl_seconds(), 60);
        assert_eq!(
            parse("networks = [\"arc-testnet\"]").unwrap_err(),
            RulesError::Network("arc-testnet".into())
        );
    }
}
