//! A facilitator that is down, slow, answers HTML, or leaves a settlement pending: the content is never
//! served, the buyer gets a clear answer, and a pending payment is delivered once when the buyer resends it
//! after it settled.

mod common;

use std::sync::atomic::Ordering;

use common::{Harness, Link, Misbehaviour, receipt, start_scripted};
use serde_json::Value;

const ROUTES: &str = r#"
[[route]]
name = "data"
path = "/data"
upstream = "{upstream}"
price = "$0.01"
"#;

async fn body_of(response: reqwest::Response) -> (u16, Option<protocol::SettleResponse>, String) {
    let status = response.status().as_u16();
    let settlement = receipt(response.headers());
    (status, settlement, response.text().await.unwrap())
}

fn assert_not_served(what: &str, body: &str) {
    assert!(!body.contains("the paid content"), "{what}: content leaked: {body}");
}

#[tokio::test]
async fn a_facilitator_that_is_down_serves_nothing() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let h = Harness::start(ROUTES, Link::Url(format!("http://127.0.0.1:{port}"))).await;
    let offer = h.offer("/data").await;
    let (status, _, body) = body_of(h.get_paid("/data", &h.pay(&offer).await).await).await;
    assert_eq!(status, 503);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["reason"], "facilitator_unavailable", "{body}");
    assert_eq!(h.upstream.calls("/data"), 0);
}

#[tokio::test]
async fn a_facilitator_answering_html_to_verify_serves_nothing() {
    let (url, scripted) = start_scripted(Misbehaviour::VerifyHtml).await;
    let h = Harness::start(ROUTES, Link::Url(url)).await;
    let offer = h.offer("/data").await;
    let (status, _, body) = body_of(h.get_paid("/data", &h.pay(&offer).await).await).await;
    assert_eq!(status, 503);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["reason"], "facilitator_error", "{body}");
    assert_eq!(scripted.settle_calls.load(Ordering::SeqCst), 0);
    assert_eq!(h.upstream.calls("/data"), 0);
}

#[tokio::test]
async fn garbage_slow_or_pending_settlements_discard_the_upstream_answer() {
    for (mode, reason) in [
        (Misbehaviour::SettleHtml, "facilitator_error"),
        (Misbehaviour::SettleSlow, "facilitator_timeout"),
        (Misbehaviour::SettlePending, "settlement_pending"),
    ] {
        let (url, scripted) = start_scripted(mode).await;
        let h = Harness::start(ROUTES, Link::Url(url)).await;
        let seller_before = h.balance(h.seller).await;
        let offer = h.offer("/data").await;
        let (status, settlement, body) = body_of(h.get_paid("/data", &h.pay(&offer).await).await).await;
        let what = format!("{mode:?}");
        assert_eq!(status, 402, "{what}");
        assert_not_served(&what, &body);
        let settlement = settlement.expect("the failed settlement in PAYMENT-RESPONSE");
        assert!(!settlement.success, "{what}");
        assert_eq!(settlement.error_reason.as_deref(), Some(reason), "{what}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["reason"], reason, "{what}: {body}");
        assert_eq!(
            h.upstream.calls("/data"),
            1,
            "{what}: the upstream ran, its answer was discarded"
        );
        assert_eq!(scripted.settle_calls.load(Ordering::SeqCst), 1, "{what}");
        assert_eq!(h.balance(h.seller).await, seller_before, "{what}");
        if let Misbehaviour::SettlePending = mode {
            assert!(
                body["error"].as_str().unwrap().contains("resend the same payment"),
                "{body}"
            );
        }
    }
}

#[tokio::test]
async fn a_pending_payment_resent_after_it_settles_is_delivered_once() {
    // Pending the first time; the resend settles (idempotently, no second verify) and gets the answer kept
    // from the one upstream run; a third send gets the same answer again, with no settle call.
    let (url, scripted) = start_scripted(Misbehaviour::PendingOnce).await;
    let h = Harness::start(ROUTES, Link::Url(url)).await;
    let offer = h.offer("/data").await;
    let payment = h.pay(&offer).await;
    let (status, settlement, body) = body_of(h.get_paid("/data", &payment).await).await;
    assert_eq!(status, 402);
    assert_not_served("pending", &body);
    assert_eq!(settlement.unwrap().error_reason.as_deref(), Some("settlement_pending"));

    let (status, settlement, body) = body_of(h.get_paid("/data", &payment).await).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("the paid content"));
    assert!(settlement.unwrap().success);
    assert_eq!(scripted.verify_calls.load(Ordering::SeqCst), 1);
    assert_eq!(scripted.settle_calls.load(Ordering::SeqCst), 2);

    let (status, again, body_again) = body_of(h.get_paid("/data", &payment).await).await;
    assert_eq!(status, 200);
    assert_eq!(body_again, body, "the same answer");
    assert!(again.unwrap().success);
    assert_eq!(scripted.settle_calls.load(Ordering::SeqCst), 2);
    assert_eq!(h.upstream.calls("/data"), 1, "one upstream run, kept and delivered");
}
