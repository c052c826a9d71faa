//! Deferred settlement (`settle = "deferred"`) against a real chain and facilitator: the per-payer and
//! per-proxy bounds hold under 32 concurrent payers (the rest is served settle-after, with receipts) and the
//! seller is paid exactly what was served; a payer that drains its balance after being served is recorded,
//! counted and refused deferred service from then on; unsettled payments left by a crash settle after a
//! restart, once each.

mod common;

use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use common::{Harness, Link, receipt};
use protocol::header as codec;
use protocol::network::ARC_USDC;
use proxy::deferred_settler::SettlerProgress;
use proxy::payment_store::Stage;
use serde_json::Value;

const DOLLAR: u64 = 1_000_000;

fn routes(price: &str, per_payer: &str, total: &str) -> String {
    format!(
        r#"
[deferred]
max_unsettled_per_payer = "{per_payer}"
max_unsettled_total = "{total}"

[[route]]
name = "data"
path = "/data"
upstream = "{{upstream}}"
price = "{price}"
settle = "deferred"
"#
    )
}

/// How one paid request was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    /// 200, `Payment-Settlement: deferred`, no receipt.
    Deferred,
    /// 200 with a successful receipt (settle-after).
    Settled,
}

async fn served(response: reqwest::Response) -> (Served, String) {
    let status = response.status();
    let deferred = response
        .headers()
        .get("payment-settlement")
        .map(|v| v.to_str().unwrap().to_owned());
    let settlement = receipt(response.headers());
    let body = response.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("the paid content"), "{body}");
    match (deferred.as_deref(), settlement) {
        (Some("deferred"), None) => (Served::Deferred, body),
        (None, Some(s)) if s.success => (Served::Settled, body),
        other => panic!("neither deferred nor settled: {other:?}"),
    }
}

/// Waits (on the settler's own progress, not a clock) until `done` holds, within a minute.
async fn settler_until(h: &Harness, done: impl Fn(&SettlerProgress) -> bool) -> SettlerProgress {
    let mut progress = h.proxy.state.deferred.progress();
    let waited = tokio::time::timeout(Duration::from_secs(60), progress.wait_for(|p| done(p))).await;
    *waited.expect("the settler finished in time").unwrap()
}

/// `payers` funded with $10 each, firing `each` concurrent payments at `/data`; outcomes per payer.
async fn burst(h: &Harness, payers: &[PrivateKeySigner], each: usize) -> Vec<Vec<Served>> {
    let offer = h.offer("/data").await;
    let mut signed = Vec::new();
    for payer in payers {
        let mut mine = Vec::new();
        for _ in 0..each {
            mine.push(h.pay_from(payer, &offer).await);
        }
        signed.push(mine);
    }
    let requests = signed.into_iter().map(|mine| {
        let sends = mine.into_iter().map(|payment| {
            let request = h.http.get(h.url("/data")).header(codec::PAYMENT_SIGNATURE, payment);
            async move { served(request.send().await.unwrap()).await.0 }
        });
        futures_util::future::join_all(sends)
    });
    futures_util::future::join_all(requests).await
}

