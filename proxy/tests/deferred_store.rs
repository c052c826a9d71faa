//! The deferred reservations under concurrency, on SQLite and on PostgreSQL shared by two replicas: with every
//! payer's payments admitted at once from both, no payer passes `max_unsettled_per_payer` and the proxy does
//! not pass `max_unsettled_total`; and two settlers taking due payments at once never take the same one.

#[path = "../../tests/support/postgres.rs"]
mod postgres;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use alloy::primitives::{Address, B256};
use axum::http::{HeaderMap, StatusCode};
use futures_util::future::join_all;
use proxy::config::DeferredSettings;
use proxy::deferred_ledger::{Admission, DeferredLedger, Reservation};
use proxy::payment_store::{PaymentKey, PaymentMeta, PaymentStore, Stage, StoredAnswer, Turn};

const NETWORK: &str = "eip155:31337";
const PAYERS: u8 = 32;
const EACH: u8 = 5;
const PRICE: u64 = 300_000;

fn request(payer: Address) -> protocol::VerifyRequest {
    let requirement = serde_json::json!({"scheme": "exact", "network": NETWORK, "amount": PRICE.to_string(),
        "asset": format!("{:#x}", Address::repeat_byte(1)), "payTo": format!("{:#x}", Address::repeat_byte(9)),
        "maxTimeoutSeconds": 60});
    serde_json::from_value(serde_json::json!({
        "x402Version": 2,
        "paymentPayload": {
            "x402Version": 2,
            "accepted": requirement,
            "payload": {"signature": format!("0x{}", "11".repeat(65)), "authorization": {
                "from": format!("{payer:#x}"), "to": format!("{:#x}", Address::repeat_byte(9)),
                "value": PRICE.to_string(), "validAfter": "0", "validBefore": "99999999999",
                "nonce": format!("{:#x}", B256::random())}}
        },
        "paymentRequirements": requirement
    }))
    .unwrap()
}

/// Payer `p`'s `n`-th payment claimed on `store` and offered to `ledger`.
async fn admit(store: &PaymentStore, ledger: &DeferredLedger, p: u8, n: u8, bounds: DeferredSettings) -> Admission {
    let payer = Address::repeat_byte(p + 1);
    let key = PaymentKey {
        network: NETWORK.into(),
        asset: Address::repeat_byte(1),
        payer,
        nonce: B256::from([n; 32]),
    };
    let meta = PaymentMeta {
        route: "/data".into(),
        amount: PRICE.to_string(),
        expires_at: u64::MAX / 2,
    };
    let Turn::Owned(claim) = store
        .claim(&key, &meta, Duration::from_secs(60), Duration::ZERO)
        .await
        .unwrap()
    else {
        panic!("payment {p}/{n} not owned");
    };
    let reservation = Reservation {
        network: NETWORK.into(),
        asset: Address::repeat_byte(1),
        payer,
        amount: PRICE,
        request: request(payer),
    };
    let admitted = ledger.admit(&claim, &reservation, &bounds).await.unwrap();
    if admitted == Admission::Admitted {
        let answer = StoredAnswer::new(StatusCode::OK, &HeaderMap::new(), Some(b"served"));
        assert!(
            store
                .advance(&claim, Stage::Deferred, Some(&answer), None, false)
                .await
                .unwrap()
        );
    }
    admitted
}

async fn bounds_hold_across_two_replicas(url: &str) {
    let stores = [
        PaymentStore::open(url).await.unwrap(),
        PaymentStore::open(url).await.unwrap(),
    ];
    let ledgers = [
        DeferredLedger::open(stores[0].pool().clone()).await.unwrap(),
        DeferredLedger::open(stores[1].pool().clone()).await.unwrap(),
    ];
    // $0.30 each: three per payer under $1, sixteen in all under $5.
    let bounds = DeferredSettings {
        max_unsettled_per_payer: 1_000_000,
        max_unsettled_total: 5_000_000,
        batch_size: 64,
        flush_interval: Duration::from_millis(200),
    };
    let attempts = (0..PAYERS).flat_map(|p| (0..EACH).map(move |n| (p, n))).map(|(p, n)| {
        let replica = usize::from((p + n) % 2);
        let (store, ledger) = (stores[replica].clone(), ledgers[replica].clone());
        async move { (p, admit(&store, &ledger, p, n, bounds).await) }
    });
    let outcomes = join_all(attempts).await;
    let mut per_payer: HashMap<u8, usize> = HashMap::new();
    for (p, admission) in &outcomes {
        if *admission == Admission::Admitted {
            *per_payer.entry(*p).or_default() += 1;
        } else {
            assert!(
                matches!(admission, Admission::OverPayerBound | Admission::OverTotalBound),
                "{admission:?}"
            );
        }
    }
    let total: usize = per_payer.values().sum();
    assert_eq!(total, 16, "{per_payer:?}");
    assert!(per_payer.values().all(|n| *n <= 3), "{per_payer:?}");
    let exposure = ledgers[0].exposure().await.unwrap();
    assert_eq!((exposure.payments, exposure.atomic_units), (16, 16 * PRICE));
    assert_eq!(stores[1].count(Stage::Deferred).await.unwrap(), 16);

    // Two settlers (one per replica) taking at once, round after round: each payment is taken by exactly one.
    let mut taken = Vec::new();
    loop {
        let (a, b) = tokio::join!(
            ledgers[0].take_due(5, Duration::from_secs(60)),
            ledgers[1].take_due(5, Duration::from_secs(60))
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        if a.is_empty() && b.is_empty() {
            break;
        }
        taken.extend(a.into_iter().chain(b).map(|due| due.pkey));
    }
    let distinct: HashSet<&String> = taken.iter().collect();
    assert_eq!((taken.len(), distinct.len()), (16, 16), "every due payment taken once");
    for store in &stores {
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deferred_bounds_hold_under_concurrency_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("nerdcabal-deferred-store-{}", B256::random()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = proxy::payment_store::database_url(Some(dir.join("state.db").to_str().unwrap())).unwrap();
    bounds_hold_across_two_replicas(&url).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deferred_bounds_hold_across_replicas_on_postgres() {
    let (db, url) = postgres::create_database("deferred_store").await;
    bounds_hold_across_two_replicas(&url).await;
    postgres::drop_database(&db).await;
}
