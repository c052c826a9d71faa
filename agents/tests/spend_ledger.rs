//! The spend ledger under contention, on SQLite and on PostgreSQL: 32 reservations released at once by one
//! barrier, from two ledger handles (two pools, as two processes would have) on the same database, against a
//! budget that fits two — exactly two are recorded, twenty rounds in a row.

use std::sync::Arc;

use agents::buyer::spend_ledger::{Budgets, NewSpend, SpendKind, SpendLedger, day_start, unix_now};
use alloy::primitives::{Address, B256};
use tokio::sync::Barrier;

const RESERVES: usize = 32;
const ROUNDS: usize = 20;
const PRICE: i64 = 1_000;

fn spend(payer: Address, host: &str) -> NewSpend<'_> {
    NewSpend {
        kind: SpendKind::X402,
        url: "http://seller.example/paid",
        host,
        network: "eip155:5042002",
        asset: protocol::network::ARC_USDC,
        pay_to: Address::repeat_byte(0x42),
        payer,
        nonce: B256::random(),
        amount: PRICE,
        valid_before: Some(unix_now() + 60),
        tx_hash: None,
        chain_nonce: None,
    }
}

/// One round: a fresh payer, 32 reservations released together; returns how many were recorded.
async fn round(ledgers: &[SpendLedger; 2], budgets: Budgets, host_of: fn(usize) -> &'static str) -> usize {
    let payer = Address::random();
    let barrier = Arc::new(Barrier::new(RESERVES));
    let now = unix_now();
    let tasks: Vec<_> = (0..RESERVES)
        .map(|i| {
            let (ledger, barrier) = (ledgers[i % 2].clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                ledger
                    .reserve(&spend(payer, host_of(i)), budgets, now)
                    .await
                    .expect("the ledger answers")
            })
        })
        .collect();
    let mut recorded = 0;
    for task in tasks {
        if task.await.unwrap().is_ok() {
            recorded += 1;
        }
    }
    let spent = ledgers[0].spent_since(payer, day_start(now), None).await.unwrap();
    assert_eq!(spent, recorded as i64 * PRICE, "the ledger holds what was admitted");
    let rows = ledgers[1].recent(1_000).await.unwrap();
    let rows = rows.iter().filter(|r| r.payer == payer.to_checksum(None)).count();
    assert_eq!(rows, recorded, "refused reservations leave no row");
    recorded
}

async fn twenty_rounds(url: &str) {
    let ledgers = [
        SpendLedger::open(url).await.unwrap(),
        SpendLedger::open(url).await.unwrap(),
    ];
    let daily = Budgets {
        daily: Some(2 * PRICE + PRICE / 2),
        per_host_daily: None,
    };
    for n in 0..ROUNDS {
        assert_eq!(
            round(&ledgers, daily, |_| "seller.example").await,
            2,
            "daily budget, round {n}"
        );
    }
    // The per-host budget holds the same way, while another host's budget is untouched.
    let host = Budgets {
        daily: None,
        per_host_daily: Some(2 * PRICE),
    };
    for n in 0..ROUNDS {
        let recorded = round(&ledgers, host, |i| {
            if i % 4 == 0 { "other.example" } else { "seller.example" }
        })
        .await;
        assert_eq!(recorded, 4, "two per host, round {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_admits_exactly_what_the_budget_fits_under_contention() {
    let dir = std::env::temp_dir().join(format!("nerdcabal-ledger-race-{}", B256::random()));
    std::fs::create_dir_all(&dir).unwrap();
    twenty_rounds(&format!("sqlite://{}", dir.join("spend.db").display())).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[path = "../../tests/support/postgres.rs"]
mod postgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_admits_exactly_what_the_budget_fits_under_contention() {
    let (db, url) = postgres::create_database("ledger_race").await;
    let outcome = tokio::spawn(async move { twenty_rounds(&url).await }).await;
    postgres::drop_database(&db).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
}
