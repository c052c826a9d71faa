//! The treasury's policy engine: given the validated rules, one payment and the payer's history, decide
//! `allow | needs_approval(rule) | deny(rule)`. Pure: no I/O and no clock (the payment's time is an input;
//! the spend ledger supplies the history, summed over the windows in `treasury::periods`, inside the same
//! transaction that reserves the spend).
//!
//! Rules are evaluated in this fixed order and the first refusal is reported:
//!
//! 1. `payee_deny_list` — the payee is denied;
//! 2. `payee_allow_list` — an allow-list is set and the payee is not on it;
//! 3. `asset_not_allowed`, 4. `network_not_allowed` — the token or the CAIP-2 network is not listed;
//! 5. `per_tx_cap` — the amount alone is over the per-payment cap;
//! 6. `outside_allowed_hours` — the time of day (UTC, the window may wrap midnight);
//! 7. `velocity` — already N payments in the last M minutes;
//! 8. `daily_cap` (UTC day), 9. `weekly_cap` (ISO week from Monday 00:00 UTC), 10. `monthly_cap` (calendar
//!    month, UTC), 11. `per_payee_cap` (per payee per UTC day) — spent plus the amount would exceed the cap;
//!
//! each of those a `Deny`; then the approval rules, each a `NeedsApproval`:
//!
//! 12. `first_time_payee` — no earlier payment to this payee;
//! 13. `needs_approval` — the amount is above `approval_above` (M-of-N owners approve).
//!
//! Vocabulary: Circle's agent-wallet policy (commerce.md §4: per-tx ≤ daily ≤ weekly ≤ monthly USDC caps,
//! monotonic and refused otherwise, recipient allow/block lists), Safe/Zodiac (commerce.md §6: an allowance
//! per period for the agent as a role member, humans as Safe owners with a threshold), and the approval
//! inbox users ask for (commerce.md §7: large and first-time payees). Messages say by how much, in dollars
//! (`$12 requested, $95 of $100 spent today`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use alloy::primitives::{Address, U256};
use protocol::money::format_usd;
use serde::Serialize;

use crate::treasury::periods::second_of_day;

const DECIMALS: u8 = 6;

/// UTC hours in which payments may leave: `[start, end)` in minutes of the day; `start > end` wraps midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowedHours {
    pub(super) start_minute: u16,
    pub(super) end_minute: u16,
}

impl AllowedHours {
    /// Whether the second of the day `at` falls in the window.
    pub fn contains(&self, at: i64) -> bool {
        let minute = second_of_day(at) / 60;
        let (start, end) = (i64::from(self.start_minute), i64::from(self.end_minute));
        if start < end {
            start <= minute && minute < end
        } else {
            minute >= start || minute < end
        }
    }
}

fn clock(minute: i64) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

impl fmt::Display for AllowedHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            clock(i64::from(self.start_minute)),
            clock(i64::from(self.end_minute))
        )
    }
}

/// At most `max_payments` in any `per_minutes` minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Velocity {
    pub max_payments: u32,
    pub per_minutes: u32,
}

/// The validated rules; built only through `TreasuryRules::validate` (treasury/rules_config.rs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRules {
    pub(super) per_tx_cap: Option<U256>,
    pub(super) daily_cap: Option<U256>,
    pub(super) weekly_cap: Option<U256>,
    pub(super) monthly_cap: Option<U256>,
    pub(super) per_payee_daily_caps: BTreeMap<Address, U256>,
    pub(super) payee_allow: Option<BTreeSet<Address>>,
    pub(super) payee_deny: BTreeSet<Address>,
    pub(super) assets: Option<BTreeSet<Address>>,
    pub(super) networks: Option<BTreeSet<String>>,
    pub(super) allowed_hours: Option<AllowedHours>,
    pub(super) velocity: Option<Velocity>,
    pub(super) first_time_payee_needs_approval: bool,
    pub(super) approval_above: Option<U256>,
    pub(super) owners: Vec<Address>,
    pub(super) threshold: u32,
    pub(super) proposal_ttl_seconds: u64,
}

