//! The treasury policy engine through its public API: each rule refuses with its own name and says by how
//! much; when several rules fail the earliest in the documented order is reported; and three properties
//! (an allowed payment never takes a window past its cap, a denial survives more history, more rules never
//! allow what fewer denied).

use agents::treasury::policy_engine::{Decision, History, PaymentFacts, PolicyRules, Rule, evaluate};
use agents::treasury::rules_config::TreasuryRules;
use alloy::primitives::{Address, U256, address};
use proptest::prelude::*;

const A: Address = address!("0x1111111111111111111111111111111111111111");
const B: Address = address!("0x2222222222222222222222222222222222222222");
const C: Address = address!("0x3333333333333333333333333333333333333333");
const USDC: Address = address!("0x3600000000000000000000000000000000000000");
const OTHER_TOKEN: Address = address!("0x4444444444444444444444444444444444444444");
const ARC: &str = "eip155:5042002";
const MAINNET: &str = "eip155:1";
/// Friday 2026-12-04 00:00 UTC.
const DAY_START: i64 = 1_796_342_400;
const NOON: i64 = DAY_START + 12 * 3600;

fn rules(toml_text: &str) -> PolicyRules {
    toml::from_str::<TreasuryRules>(toml_text)
        .expect("toml")
        .validate()
        .expect("valid rules")
}

fn usd(text: &str) -> U256 {
    protocol::money::parse_price(text, 6).unwrap()
}

fn pay(to: Address, amount: &str) -> PaymentFacts {
    PaymentFacts {
        to,
        amount: usd(amount),
        asset: USDC,
        network: ARC.to_owned(),
        at: NOON,
    }
}

fn seen() -> History {
    History {
        payee_seen_before: true,
        ..History::default()
    }
}

fn denied(decision: &Decision) -> (Rule, &str) {
    match decision {
        Decision::Deny { rule, message } => (*rule, message),
        other => panic!("expected a denial, got {other:?}"),
    }
}

fn needs_approval(decision: &Decision) -> (Rule, &str) {
    match decision {
        Decision::NeedsApproval { rule, message } => (*rule, message),
        other => panic!("expected needs_approval, got {other:?}"),
    }
}

#[test]
fn rule_names_are_the_documented_vocabulary() {
    let names: Vec<&str> = [
        Rule::PerTxCap,
        Rule::DailyCap,
        Rule::WeeklyCap,
        Rule::MonthlyCap,
        Rule::PerPayeeCap,
        Rule::PayeeDenyList,
        Rule::PayeeAllowList,
        Rule::AssetList,
        Rule::NetworkList,
        Rule::AllowedHours,
        Rule::Velocity,
        Rule::FirstTimePayee,
        Rule::ApprovalThreshold,
    ]
    .into_iter()
    .map(Rule::as_str)
    .collect();
    assert_eq!(
        names,
        [
            "per_tx_cap",
            "daily_cap",
            "weekly_cap",
            "monthly_cap",
            "per_payee_cap",
            "payee_deny_list",
            "payee_allow_list",
            "asset_not_allowed",
            "network_not_allowed",
            "outside_allowed_hours",
            "velocity",
            "first_time_payee",
            "needs_approval"
        ]
    );
    assert_eq!(serde_json::to_value(Rule::DailyCap).unwrap(), "daily_cap");
}

#[test]
fn no_rules_allow_everything() {
    let r = rules("");
    let mut p = pay(A, "$1000000");
    p.asset = OTHER_TOKEN;
    p.network = MAINNET.into();
    assert_eq!(evaluate(&r, &p, &History::default()), Decision::Allow);
}

#[test]
fn deny_list_refuses_its_payees_only() {
    let r = rules(&format!("payee_deny = [\"{A}\"]"));
    let d = evaluate(&r, &pay(A, "$1"), &seen());
    assert_eq!(
        denied(&d),
        (Rule::PayeeDenyList, format!("payee {A} is on the deny list").as_str())
    );
    assert_eq!(evaluate(&r, &pay(B, "$1"), &seen()), Decision::Allow);
}

#[test]
fn allow_list_refuses_everyone_else() {
    let r = rules(&format!("payee_allow = [\"{A}\"]"));
    assert_eq!(evaluate(&r, &pay(A, "$1"), &seen()), Decision::Allow);
    let d = evaluate(&r, &pay(B, "$1"), &seen());
    assert_eq!(denied(&d).0, Rule::PayeeAllowList);
    assert!(denied(&d).1.contains(&B.to_string()));
    let nobody = rules("payee_allow = []");
    assert_eq!(
        denied(&evaluate(&nobody, &pay(A, "$1"), &seen())).0,
        Rule::PayeeAllowList
    );
}