async fn funded_payers(h: &Harness, n: usize) -> Vec<PrivateKeySigner> {
    let payers: Vec<PrivateKeySigner> = (0..n).map(|_| PrivateKeySigner::random()).collect();
    for payer in &payers {
        h.devnet.mint(payer.address(), U256::from(10 * DOLLAR)).await.unwrap();
    }
    payers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_per_payer_bound_holds_under_32_concurrent_payers_and_the_seller_gets_what_was_served() {
    // $0.30 a request under a $1 bound: three of each payer's five are served deferred.
    let h = Harness::start(&routes("$0.30", "$1", "$100"), Link::Real).await;
    h.proxy.state.deferred.hold(true);
    let seller_before = h.balance(h.seller).await;
    let payers = funded_payers(&h, 32).await;
    let outcomes = burst(&h, &payers, 5).await;
    for (i, mine) in outcomes.iter().enumerate() {
        let deferred = mine.iter().filter(|s| **s == Served::Deferred).count();
        assert_eq!(deferred, 3, "payer {i}: {mine:?}");
        assert_eq!(mine.len() - deferred, 2, "payer {i}: the rest settle after: {mine:?}");
    }
    let store = &h.proxy.state.store;
    assert_eq!(store.count(Stage::Deferred).await.unwrap(), 96);
    assert_eq!(store.count(Stage::Settled).await.unwrap(), 64);
    // Only the settle-after payments have moved money so far.
    let price = U256::from(300_000u64);
    assert_eq!(h.balance(h.seller).await, seller_before + price * U256::from(64));
    let exposure = h.proxy.state.deferred_ledger.exposure().await.unwrap();
    assert_eq!((exposure.payments, exposure.atomic_units), (96, 96 * 300_000));
    let metrics = h.metrics().await;
    assert!(metrics.contains("proxy_deferred_unsettled_payments 96"), "{metrics}");

    h.proxy.state.deferred.hold(false);
    h.proxy.state.deferred.flush_now();
    let progress = settler_until(&h, |p| p.settled >= 96).await;
    assert_eq!((progress.settled, progress.failed_after_delivery), (96, 0));
    assert_eq!(h.balance(h.seller).await, seller_before + price * U256::from(160));
    assert_eq!(store.count(Stage::Deferred).await.unwrap(), 0);
    assert_eq!(store.count(Stage::Settled).await.unwrap(), 160);
    for payer in &payers {
        let spent = U256::from(10 * DOLLAR) - h.balance(payer.address()).await;
        assert_eq!(spent, price * U256::from(5), "{}", payer.address());
    }
    assert_eq!(h.upstream.calls("/data"), 160, "one upstream run per payment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_proxy_wide_bound_holds_under_32_concurrent_payers() {
    // $3 for the whole proxy at $0.30 a request: ten payments are served deferred, whoever pays them.
    let h = Harness::start(&routes("$0.30", "$1", "$3"), Link::Real).await;
    h.proxy.state.deferred.hold(true);
    let seller_before = h.balance(h.seller).await;
    let payers = funded_payers(&h, 32).await;
    let outcomes = burst(&h, &payers, 2).await;
    let deferred: usize = outcomes
        .iter()
        .map(|mine| mine.iter().filter(|s| **s == Served::Deferred).count())
        .sum();
    assert_eq!(deferred, 10, "{outcomes:?}");
    assert_eq!(h.proxy.state.store.count(Stage::Deferred).await.unwrap(), 10);
    let price = U256::from(300_000u64);
    assert_eq!(h.balance(h.seller).await, seller_before + price * U256::from(54));

    h.proxy.state.deferred.hold(false);
    h.proxy.state.deferred.flush_now();
    settler_until(&h, |p| p.settled >= 10).await;
    assert_eq!(h.balance(h.seller).await, seller_before + price * U256::from(64));
    assert_eq!(h.proxy.state.store.count(Stage::Settled).await.unwrap(), 64);
}

#[tokio::test]
async fn a_payer_that_drains_its_balance_after_being_served_is_caught_recorded_and_refused() {
    let h = Harness::start(&routes("$0.30", "$1", "$100"), Link::Real).await;
    h.proxy.state.deferred.hold(true);
    let seller_before = h.balance(h.seller).await;
    let payer = h.devnet.signer(3).unwrap().clone();
    let offer = h.offer("/data").await;
    let first = h.pay_from(&payer, &offer).await;
    let (how, body) = served(h.get_paid("/data", &first).await).await;
    assert_eq!(how, Served::Deferred);
    // A resend before settlement gets the stored answer, still without a receipt.
    let (again, again_body) = served(h.get_paid("/data", &first).await).await;
    assert_eq!((again, &again_body), (Served::Deferred, &body));

    // The payer empties its wallet before the settler comes round.
    let balance = h.balance(payer.address()).await;
    let usdc = contracts::bindings::USDC::new(ARC_USDC, h.devnet.provider_for(3).unwrap());
    let sink = Address::repeat_byte(0x51);
    let sent = usdc.transfer(sink, balance).send().await.unwrap();
    assert!(sent.get_receipt().await.unwrap().status());
    assert_eq!(h.balance(payer.address()).await, U256::ZERO);

    h.proxy.state.deferred.flush_now();
    let progress = settler_until(&h, |p| p.failed_after_delivery >= 1).await;
    assert_eq!((progress.settled, progress.failed_after_delivery), (0, 1));
    let failed = h
        .proxy
        .state
        .store
        .list(Stage::SettlementFailedAfterDelivery, 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].payer, format!("{:#x}", payer.address()));
    let refusal = failed[0].settlement.as_ref().unwrap();
    assert!(!refusal.success);
    assert_eq!(
        refusal.error_reason.as_deref(),
        Some(protocol::reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE)
    );
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("proxy_settlement_failed_after_delivery_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("proxy_deferred_unsettled_payments 0"), "{metrics}");
    assert!(
        h.proxy
            .state
            .deferred_ledger
            .is_refused(&offer.accepts[0].network, ARC_USDC, payer.address())
            .await
            .unwrap()
    );
    assert_eq!(h.balance(h.seller).await, seller_before, "nothing was paid");
    // The failed payment's resend is refused, without a successful receipt.
    let resent = h.get_paid("/data", &first).await;
    assert_eq!(resent.status(), 402);
    assert!(receipt(resent.headers()).is_none_or(|s| !s.success));

    // Funded again, the payer is served only settle-after: paid before it gets anything.
    h.devnet.mint(payer.address(), U256::from(DOLLAR)).await.unwrap();
    let next = h.pay_from(&payer, &offer).await;
    let (how, _) = served(h.get_paid("/data", &next).await).await;
    assert_eq!(how, Served::Settled);
    assert_eq!(h.balance(h.seller).await, seller_before + U256::from(300_000u64));
    let progress = *h.proxy.state.deferred.progress().borrow();
    assert_eq!(progress.failed_after_delivery, 1);
}

#[tokio::test]
async fn unsettled_payments_left_by_a_crash_settle_after_a_restart_once_each() {
    let mut h = Harness::start(&routes("$0.10", "$1", "$100"), Link::Real).await;
    h.proxy.state.deferred.hold(true);
    let seller_before = h.balance(h.seller).await;
    let offer = h.offer("/data").await;
    let mut payments = Vec::new();
    for _ in 0..5 {
        let payment = h.pay(&offer).await;
        assert_eq!(served(h.get_paid("/data", &payment).await).await.0, Served::Deferred);
        payments.push(payment);
    }
    // A settler took two of them and died with its lease (a short one) still running.
    let taken = h
        .proxy
        .state
        .deferred_ledger
        .take_due(2, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(taken.len(), 2);
    h.crash_proxy();
    assert_eq!(h.balance(h.seller).await, seller_before);
    assert_eq!(h.proxy.state.store.count(Stage::Deferred).await.unwrap(), 5);

    h.restart_proxy().await;
    let progress = settler_until(&h, |p| p.settled >= 5).await;
    assert_eq!((progress.settled, progress.failed_after_delivery), (5, 0));
    let cents = U256::from(100_000u64);
    assert_eq!(h.balance(h.seller).await, seller_before + cents * U256::from(5));
    assert_eq!(h.proxy.state.store.count(Stage::Settled).await.unwrap(), 5);
    assert_eq!(h.proxy.state.deferred_ledger.exposure().await.unwrap().payments, 0);
    // Nothing is left to settle a second time.
    let before = *h.proxy.state.deferred.progress().borrow();
    h.proxy.state.deferred.flush_now();
    let after = settler_until(&h, |p| p.flushes > before.flushes).await;
    assert_eq!(after.settled, 5);
    assert_eq!(h.balance(h.seller).await, seller_before + cents * U256::from(5));
    // Each resend now gets its stored answer with the real receipt.
    for payment in &payments {
        let response = h.get_paid("/data", payment).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("payment-settlement").is_none());
        let settlement = receipt(response.headers()).expect("the real receipt");
        assert!(settlement.success);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"], "the paid content");
    }
    assert_eq!(h.upstream.calls("/data"), 5, "the resends ran nothing upstream");
}

#[tokio::test]
async fn a_failed_upstream_releases_the_reservation_and_a_short_authorization_pays_first() {
    let failing = r#"
[[route]]
name = "fail"
path = "/fail"
upstream = "{upstream}"
price = "$0.30"
settle = "deferred"
"#;
    let h = Harness::start(&format!("{}{failing}", routes("$0.30", "$1", "$100")), Link::Real).await;
    let seller_before = h.balance(h.seller).await;
    let offer = h.offer("/fail").await;
    for _ in 0..4 {
        let response = h.get_paid("/fail", &h.pay(&offer).await).await;
        assert_eq!(response.status(), 500);
        assert!(receipt(response.headers()).is_none());
    }
    // Four failures at $0.30 would pass the $1 bound had any stayed reserved.
    let exposure = h.proxy.state.deferred_ledger.exposure().await.unwrap();
    assert_eq!(exposure.payments, 0);
    for stage in Stage::ALL {
        assert_eq!(h.proxy.state.store.count(stage).await.unwrap(), 0, "{stage:?}");
    }
    let before = *h.proxy.state.deferred.progress().borrow();
    h.proxy.state.deferred.flush_now();
    let after = settler_until(&h, |p| p.flushes > before.flushes).await;
    assert_eq!(after.settled, 0);
    assert_eq!(
        h.balance(h.seller).await,
        seller_before,
        "nothing delivered, nothing charged"
    );

    // An authorization that expires before the settler could come round is settled before it is served.
    // (Signed as if 52 s ago, its 60 s window has 8 s left: enough for the facilitator, which wants 6, not for
    // a deferred payment, which needs 2 s upstream + 1.5 s facilitator + 0.2 s flush + those 6.)
    let data = h.offer("/data").await;
    let payload = protocol::eip3009::pay(
        &h.buyer,
        &data.accepts[0],
        Some(data.resource.clone()),
        common::now() - 52,
        alloy::primitives::B256::random(),
    )
    .await
    .unwrap();
    let (how, _) = served(h.get_paid("/data", &codec::encode(&payload)).await).await;
    assert_eq!(how, Served::Settled);
    assert_eq!(h.balance(h.seller).await, seller_before + U256::from(300_000u64));
}

#[tokio::test]
async fn a_settlement_not_known_yet_is_kept_counted_and_tried_again() {
    // The facilitator says `settlement_pending` to the first settle, success after.
    let (url, scripted) = common::start_scripted(common::Misbehaviour::PendingOnce).await;
    let h = Harness::start(&routes("$0.30", "$1", "$100"), Link::Url(url)).await;
    h.proxy.state.deferred.hold(true);
    let offer = h.offer("/data").await;
    let payment = h.pay(&offer).await;
    assert_eq!(served(h.get_paid("/data", &payment).await).await.0, Served::Deferred);
    h.proxy.state.deferred.flush_now();
    let progress = settler_until(&h, |p| p.retried >= 1).await;
    assert_eq!(progress.settled, 0);
    assert_eq!(h.proxy.state.store.count(Stage::Deferred).await.unwrap(), 1);
    assert_eq!(
        h.proxy.state.deferred_ledger.exposure().await.unwrap().payments,
        1,
        "still counted"
    );
    // Let go, the settler's own rounds try again after the backoff.
    h.proxy.state.deferred.hold(false);
    let progress = settler_until(&h, |p| p.settled >= 1).await;
    assert_eq!((progress.retried, progress.failed_after_delivery), (1, 0));
    assert_eq!(scripted.settle_calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(h.proxy.state.store.count(Stage::Settled).await.unwrap(), 1);
    let resent = h.get_paid("/data", &payment).await;
    assert!(receipt(resent.headers()).expect("the receipt, once settled").success);
}

#[tokio::test]
async fn a_clean_stop_settles_what_was_served_with_the_embedded_facilitator() {
    // The settler's own rounds are a minute apart: only the stop settles these.
    let text = format!(
        "{}max_timeout_seconds = 120\n",
        routes("$0.10", "$1", "$100").replace("[deferred]\n", "[deferred]\nflush_interval_ms = 60000\n")
    );
    let mut h = Harness::start(&text, Link::Embedded).await;
    let seller_before = h.balance(h.seller).await;
    let offer = h.offer("/data").await;
    for _ in 0..3 {
        let payment = h.pay(&offer).await;
        assert_eq!(served(h.get_paid("/data", &payment).await).await.0, Served::Deferred);
    }
    assert_eq!(h.balance(h.seller).await, seller_before);
    let progress = h.proxy.state.deferred.progress();
    h.stop_proxy().await;
    assert_eq!(progress.borrow().settled, 3);
    assert_eq!(h.balance(h.seller).await, seller_before + U256::from(300_000u64));
    // The stopped proxy's store is closed; a new one on the same file finds them settled.
    h.restart_proxy().await;
    assert_eq!(h.proxy.state.store.count(Stage::Settled).await.unwrap(), 3);
    assert_eq!(h.proxy.state.store.count(Stage::Deferred).await.unwrap(), 0);
}
