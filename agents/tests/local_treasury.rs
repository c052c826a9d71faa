//! Local treasury custody against the spend ledger: the policy's history is read in the transaction that
//! reserves the spend, so concurrent reservations from two ledger handles (two pools, as two processes)
//! never exceed the daily cap, on SQLite and on PostgreSQL; a payment above the approval amount becomes a
//! proposal, and only an approved proposal for that same payment lets it through, once.

use std::sync::Arc;

use agents::buyer::spend_ledger::{Budgets, NewSpend, SpendKind, SpendLedger, unix_now};
use agents::buyer::x402_client::PayError;
use agents::treasury::ledger_policy::TreasuryGuard;
use agents::treasury::proposals::ProposalKind;
use agents::treasury::rules_config::TreasuryRules;
use alloy::primitives::{Address, B256};
use tokio::sync::Barrier;

const RESERVES: usize = 24;
/// $1 a payment.
const PRICE: i64 = 1_000_000;

fn spend<'a>(payer: Address, pay_to: Address, amount: i64, url: &'a str) -> NewSpend<'a> {
    NewSpend {
        kind: SpendKind::X402,
        url,
        host: "seller.example",
        network: "eip155:5042002",
        asset: protocol::network::ARC_USDC,
        pay_to,
        payer,
        nonce: B256::random(),
        amount,
        valid_before: Some(unix_now() + 60),
        tx_hash: None,
        chain_nonce: None,
    }
}

fn rules(text: &str) -> agents::treasury::policy_engine::PolicyRules {
    toml::from_str::<TreasuryRules>(text).unwrap().validate().unwrap()
}

