//! The state store's group commit under concurrency, on SQLite and on PostgreSQL: many claims and advances in
//! flight at once go out as shared statements, yet each payment is owned by exactly one claimer, a stale owner's
//! advance changes nothing, and every answer and stage lands in the row it belongs to.

#[path = "../../tests/support/postgres.rs"]
mod postgres;

use std::time::Duration;

use alloy::primitives::{Address, B256};
use axum::http::{HeaderMap, StatusCode};
use futures_util::future::join_all;
use proxy::payment_store::{Claim, PaymentKey, PaymentMeta, PaymentStore, Stage, StoredAnswer, Turn};

/// Distinct payments, and how many copies of each race to claim it.
const PAYMENTS: u8 = 48;
const COPIES: usize = 3;

fn key(n: u8) -> PaymentKey {
    PaymentKey {
        network: "eip155:31337".into(),
        asset: Address::repeat_byte(1),
        payer: Address::repeat_byte(n),
        nonce: B256::repeat_byte(n),
    }
}

fn meta(n: u8) -> PaymentMeta {
    PaymentMeta {
        route: format!("/r/{n}"),
        amount: format!("{}", 1000 + u32::from(n)),
        expires_at: u64::MAX / 2,
    }
}

async fn concurrent_claims_and_advances(store: PaymentStore) {
    let lease = Duration::from_secs(60);
    // Every copy of every payment asks at once; none waits for another.
    let attempts = (0..PAYMENTS).flat_map(|n| (0..COPIES).map(move |_| n)).map(|n| {
        let store = store.clone();
        async move { (n, store.claim(&key(n), &meta(n), lease, Duration::ZERO).await.unwrap()) }
    });
    let mut owners: Vec<Option<Claim>> = vec![None; usize::from(PAYMENTS)];
    for (n, turn) in join_all(attempts).await {
        match turn {
            Turn::Owned(claim) => {
                let slot = &mut owners[usize::from(n)];
                assert!(slot.is_none(), "payment {n} was claimed twice");
                *slot = Some(claim);
            }
            Turn::Busy => {}
            Turn::Finished(record) => panic!("payment {n} finished before anyone advanced it: {record:?}"),
        }
    }
    let owners: Vec<Claim> = owners
        .into_iter()
        .enumerate()
        .map(|(n, c)| c.unwrap_or_else(|| panic!("payment {n} was claimed by nobody")))
        .collect();

    // Each owner stores its own answer, all at once; a claim taken over is stale.
    let advances = owners.iter().enumerate().map(|(n, claim)| {
        let store = store.clone();
        async move {
            let body = format!("answer {n}");
            let answer = StoredAnswer::new(StatusCode::OK, &HeaderMap::new(), Some(body.as_bytes()));
            store
                .advance(claim, Stage::Answered, Some(&answer), None, true)
                .await
                .unwrap()
        }
    });
    assert!(join_all(advances).await.into_iter().all(|written| written));

    let stale = owners[0].clone();
    // Its lease ends (as when a resend finds the settlement pending): the next claimer takes it over.
    store.unlease(&owners[0]).await.unwrap();
    let fresh = match store.claim(&key(0), &meta(0), lease, Duration::ZERO).await.unwrap() {
        Turn::Owned(claim) => claim,
        other => panic!("an unleased payment is taken over: {other:?}"),
    };
    assert_eq!(fresh.resumed.stage, Stage::Answered);
    let finishing = owners.iter().skip(1).map(|claim| {
        let store = store.clone();
        async move { store.advance(claim, Stage::Settled, None, None, false).await.unwrap() }
    });
    let stale_write = {
        let store = store.clone();
        async move { store.advance(&stale, Stage::Settled, None, None, false).await.unwrap() }
    };
    let (finished, stale_written) = tokio::join!(join_all(finishing), stale_write);
    assert!(finished.into_iter().all(|written| written));
    assert!(!stale_written, "the replaced owner's advance must change nothing");

    for n in 1..PAYMENTS {
        let record = store.get(&key(n)).await.unwrap().unwrap();
        assert_eq!(record.stage, Stage::Settled);
        assert_eq!(record.route, format!("/r/{n}"));
        assert_eq!(record.amount, format!("{}", 1000 + u32::from(n)));
        let body = record.answer.unwrap().body_bytes().unwrap();
        assert_eq!(
            body,
            format!("answer {n}").into_bytes(),
            "payment {n} holds another's answer"
        );
    }
    let first = store.get(&key(0)).await.unwrap().unwrap();
    assert_eq!(first.stage, Stage::Answered, "payment 0 belongs to its new claimer");
    assert!(store.advance(&fresh, Stage::Settled, None, None, false).await.unwrap());
    assert_eq!(store.count(Stage::Settled).await.unwrap(), u64::from(PAYMENTS));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_keeps_one_owner_per_payment_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("nerdcabal-groups-{}", B256::random()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = proxy::payment_store::database_url(Some(dir.join("state.db").to_str().unwrap())).unwrap();
    concurrent_claims_and_advances(PaymentStore::open(&url).await.unwrap()).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_keeps_one_owner_per_payment_on_postgres() {
    let (db, url) = postgres::create_database("store_groups").await;
    concurrent_claims_and_advances(PaymentStore::open(&url).await.unwrap()).await;
    postgres::drop_database(&db).await;
}