impl PolicyRules {
    pub fn per_tx_cap(&self) -> Option<U256> {
        self.per_tx_cap
    }
    pub fn daily_cap(&self) -> Option<U256> {
        self.daily_cap
    }
    pub fn weekly_cap(&self) -> Option<U256> {
        self.weekly_cap
    }
    pub fn monthly_cap(&self) -> Option<U256> {
        self.monthly_cap
    }
    /// What `payee` may receive per UTC day, when it has its own cap.
    pub fn per_payee_daily_cap(&self, payee: Address) -> Option<U256> {
        self.per_payee_daily_caps.get(&payee).copied()
    }
    pub fn per_payee_daily_caps(&self) -> &BTreeMap<Address, U256> {
        &self.per_payee_daily_caps
    }
    pub fn payee_allow(&self) -> Option<&BTreeSet<Address>> {
        self.payee_allow.as_ref()
    }
    pub fn payee_deny(&self) -> &BTreeSet<Address> {
        &self.payee_deny
    }
    pub fn assets(&self) -> Option<&BTreeSet<Address>> {
        self.assets.as_ref()
    }
    pub fn networks(&self) -> Option<&BTreeSet<String>> {
        self.networks.as_ref()
    }
    pub fn allowed_hours(&self) -> Option<AllowedHours> {
        self.allowed_hours
    }
    pub fn velocity(&self) -> Option<Velocity> {
        self.velocity
    }
    /// The velocity window in seconds (`per_minutes` × 60): the ledger counts payments in the last this many.
    pub fn velocity_window_seconds(&self) -> Option<i64> {
        self.velocity.map(|v| i64::from(v.per_minutes) * 60)
    }
    pub fn first_time_payee_needs_approval(&self) -> bool {
        self.first_time_payee_needs_approval
    }
    /// Payments above this need M-of-N approval.
    pub fn approval_above(&self) -> Option<U256> {
        self.approval_above
    }
    /// Local custody's owners (empty when none are configured).
    pub fn owners(&self) -> &[Address] {
        &self.owners
    }
    /// Approvals needed, M of [`owners`](Self::owners); 0 when there are no owners.
    pub fn threshold(&self) -> u32 {
        self.threshold
    }
    pub fn proposal_ttl_seconds(&self) -> u64 {
        self.proposal_ttl_seconds
    }
}

/// The payment being decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFacts {
    pub to: Address,
    /// Atomic units of `asset`.
    pub amount: U256,
    pub asset: Address,
    /// CAIP-2.
    pub network: String,
    /// When it would leave, unix seconds.
    pub at: i64,
}

/// What the payer has already spent, each sum over the window containing `PaymentFacts::at`
/// (`treasury::periods::Windows`), the payment being decided excluded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub spent_today: U256,
    pub spent_this_week: U256,
    pub spent_this_month: U256,
    pub spent_to_payee_today: U256,
    /// Payments in the last `velocity_window_seconds`.
    pub payments_in_velocity_window: u32,
    pub payee_seen_before: bool,
}

/// A rule that refused, or asked for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    PerTxCap,
    DailyCap,
    WeeklyCap,
    MonthlyCap,
    PerPayeeCap,
    PayeeDenyList,
    PayeeAllowList,
    AssetList,
    NetworkList,
    AllowedHours,
    Velocity,
    FirstTimePayee,
    ApprovalThreshold,
}

impl Rule {
    /// The machine-readable name (JSON `rule`, `CustodyError::Refused::rule`).
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::PerTxCap => "per_tx_cap",
            Rule::DailyCap => "daily_cap",
            Rule::WeeklyCap => "weekly_cap",
            Rule::MonthlyCap => "monthly_cap",
            Rule::PerPayeeCap => "per_payee_cap",
            Rule::PayeeDenyList => "payee_deny_list",
            Rule::PayeeAllowList => "payee_allow_list",
            Rule::AssetList => "asset_not_allowed",
            Rule::NetworkList => "network_not_allowed",
            Rule::AllowedHours => "outside_allowed_hours",
            Rule::Velocity => "velocity",
            Rule::FirstTimePayee => "first_time_payee",
            Rule::ApprovalThreshold => "needs_approval",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// The payment may leave once the owners approve (M of N).
    NeedsApproval {
        rule: Rule,
        message: String,
    },
    /// The payment may not leave.
    Deny {
        rule: Rule,
        message: String,
    },
}

impl Decision {
    /// The rule that refused or asks for approval.
    pub fn rule(&self) -> Option<Rule> {
        match self {
            Decision::Allow => None,
            Decision::NeedsApproval { rule, .. } | Decision::Deny { rule, .. } => Some(*rule),
        }
    }
    pub fn is_deny(&self) -> bool {
        matches!(self, Decision::Deny { .. })
    }
}