/// 24 reservations of $1 released at once against a $5 daily cap, from two ledger handles: exactly five
/// are recorded, and the ledger rows say so.
async fn concurrent_reserves_hold_the_daily_cap(url: &str) {
    let ledgers = [
        SpendLedger::open(url).await.unwrap(),
        SpendLedger::open(url).await.unwrap(),
    ];
    let rules = rules("daily_cap = \"$5\"");
    let guards = [
        TreasuryGuard::new(rules.clone(), ledgers[0].clone()),
        TreasuryGuard::new(rules, ledgers[1].clone()),
    ];
    for round in 0..3 {
        let payer = Address::random();
        let barrier = Arc::new(Barrier::new(RESERVES));
        let now = unix_now();
        let tasks: Vec<_> = (0..RESERVES)
            .map(|i| {
                let (guard, barrier) = (guards[i % 2].clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let s = spend(payer, Address::repeat_byte(0x42), PRICE, "http://seller.example/paid");
                    guard
                        .reserve(&s, Budgets::default(), now, None, ProposalKind::X402, "")
                        .await
                })
            })
            .collect();
        let mut recorded = 0;
        let mut refused = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => recorded += 1,
                Err(PayError::PolicyDenied { rule, .. }) => {
                    assert_eq!(rule, "daily_cap");
                    refused += 1;
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((recorded, refused), (5, RESERVES - 5), "round {round}");
        let rows = ledgers[1].recent(10_000).await.unwrap();
        let rows = rows.iter().filter(|r| r.payer == payer.to_checksum(None)).count();
        assert_eq!(rows, 5, "refused reservations leave no row (round {round})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_concurrent_reserves_never_exceed_the_daily_cap() {
    let dir = std::env::temp_dir().join(format!("nerdcabal-treasury-race-{}", B256::random()));
    std::fs::create_dir_all(&dir).unwrap();
    concurrent_reserves_hold_the_daily_cap(&format!("sqlite://{}", dir.join("spend.db").display())).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[path = "../../tests/support/postgres.rs"]
mod postgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_reserves_never_exceed_the_daily_cap() {
    let (db, url) = postgres::create_database("treasury_race").await;
    let outcome = tokio::spawn(async move { concurrent_reserves_hold_the_daily_cap(&url).await }).await;
    postgres::drop_database(&db).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
}

#[tokio::test]
async fn a_payment_above_the_approval_amount_waits_and_only_its_approved_proposal_lets_it_through_once() {
    let ledger = SpendLedger::open("sqlite::memory:").await.unwrap();
    let owners = "owners = [\"0x1111111111111111111111111111111111111111\", \
                  \"0x2222222222222222222222222222222222222222\"]\nthreshold = 2";
    let guard = TreasuryGuard::new(rules(&format!("approval_above = \"$5\"\n{owners}")), ledger.clone());
    let (payer, payee) = (Address::random(), Address::repeat_byte(0x42));
    let url = "http://seller.example/dear";
    let now = unix_now();
    let reserve = |amount: i64, url: &'static str, proposal: Option<u64>| {
        let guard = guard.clone();
        async move {
            guard
                .reserve(
                    &spend(payer, payee, amount, url),
                    Budgets::default(),
                    now,
                    proposal,
                    ProposalKind::X402,
                    "",
                )
                .await
        }
    };
    reserve(5 * PRICE, url, None)
        .await
        .expect("at the approval amount it pays");
    let Err(PayError::NeedsApproval {
        proposal_id,
        rule,
        approvals,
        required,
    }) = reserve(6 * PRICE, url, None).await
    else {
        panic!("above the approval amount it waits");
    };
    assert_eq!((rule.as_str(), approvals, required), ("needs_approval", 0, 2));
    let row = guard.proposals().get(proposal_id, now).await.unwrap().unwrap();
    assert_eq!(
        (row.state.as_str(), row.url.as_deref(), row.amount),
        ("pending_approval", Some(url), 6 * PRICE)
    );
    // Pending: not usable yet.
    assert!(matches!(
        reserve(6 * PRICE, url, Some(proposal_id)).await,
        Err(PayError::ApprovalDenied(_))
    ));
    assert!(
        guard
            .proposals()
            .transition(proposal_id, "pending_approval", "approved", None, None, now)
            .await
            .unwrap()
    );
    // Approved, but for this URL and no more money.
    assert!(matches!(
        reserve(6 * PRICE, "http://seller.example/other", Some(proposal_id)).await,
        Err(PayError::ApprovalDenied(_))
    ));
    assert!(matches!(
        reserve(7 * PRICE, url, Some(proposal_id)).await,
        Err(PayError::ApprovalDenied(_))
    ));
    let payment = reserve(6 * PRICE, url, Some(proposal_id))
        .await
        .expect("the approved payment");
    let row = guard.proposals().get(proposal_id, now).await.unwrap().unwrap();
    assert_eq!(
        (row.state.as_str(), row.payment_id.as_deref()),
        ("executed", Some(payment.as_str()))
    );
    assert!(
        matches!(
            reserve(6 * PRICE, url, Some(proposal_id)).await,
            Err(PayError::ApprovalDenied(_))
        ),
        "used once"
    );
    let rows = ledger.recent(100).await.unwrap();
    assert_eq!(rows.len(), 2, "the $5 payment and the approved $6 one");
}

#[tokio::test]
async fn without_owners_a_payment_that_needs_approval_is_refused() {
    let ledger = SpendLedger::open("sqlite::memory:").await.unwrap();
    let guard = TreasuryGuard::new(rules("approval_above = \"$5\""), ledger.clone());
    let s = spend(Address::random(), Address::repeat_byte(1), 6 * PRICE, "http://h/x");
    let result = guard
        .reserve(&s, Budgets::default(), unix_now(), None, ProposalKind::X402, "")
        .await;
    assert!(
        matches!(result, Err(PayError::PolicyDenied { ref rule, .. }) if rule == "needs_approval"),
        "{result:?}"
    );
    assert!(ledger.recent(10).await.unwrap().is_empty());
    assert_eq!(guard.proposals().count().await.unwrap(), 0);
}