#[test]
fn asset_and_network_lists() {
    let r = rules(&format!("assets = [\"{USDC}\"]\nnetworks = [\"{ARC}\"]"));
    assert_eq!(evaluate(&r, &pay(A, "$1"), &seen()), Decision::Allow);
    let mut p = pay(A, "$1");
    p.asset = OTHER_TOKEN;
    assert_eq!(denied(&evaluate(&r, &p, &seen())).0, Rule::AssetList);
    let mut p = pay(A, "$1");
    p.network = MAINNET.into();
    let d = evaluate(&r, &p, &seen());
    assert_eq!(denied(&d), (Rule::NetworkList, "network `eip155:1` is not allowed"));
}

#[test]
fn per_tx_cap_allows_the_cap_and_refuses_one_unit_over() {
    let r = rules("per_tx_cap = \"$10\"");
    assert_eq!(evaluate(&r, &pay(A, "$10"), &seen()), Decision::Allow);
    let d = evaluate(&r, &pay(A, "$10.000001"), &seen());
    assert_eq!(
        denied(&d),
        (Rule::PerTxCap, "$10.000001 requested, over the $10 per-payment cap")
    );
}

#[test]
fn allowed_hours_start_inclusive_end_exclusive() {
    let r = rules("allowed_hours = \"09:00-17:30\"");
    let at = |h: i64, m: i64, s: i64| {
        let mut p = pay(A, "$1");
        p.at = DAY_START + h * 3600 + m * 60 + s;
        evaluate(&r, &p, &seen())
    };
    assert_eq!(at(9, 0, 0), Decision::Allow);
    assert_eq!(at(17, 29, 59), Decision::Allow);
    assert_eq!(
        denied(&at(17, 30, 0)),
        (
            Rule::AllowedHours,
            "17:30 UTC is outside the allowed hours 09:00-17:30 UTC"
        )
    );
    assert_eq!(denied(&at(8, 59, 59)).0, Rule::AllowedHours);
}

#[test]
fn allowed_hours_may_wrap_midnight() {
    let r = rules("allowed_hours = \"22:00-06:00\"");
    let at = |h: i64, m: i64| {
        let mut p = pay(A, "$1");
        p.at = DAY_START + h * 3600 + m * 60;
        evaluate(&r, &p, &seen())
    };
    assert_eq!(at(23, 0), Decision::Allow);
    assert_eq!(at(0, 0), Decision::Allow);
    assert_eq!(at(5, 59), Decision::Allow);
    assert_eq!(denied(&at(6, 0)).0, Rule::AllowedHours);
    assert_eq!(denied(&at(12, 0)).0, Rule::AllowedHours);
    assert_eq!(denied(&at(21, 59)).0, Rule::AllowedHours);
}

#[test]
fn velocity_allows_n_payments_per_window_and_refuses_the_next() {
    let r = rules("velocity = { max_payments = 3, per_minutes = 5 }");
    assert_eq!(r.velocity_window_seconds(), Some(300));
    let with = |n| History {
        payments_in_velocity_window: n,
        ..seen()
    };
    assert_eq!(evaluate(&r, &pay(A, "$1"), &with(2)), Decision::Allow);
    let d = evaluate(&r, &pay(A, "$1"), &with(3));
    assert_eq!(
        denied(&d),
        (Rule::Velocity, "3 payments in the last 5 minutes; at most 3 allowed")
    );
}

#[test]
fn daily_cap_says_by_how_much() {
    let r = rules("daily_cap = \"$100\"");
    let spent = History {
        spent_today: usd("$95"),
        ..seen()
    };
    assert_eq!(
        evaluate(&r, &pay(A, "$5"), &spent),
        Decision::Allow,
        "exactly up to the cap"
    );
    let d = evaluate(&r, &pay(A, "$12"), &spent);
    assert_eq!(denied(&d), (Rule::DailyCap, "$12 requested, $95 of $100 spent today"));
}

#[test]
fn weekly_and_monthly_caps() {
    let r = rules("weekly_cap = \"$300\"\nmonthly_cap = \"$1000\"");
    let week = History {
        spent_this_week: usd("$299.5"),
        ..seen()
    };
    let d = evaluate(&r, &pay(A, "$1"), &week);
    assert_eq!(
        denied(&d),
        (Rule::WeeklyCap, "$1 requested, $299.5 of $300 spent this week")
    );
    let month = History {
        spent_this_month: usd("$999"),
        ..seen()
    };
    assert_eq!(evaluate(&r, &pay(A, "$1"), &month), Decision::Allow);
    let d = evaluate(&r, &pay(A, "$2"), &month);
    assert_eq!(
        denied(&d),
        (Rule::MonthlyCap, "$2 requested, $999 of $1000 spent this month")
    );
}

