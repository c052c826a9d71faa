//! The settlement ledger on SQLite and on PostgreSQL: a key is reserved once however many callers race for it
//! (across replicas, inside group commits), transitions only move forward, stale reservations are released,
//! and in-flight amounts add up.

mod common;

use alloy::primitives::{Address, B256, Bytes, U256};
use facilitator::ledger::{Ledger, NewSettlement, Reservation, SettlementKey, SettlementState};

fn settlement(payer: Address, nonce: B256, amount: u64) -> NewSettlement {
    NewSettlement {
        key: SettlementKey {
            network: "eip155:31337".into(),
            asset: Address::repeat_byte(0x36),
            payer,
            nonce,
        },
        payload_hash: B256::repeat_byte(0xaa),
        pay_to: Address::repeat_byte(2),
        amount: U256::from(amount),
    }
}

async fn lifecycle(ledger: Ledger) {
    let payer = Address::random();
    let first = settlement(payer, B256::random(), 10_000);
    assert_eq!(ledger.reserve(&first).await.unwrap(), Reservation::Reserved);
    let Reservation::Existing(row) = ledger.reserve(&first).await.unwrap() else {
        panic!("second reserve won")
    };
    assert_eq!(
        (row.state, row.amount, row.key.payer),
        (SettlementState::Reserved, U256::from(10_000u64), payer)
    );

    let second = settlement(payer, B256::random(), 2_500);
    ledger.reserve(&second).await.unwrap();
    let unrelated = SettlementKey {
        nonce: B256::ZERO,
        ..first.key.clone()
    };
    assert_eq!(
        ledger.payer_view(&unrelated).await.unwrap(),
        (None, U256::from(12_500u64))
    );
    assert_eq!(
        ledger.payer_view(&second.key).await.unwrap(),
        (Some(SettlementState::Reserved), U256::from(10_000u64))
    );

    let tx = B256::random();
    let raw = Bytes::from_static(b"\x02signed");
    assert!(
        !ledger.mark_confirmed(&first.key, tx).await.unwrap(),
        "reserved cannot jump to confirmed"
    );
    assert!(
        ledger
            .mark_submitted(&first.key, tx, &raw, Address::repeat_byte(9), 7)
            .await
            .unwrap()
    );
    assert!(
        !ledger
            .mark_submitted(&first.key, tx, &raw, Address::repeat_byte(9), 8)
            .await
            .unwrap(),
        "only once"
    );
    let unfinished = ledger.unfinished(3_600).await.unwrap();
    assert_eq!(
        unfinished.len(),
        1,
        "the submitted row; the fresh reservation is not stale"
    );
    assert_eq!(
        (unfinished[0].raw_tx.as_ref(), unfinished[0].signer_nonce),
        (Some(&raw), Some(7))
    );
    assert!(ledger.mark_confirmed(&first.key, tx).await.unwrap());
    assert!(
        !ledger.mark_failed(&first.key, "x", "y", None).await.unwrap(),
        "confirmed is final"
    );
    let row = ledger.get(&first.key).await.unwrap().unwrap();
    assert_eq!((row.state, row.tx_hash), (SettlementState::Confirmed, Some(tx)));
    assert_eq!(ledger.find(payer, first.key.nonce).await.unwrap(), vec![row]);

    assert!(
        !ledger.release_stale_reservation(&second.key, 3_600).await.unwrap(),
        "fresh reservations are kept"
    );
    assert_eq!(
        ledger.unfinished(0).await.unwrap().len(),
        1,
        "with no grace the reservation counts as stale"
    );
    assert!(ledger.release_stale_reservation(&second.key, 0).await.unwrap());
    assert_eq!(ledger.get(&second.key).await.unwrap(), None);
    assert_eq!(ledger.payer_view(&unrelated).await.unwrap(), (None, U256::ZERO));
    assert_eq!(
        ledger.payer_view(&first.key).await.unwrap(),
        (Some(SettlementState::Confirmed), U256::ZERO)
    );

    let third = settlement(payer, B256::random(), 1);
    ledger.reserve(&third).await.unwrap();
    assert!(
        ledger
            .mark_failed(&third.key, "invalid_exact_evm_transaction_failed", "reverted", Some(tx))
            .await
            .unwrap()
    );
    let row = ledger.get(&third.key).await.unwrap().unwrap();
    assert_eq!(
        (row.state, row.error_reason.as_deref(), row.tx_hash),
        (
            SettlementState::Failed,
            Some("invalid_exact_evm_transaction_failed"),
            Some(tx)
        )
    );
}

/// Keys reserved by each race.
const RACED_KEYS: usize = 32;

/// 32 keys, 8 callers each, all at once, spread over `ledgers` (replicas on one database): reservations share
/// group commits, yet exactly one caller reserves each key, and each row holds its own payment.
async fn race(ledgers: &[Ledger]) {
    let payments: Vec<NewSettlement> = (0..RACED_KEYS)
        .map(|i| settlement(Address::random(), B256::random(), 1 + i as u64))
        .collect();
    let tasks: Vec<_> = (0..8)
        .flat_map(|copy| payments.iter().enumerate().map(move |(i, new)| (copy, i, new.clone())))
        .map(|(copy, i, new)| {
            let ledger = ledgers[copy % ledgers.len()].clone();
            tokio::spawn(async move { (i, ledger.reserve(&new).await.unwrap()) })
        })
        .collect();
    let mut won = vec![0; RACED_KEYS];
    for task in tasks {
        let (i, reservation) = task.await.unwrap();
        match reservation {
            Reservation::Reserved => won[i] += 1,
            Reservation::Existing(row) => assert_eq!(row.amount, payments[i].amount, "key {i}'s own row"),
        }
    }
    assert_eq!(won, vec![1; RACED_KEYS], "exactly one caller reserves each key");
    for new in &payments {
        let row = ledgers[0].get(&new.key).await.unwrap().unwrap();
        assert_eq!((row.state, row.amount), (SettlementState::Reserved, new.amount));
    }
}

#[tokio::test]
async fn sqlite_lifecycle_and_race() {
    let (url, dir) = common::sqlite_url("ledger");
    let ledger = Ledger::connect(&url).await.unwrap();
    lifecycle(ledger.clone()).await;
    race(std::slice::from_ref(&ledger)).await;
    ledger.close().await;
    // Reopening applies no migration twice and keeps the rows.
    let reopened = Ledger::connect(&url).await.unwrap();
    assert!(reopened.ping().await);
    assert_eq!(
        reopened.unfinished(0).await.unwrap().len(),
        RACED_KEYS,
        "the race's reservations survived the reopen"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn postgres_lifecycle_and_race() {
    let (url, db) = common::postgres_url("ledger").await;
    let ledger = Ledger::connect(&url).await.unwrap();
    lifecycle(ledger.clone()).await;
    race(std::slice::from_ref(&ledger)).await;
    // A second pool on the same database (another replica): the two race for the same keys.
    let replica = Ledger::connect(&url).await.unwrap();
    race(&[ledger.clone(), replica.clone()]).await;
    ledger.close().await;
    replica.close().await;
    common::drop_postgres(&db).await;
}
