//! Delivery of what was paid for: a buyer that hangs up while the upstream works cancels nothing (its
//! resend gets the one upstream answer, charged once); an answer over the replay limit is not kept, and
//! its resend gets a 402 naming the transaction without a successful `PAYMENT-RESPONSE`.

mod common;

use alloy::primitives::U256;
use common::{Harness, Link, receipt};
use protocol::header as codec;
use serde_json::Value;

const ROUTES: &str = r#"
[[route]]
path = "/hold"
upstream = "{upstream}"
price = "$0.01"

[[route]]
path = "/large"
upstream = "{upstream}"
price = "$0.01"
"#;

const CENT: u64 = 10_000;

#[tokio::test]
async fn a_buyer_that_hangs_up_cancels_nothing_and_its_resend_gets_the_one_answer() {
    let h = Harness::start(ROUTES, Link::Real).await;
    let seller_before = h.balance(h.seller).await;
    let offer = h.offer("/hold").await;
    let payment = h.pay(&offer).await;
    let first = tokio::spawn({
        let request = h.http.get(h.url("/hold")).header(codec::PAYMENT_SIGNATURE, &payment);
        async move { request.send().await }
    });
    h.upstream.held.notified().await;
    // The buyer gives up while the upstream is still working.
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    let resend = tokio::spawn({
        let request = h.http.get(h.url("/hold")).header(codec::PAYMENT_SIGNATURE, &payment);
        async move { request.send().await.unwrap() }
    });
    h.upstream.unhold.notify_one();
    let resent = resend.await.unwrap();
    assert_eq!(resent.status(), 200);
    assert!(receipt(resent.headers()).unwrap().success);
    let body: Value = resent.json().await.unwrap();
    assert_eq!(body["data"], "the held content");
    assert_eq!(body["call"], 1);
    assert_eq!(h.upstream.calls("/hold"), 1, "one payment, one upstream run");
    assert_eq!(h.balance(h.seller).await, seller_before + U256::from(CENT));
}

#[tokio::test]
async fn an_answer_over_the_replay_limit_is_not_kept_and_its_resend_names_the_transaction() {
    let h = Harness::start_with("replay_body_limit = 1024", ROUTES, Link::Real).await;
    let offer = h.offer("/large").await;
    let payment = h.pay(&offer).await;
    let paid = h.get_paid("/large", &payment).await;
    assert_eq!(paid.status(), 200);
    let settled = receipt(paid.headers()).unwrap();
    assert!(settled.success);
    assert_eq!(paid.bytes().await.unwrap().len(), 4096);
    let again = h.get_paid("/large", &payment).await;
    assert_eq!(again.status(), 402);
    assert!(
        !again.headers().contains_key(codec::PAYMENT_RESPONSE),
        "a 402 never carries a successful receipt"
    );
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["reason"], "payment_already_settled");
    assert_eq!(body["settlement"]["transaction"], settled.transaction, "{body}");
    assert_eq!(h.upstream.calls("/large"), 1);
}