#[test]
fn per_payee_cap_applies_to_its_payee_only() {
    let r = rules(&format!("per_payee_daily_caps = {{ \"{A}\" = \"$5\" }}"));
    let paid = History {
        spent_to_payee_today: usd("$3"),
        ..seen()
    };
    assert_eq!(evaluate(&r, &pay(A, "$2"), &paid), Decision::Allow);
    let d = evaluate(&r, &pay(A, "$3"), &paid);
    assert_eq!(
        denied(&d),
        (
            Rule::PerPayeeCap,
            format!("$3 requested, $3 of $5 spent on payee {A} today").as_str()
        )
    );
    assert_eq!(
        evaluate(&r, &pay(B, "$300"), &paid),
        Decision::Allow,
        "B has no cap of its own"
    );
}

#[test]
fn a_history_near_u256_max_is_over_the_cap_not_a_panic() {
    let r = rules("daily_cap = \"$100\"");
    let h = History {
        spent_today: U256::MAX,
        ..seen()
    };
    assert_eq!(denied(&evaluate(&r, &pay(A, "$0.000001"), &h)).0, Rule::DailyCap);
}

#[test]
fn first_time_payee_needs_approval_once() {
    let r = rules(&format!(
        "first_time_payee_needs_approval = true\nowners = [\"{A}\", \"{B}\", \"{C}\"]\nthreshold = 2"
    ));
    let d = evaluate(&r, &pay(A, "$1"), &History::default());
    assert_eq!(
        needs_approval(&d),
        (
            Rule::FirstTimePayee,
            format!("first payment to {A}; needs 2 of 3 owners' approval").as_str()
        )
    );
    assert_eq!(evaluate(&r, &pay(A, "$1"), &seen()), Decision::Allow);
}

#[test]
fn amounts_above_the_approval_threshold_need_approval() {
    let r = rules(&format!(
        "approval_above = \"$5\"\nowners = [\"{A}\", \"{B}\", \"{C}\"]\nthreshold = 2"
    ));
    assert_eq!(
        evaluate(&r, &pay(A, "$5"), &seen()),
        Decision::Allow,
        "at the threshold is not above it"
    );
    let d = evaluate(&r, &pay(A, "$5.01"), &seen());
    assert_eq!(
        needs_approval(&d),
        (
            Rule::ApprovalThreshold,
            "$5.01 requested, above the $5 approval threshold; needs 2 of 3 owners' approval"
        )
    );
    assert_eq!(r.approval_above(), Some(usd("$5")));
}

/// Every rule fails at once; removing them one by one from the top reports each next rule in the
/// documented order, and with none left the payment is allowed.
#[test]
fn the_first_failing_rule_in_the_documented_order_is_reported() {
    let mut lines: Vec<(&str, String)> = vec![
        ("payee_deny", format!("payee_deny = [\"{A}\"]")),
        ("payee_allow", format!("payee_allow = [\"{B}\"]")),
        ("assets", format!("assets = [\"{OTHER_TOKEN}\"]")),
        ("networks", format!("networks = [\"{MAINNET}\"]")),
        ("per_tx_cap", "per_tx_cap = \"$10\"".into()),
        ("allowed_hours", "allowed_hours = \"01:00-02:00\"".into()),
        ("velocity", "velocity = { max_payments = 1, per_minutes = 1 }".into()),
        ("daily_cap", "daily_cap = \"$100\"".into()),
        ("weekly_cap", "weekly_cap = \"$200\"".into()),
        ("monthly_cap", "monthly_cap = \"$300\"".into()),
        ("per_payee", format!("per_payee_daily_caps = {{ \"{A}\" = \"$15\" }}")),
        ("first_time", "first_time_payee_needs_approval = true".into()),
        ("approval_above", "approval_above = \"$5\"".into()),
    ];
    let expected = [
        Rule::PayeeDenyList,
        Rule::PayeeAllowList,
        Rule::AssetList,
        Rule::NetworkList,
        Rule::PerTxCap,
        Rule::AllowedHours,
        Rule::Velocity,
        Rule::DailyCap,
        Rule::WeeklyCap,
        Rule::MonthlyCap,
        Rule::PerPayeeCap,
        Rule::FirstTimePayee,
        Rule::ApprovalThreshold,
    ];
    let payment = pay(A, "$20");
    let history = History {
        spent_today: usd("$90"),
        spent_this_week: usd("$190"),
        spent_this_month: usd("$290"),
        spent_to_payee_today: U256::ZERO,
        payments_in_velocity_window: 1,
        payee_seen_before: false,
    };
    for rule in expected {
        let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        let decision = evaluate(&rules(&text.join("\n")), &payment, &history);
        assert_eq!(decision.rule(), Some(rule), "with {:?}: {decision:?}", lines[0].0);
        let refusal = !matches!(rule, Rule::FirstTimePayee | Rule::ApprovalThreshold);
        assert_eq!(decision.is_deny(), refusal, "{decision:?}");
        lines.remove(0);
    }
    assert!(lines.is_empty());
    assert_eq!(evaluate(&rules(""), &payment, &history), Decision::Allow);
}