fn usd(amount: U256) -> String {
    format_usd(amount, DECIMALS)
}

/// `spent + amount > cap`, counting an overflowing sum as over.
fn over(spent: U256, amount: U256, cap: U256) -> bool {
    spent.checked_add(amount).is_none_or(|total| total > cap)
}

fn deny(rule: Rule, message: String) -> Decision {
    Decision::Deny { rule, message }
}

fn window_cap(rule: Rule, cap: Option<U256>, spent: U256, amount: U256, window: &str) -> Option<Decision> {
    let cap = cap?;
    over(spent, amount, cap).then(|| {
        deny(
            rule,
            format!(
                "{} requested, {} of {} spent {window}",
                usd(amount),
                usd(spent),
                usd(cap)
            ),
        )
    })
}

/// The refusals (rules 1–11), in order.
fn refusal(rules: &PolicyRules, p: &PaymentFacts, h: &History) -> Option<Decision> {
    if rules.payee_deny.contains(&p.to) {
        return Some(deny(Rule::PayeeDenyList, format!("payee {} is on the deny list", p.to)));
    }
    if let Some(allow) = &rules.payee_allow
        && !allow.contains(&p.to)
    {
        return Some(deny(
            Rule::PayeeAllowList,
            format!("payee {} is not on the allow list", p.to),
        ));
    }
    if let Some(assets) = &rules.assets
        && !assets.contains(&p.asset)
    {
        return Some(deny(Rule::AssetList, format!("asset {} is not allowed", p.asset)));
    }
    if let Some(networks) = &rules.networks
        && !networks.contains(&p.network)
    {
        return Some(deny(
            Rule::NetworkList,
            format!("network `{}` is not allowed", p.network),
        ));
    }
    if let Some(cap) = rules.per_tx_cap
        && p.amount > cap
    {
        return Some(deny(
            Rule::PerTxCap,
            format!("{} requested, over the {} per-payment cap", usd(p.amount), usd(cap)),
        ));
    }
    if let Some(hours) = rules.allowed_hours
        && !hours.contains(p.at)
    {
        return Some(deny(
            Rule::AllowedHours,
            format!(
                "{} UTC is outside the allowed hours {hours} UTC",
                clock(second_of_day(p.at) / 60)
            ),
        ));
    }
    if let Some(v) = rules.velocity
        && h.payments_in_velocity_window >= v.max_payments
    {
        return Some(deny(
            Rule::Velocity,
            format!(
                "{} payments in the last {} minutes; at most {} allowed",
                h.payments_in_velocity_window, v.per_minutes, v.max_payments
            ),
        ));
    }
    window_cap(Rule::DailyCap, rules.daily_cap, h.spent_today, p.amount, "today")
        .or_else(|| {
            window_cap(
                Rule::WeeklyCap,
                rules.weekly_cap,
                h.spent_this_week,
                p.amount,
                "this week",
            )
        })
        .or_else(|| {
            window_cap(
                Rule::MonthlyCap,
                rules.monthly_cap,
                h.spent_this_month,
                p.amount,
                "this month",
            )
        })
        .or_else(|| {
            let cap = rules.per_payee_daily_caps.get(&p.to).copied();
            window_cap(
                Rule::PerPayeeCap,
                cap,
                h.spent_to_payee_today,
                p.amount,
                &format!("on payee {} today", p.to),
            )
        })
}

fn approvals_needed(rules: &PolicyRules) -> String {
    if rules.owners.is_empty() {
        "needs an owner's approval".to_owned()
    } else {
        format!("needs {} of {} owners' approval", rules.threshold, rules.owners.len())
    }
}

/// Decides one payment; see the module doc for the order.
pub fn evaluate(rules: &PolicyRules, payment: &PaymentFacts, history: &History) -> Decision {
    if let Some(refused) = refusal(rules, payment, history) {
        return refused;
    }
    if rules.first_time_payee_needs_approval && !history.payee_seen_before {
        return Decision::NeedsApproval {
            rule: Rule::FirstTimePayee,
            message: format!("first payment to {}; {}", payment.to, approvals_needed(rules)),
        };
    }
    if let Some(above) = rules.approval_above
        && payment.amount > above
    {
        return Decision::NeedsApproval {
            rule: Rule::ApprovalThreshold,
            message: format!(
                "{} requested, above the {} approval threshold; {}",
                usd(payment.amount),
                usd(above),
                approvals_needed(rules)
            ),
        };
    }
    Decision::Allow
}