// ---- properties ----

/// A rule set drawn from a small universe (three payees, two assets, two networks) so rules bite often;
/// each rule is present or not, caps are drawn sorted so they are monotonic.
#[derive(Debug, Clone)]
struct Drawn {
    caps: [Option<u64>; 4],
    per_payee: Option<(usize, u64)>,
    deny: Option<usize>,
    allow: Option<Vec<usize>>,
    assets: Option<Vec<usize>>,
    networks: Option<Vec<usize>>,
    hours: Option<(u16, u16)>,
    velocity: Option<(u32, u32)>,
    first_time: bool,
    approval_above: Option<u64>,
}

const PAYEES: [Address; 3] = [A, B, C];
const ASSETS: [Address; 2] = [USDC, OTHER_TOKEN];
const NETWORKS: [&str; 2] = [ARC, MAINNET];

fn hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

impl Drawn {
    /// `mask` bit i keeps rule i (there are 13); a subset of a valid set is valid.
    fn treasury_rules(&self, mask: u16) -> TreasuryRules {
        let on = |i: u16| mask & (1 << i) != 0;
        let cap = |i: usize| self.caps[i].filter(|_| on(i as u16)).map(|c| c.to_string());
        let mut t = TreasuryRules {
            per_tx_cap: cap(0),
            daily_cap: cap(1),
            weekly_cap: cap(2),
            monthly_cap: cap(3),
            ..TreasuryRules::default()
        };
        if let Some((payee, c)) = self.per_payee.filter(|_| on(4)) {
            t.per_payee_daily_caps.insert(PAYEES[payee].to_string(), c.to_string());
        }
        if let Some(d) = self.deny.filter(|_| on(5)) {
            t.payee_deny = vec![PAYEES[d]];
        }
        if on(6) {
            t.payee_allow = self.allow.as_ref().map(|a| {
                a.iter()
                    .map(|&i| PAYEES[i])
                    .filter(|p| !t.payee_deny.contains(p))
                    .collect()
            });
        }
        if on(7) {
            t.assets = self.assets.as_ref().map(|a| a.iter().map(|&i| ASSETS[i]).collect());
        }
        if on(8) {
            t.networks = self
                .networks
                .as_ref()
                .map(|n| n.iter().map(|&i| NETWORKS[i].to_owned()).collect());
        }
        if let Some((start, end)) = self.hours.filter(|_| on(9)) {
            t.allowed_hours = Some(format!("{}-{}", hhmm(start), hhmm(end)));
        }
        if let Some((max_payments, per_minutes)) = self.velocity.filter(|_| on(10)) {
            t.velocity = Some(agents::treasury::rules_config::VelocityRules {
                max_payments,
                per_minutes,
            });
        }
        t.first_time_payee_needs_approval = self.first_time && on(11);
        t.approval_above = self.approval_above.filter(|_| on(12)).map(|c| c.to_string());
        t
    }

    fn rules(&self, mask: u16) -> PolicyRules {
        self.treasury_rules(mask).validate().expect("drawn rules are valid")
    }
}

fn subset(n: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::sample::subsequence((0..n).collect::<Vec<_>>(), 0..=n)
}

fn drawn() -> impl Strategy<Value = Drawn> {
    let caps = (
        proptest::collection::vec(0u64..2_000, 4),
        proptest::collection::vec(any::<bool>(), 4),
    )
        .prop_map(|(mut values, present)| {
            values.sort_unstable();
            std::array::from_fn(|i| present[i].then_some(values[i]))
        });
    let hours = (0u16..1440, 1u16..1440).prop_map(|(start, len)| (start, (start + len) % 1440));
    (
        caps,
        proptest::option::of((0usize..3, 0u64..2_000)),
        proptest::option::of(0usize..3),
        proptest::option::of(subset(3)),
        proptest::option::of(subset(2)),
        proptest::option::of(subset(2)),
        proptest::option::of(hours),
        proptest::option::of((1u32..5, 1u32..10)),
        any::<bool>(),
        proptest::option::of(0u64..2_000),
    )
        .prop_map(
            |(caps, per_payee, deny, allow, assets, networks, hours, velocity, first_time, approval_above)| Drawn {
                caps,
                per_payee,
                deny,
                allow,
                assets,
                networks,
                hours,
                velocity,
                first_time,
                approval_above,
            },
        )
}

fn payment() -> impl Strategy<Value = PaymentFacts> {
    (0usize..3, 0u64..2_500, 0usize..2, 0usize..2, 0i64..7 * 86_400).prop_map(|(to, amount, asset, network, at)| {
        PaymentFacts {
            to: PAYEES[to],
            amount: U256::from(amount),
            asset: ASSETS[asset],
            network: NETWORKS[network].to_owned(),
            at: DAY_START + at,
        }
    })
}

fn history() -> impl Strategy<Value = History> {
    (
        0u64..3_000,
        0u64..3_000,
        0u64..3_000,
        0u64..3_000,
        0u32..8,
        any::<bool>(),
    )
        .prop_map(|(today, week, month, payee, count, seen)| History {
            spent_today: U256::from(today),
            spent_this_week: U256::from(week),
            spent_this_month: U256::from(month),
            spent_to_payee_today: U256::from(payee),
            payments_in_velocity_window: count,
            payee_seen_before: seen,
        })
}

const ALL: u16 = (1 << 13) - 1;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// With monotonic caps, a payment the engine allows keeps every window's spending within its cap
    /// (and the velocity count under its maximum).
    #[test]
    fn an_allowed_payment_never_takes_a_window_past_its_cap(d in drawn(), p in payment(), h in history()) {
        let r = d.rules(ALL);
        if evaluate(&r, &p, &h) == Decision::Allow {
            let within = |cap: Option<U256>, spent: U256| cap.is_none_or(|c| spent + p.amount <= c);
            prop_assert!(r.per_tx_cap().is_none_or(|c| p.amount <= c));
            prop_assert!(within(r.daily_cap(), h.spent_today));
            prop_assert!(within(r.weekly_cap(), h.spent_this_week));
            prop_assert!(within(r.monthly_cap(), h.spent_this_month));
            prop_assert!(within(r.per_payee_daily_cap(p.to), h.spent_to_payee_today));
            prop_assert!(r.velocity().is_none_or(|v| h.payments_in_velocity_window < v.max_payments));
        }
    }

    /// More spending, more payments in the window, a payee now seen before: a denial stays a denial.
    #[test]
    fn a_denial_is_stable_under_raising_history(
        d in drawn(),
        p in payment(),
        h in history(),
        more in (0u64..3_000, 0u64..3_000, 0u64..3_000, 0u64..3_000, 0u32..8, any::<bool>()),
    ) {
        let r = d.rules(ALL);
        let before = evaluate(&r, &p, &h);
        let raised = History {
            spent_today: h.spent_today + U256::from(more.0),
            spent_this_week: h.spent_this_week + U256::from(more.1),
            spent_this_month: h.spent_this_month + U256::from(more.2),
            spent_to_payee_today: h.spent_to_payee_today + U256::from(more.3),
            payments_in_velocity_window: h.payments_in_velocity_window + more.4,
            payee_seen_before: h.payee_seen_before || more.5,
        };
        if before.is_deny() {
            let after = evaluate(&r, &p, &raised);
            prop_assert!(after.is_deny(), "{before:?} became {after:?}");
        }
    }

    /// Adding rules never turns a denial into an allowance (nor anything refused into an allowance).
    #[test]
    fn adding_rules_never_turns_a_denial_into_an_allowance(
        d in drawn(),
        p in payment(),
        h in history(),
        fewer in 0u16..=ALL,
        extra in 0u16..=ALL,
    ) {
        let more = fewer | extra;
        let with_fewer = evaluate(&d.rules(fewer), &p, &h);
        let with_more = evaluate(&d.rules(more), &p, &h);
        if with_fewer.is_deny() {
            prop_assert!(with_more.is_deny(), "{with_fewer:?} became {with_more:?}");
        }
        if with_fewer != Decision::Allow {
            prop_assert!(with_more != Decision::Allow, "{with_fewer:?} became Allow");
        }
    }
}
