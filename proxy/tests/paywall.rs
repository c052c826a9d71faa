//! The paywall against a real devnet, a real facilitator over HTTP and a real upstream: offers, paid delivery
//! with settlement on chain, no settlement when the upstream fails, replays, concurrent copies, malformed
//! headers, payments for other terms, HEAD, streaming, v1 buyers and settle-before routes.

mod common;

use alloy::primitives::U256;
use common::{Harness, Link, Misbehaviour, receipt, start_scripted};
use protocol::header as codec;
use protocol::wire::v2;
use serde_json::Value;

pub const ROUTES: &str = r#"
[[route]]
name = "data"
path = "/data"
methods = ["GET"]
upstream = "{upstream}"
price = "$0.01"
description = "Market data"

[[route]]
name = "post-data"
path = "/data"
methods = ["POST"]
upstream = "{upstream}"
price = "$0.05"

[[route]]
name = "cheap"
path = "/cheap"
upstream = "{upstream}"
price = "$0.001"

[[route]]
path = "/fail"
upstream = "{upstream}"
price = "$0.01"

[[route]]
path = "/created"
methods = ["POST"]
upstream = "{upstream}"
price = "$0.01"

[[route]]
path = "/stream"
upstream = "{upstream}"
price = "$0.01"

[[route]]
path = "/echo"
upstream = "{upstream}"
free = true

[[route]]
path = "/free/*"
upstream = "{upstream}"
rewrite = "/open/*"
free = true

[[route]]
name = "before"
path = "/before-fail"
upstream = "{upstream}"
rewrite = "/fail"
price = "$0.02"
settle = "before"
"#;

const CENT: u64 = 10_000;

async fn json(response: reqwest::Response) -> Value {
    response.json().await.unwrap_or(Value::Null)
}

#[tokio::test]
async fn unpaid_requests_get_an_offer_in_the_header_and_a_v1_body() {
    let h = Harness::start(ROUTES, Link::Real).await;
    let response = h.http.get(h.url("/data?city=paris")).send().await.unwrap();
    assert_eq!(response.status(), 402);
    let headers = response.headers().clone();
    assert_eq!(headers[reqwest::header::CACHE_CONTROL], "no-store");
    let expose = headers[reqwest::header::ACCESS_CONTROL_EXPOSE_HEADERS]
        .to_str()
        .unwrap();
    assert!(
        expose.contains("PAYMENT-REQUIRED") && expose.contains("PAYMENT-RESPONSE"),
        "{expose}"
    );
    let offer = codec::decode_payment_required_v2(headers[codec::PAYMENT_REQUIRED].as_bytes()).unwrap();
    assert_eq!(offer.resource.url, format!("{}/data?city=paris", h.proxy_url));
    assert_eq!(offer.resource.description.as_deref(), Some("Market data"));
    let want = &offer.accepts[0];
    assert_eq!(want.amount, U256::from(CENT));
    assert_eq!(want.pay_to, h.seller);
    assert_eq!(want.network, h.devnet.state().network);
    assert_eq!(want.asset, protocol::network::ARC_USDC);
    let body = json(response).await;
    assert_eq!(body["x402Version"], 1);
    assert_eq!(body["reason"], "payment_required");
    assert_eq!(body["accepts"][0]["maxAmountRequired"], "10000");
    assert_eq!(body["accepts"][0]["resource"], offer.resource.url.as_str());
    assert_eq!(body["accepts"][0]["network"], "arc-devnet");
    assert_eq!(body["accepts"][0]["extra"]["name"], "USDC");

    // HEAD gets the same 402, without a body.
    let head = h.http.head(h.url("/data?city=paris")).send().await.unwrap();
    assert_eq!(head.status(), 402);
    assert_eq!(
        codec::decode_payment_required_v2(head.headers()[codec::PAYMENT_REQUIRED].as_bytes()).unwrap(),
        offer
    );
    assert!(head.bytes().await.unwrap().is_empty());

    // A browser gets the paywall page.
    let page = h
        .http
        .get(h.url("/data"))
        .header("accept", "text/html,application/xhtml+xml")
        .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64)")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 402);
    assert!(
        page.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("$0.01 USDC") && html.contains(&h.seller.to_checksum(None)),
        "price and payee shown"
    );
    assert!(html.contains("eth_signTypedData_v4"), "the page can pay");

    // A CORS preflight for the payment header.
    let preflight = h
        .http
        .request(reqwest::Method::OPTIONS, h.url("/data"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "payment-signature")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert!(
        preflight.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("PAYMENT-SIGNATURE")
    );

    // Free routes pass untouched (with the rewrite); unknown paths are refused with a reason.
    let free = h.http.get(h.url("/free/a/b?x=1")).send().await.unwrap();
    assert_eq!(free.status(), 200);
    assert_eq!(json(free).await["path"], "/open/a/b");
    let missing = h.http.get(h.url("/nowhere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(json(missing).await["reason"], "no_route");
    assert_eq!(
        h.upstream.calls("/data"),
        0,
        "nothing unpaid reached the priced upstream"
    );
}

#[tokio::test]
async fn a_paid_request_is_served_settled_on_chain_and_its_resend_gets_the_same_answer() {
    let h = Harness::start(ROUTES, Link::Real).await;
    let (buyer_before, seller_before) = (h.balance(h.buyer.address()).await, h.balance(h.seller).await);
    let offer = h.offer("/data").await;
    let payment = h.pay(&offer).await;
    let response = h.get_paid("/data", &payment).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[reqwest::header::CACHE_CONTROL], "private, no-store");
    let settled = receipt(response.headers()).expect("PAYMENT-RESPONSE");
    assert!(settled.success, "{settled:?}");
    assert_eq!(settled.payer, Some(h.buyer.address()));
    let tx = settled.transaction_hash().expect("a transaction hash");
    assert_eq!(json(response).await["data"], "the paid content");
    assert_eq!(h.balance(h.seller).await, seller_before + U256::from(CENT));
    assert_eq!(h.balance(h.buyer.address()).await, buyer_before - U256::from(CENT));
    let upstream = h.upstream.last("/data").unwrap();
    assert!(
        !upstream.headers.contains_key(codec::PAYMENT_SIGNATURE),
        "the payment is not forwarded"
    );
    assert_eq!(upstream.headers["x-forwarded-for"], "127.0.0.1");
    assert!(
        upstream.headers["x-forwarded-host"]
            .to_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );

    // The same payment again: the same stored answer (body and receipt), no upstream call, no settlement.
    let again = h.get_paid("/data", &payment).await;
    assert_eq!(again.status(), 200);
    let replay = receipt(again.headers()).expect("the same receipt");
    assert_eq!(replay, settled);
    assert_eq!(json(again).await["data"], "the paid content");
    assert_eq!(h.upstream.calls("/data"), 1);
    assert_eq!(h.balance(h.seller).await, seller_before + U256::from(CENT));

    // The facilitator's ledger agrees.
    let status: Value = h
        .http
        .get(format!(
            "{}/settlements/{}/{}",
            h.facilitator_url.as_ref().unwrap(),
            h.buyer.address(),
            decoded_nonce(&payment)
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["settlements"][0]["state"], "confirmed", "{status}");
    assert_eq!(status["settlements"][0]["transaction"], format!("{tx:#x}"));
}

fn decoded_nonce(payment: &str) -> String {
    match codec::decode_payment(payment.as_bytes()).unwrap() {
        protocol::PaymentPayload::V2(p) => format!("{:#x}", p.payload.exact_evm().unwrap().authorization.nonce),
        protocol::PaymentPayload::V1(p) => format!("{:#x}", p.payload.exact_evm().unwrap().authorization.nonce),
    }
}

#[tokio::test]
async fn an_upstream_failure_settles_nothing_and_a_201_stays_a_201() {
    let h = Harness::start(ROUTES, Link::Real).await;
    let seller_before = h.balance(h.seller).await;
    let offer = h.offer("/fail").await;
    let response = h.get_paid("/fail", &h.pay(&offer).await).await;
    assert_eq!(response.status(), 500);
    assert!(receipt(response.headers()).is_none());
    assert_eq!(response.text().await.unwrap(), "boom");
    assert_eq!(h.balance(h.seller).await, seller_before, "nothing settled");

    // An unreachable upstream: 502, nothing settled.
    let created_offer = {
        let r = h.http.post(h.url("/created")).send().await.unwrap();
        assert_eq!(r.status(), 402);
        codec::decode_payment_required_v2(r.headers()[codec::PAYMENT_REQUIRED].as_bytes()).unwrap()
    };
    let created = h
        .http
        .post(h.url("/created"))
        .header(codec::PAYMENT_SIGNATURE, h.pay(&created_offer).await)
        .body("{\"name\":\"thing\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()[reqwest::header::LOCATION], "/things/1");
    assert!(receipt(created.headers()).unwrap().success);
    assert_eq!(h.upstream.last("/created").unwrap().body, b"{\"name\":\"thing\"}");
    assert_eq!(h.balance(h.seller).await, seller_before + U256::from(CENT));
}

#[tokio::test]
async fn eight_concurrent_copies_of_one_payment_run_the_upstream_once() {
    let h = Harness::start(ROUTES, Link::Real).await;
    let seller_before = h.balance(h.seller).await;
    let offer = h.offer("/data").await;
    let payment = h.pay(&offer).await;
    let copies = (0..8).map(|_| h.get_paid("/data", &payment));
    let answers = futures_util::future::join_all(copies).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every copy gets the paid answer: {statuses:?}"
    );
    let hashes: std::collections::HashSet<_> = answers
        .iter()
        .map(|r| receipt(r.headers()).unwrap().transaction)
        .collect();
    assert_eq!(hashes.len(), 1, "every copy names the one transaction");
    let mut bodies = std::collections::HashSet::new();
    for answer in answers {
        bodies.insert(answer.bytes().await.unwrap());
    }
    assert_eq!(bodies.len(), 1, "every copy gets the same body");
    assert_eq!(h.upstream.calls("/data"), 1);
    assert_eq!(h.balance(h.seller).await, seller_before + U256::from(CENT));
}

#[tokio::test]
async fn malformed_payment_headers_get_a_402_with_a_json_reason() {
    let h = Harness::start(ROUTES, Link::Real).await;
    let offer = h.offer("/data").await;
    let good = h.pay(&offer).await;
    let url_safe = good
        .replace('+', "-")
        .replace('/', "_")
        .trim_end_matches('=')
        .to_owned();
    let cases = [
        ("not base64", "%%%not-base64%%%".to_owned(), "invalid_payload"),
        ("base64 of not JSON", base64_of("hello"), "invalid_payload"),
        (
            "JSON of the wrong shape",
            base64_of("{\"x402Version\":2,\"payload\":1}"),
            "invalid_payload",
        ),
        (
            "an unknown version",
            base64_of("{\"x402Version\":7}"),
            "invalid_x402_version",
        ),
        ("far too long", "A".repeat(17 * 1024), "invalid_payload"),
    ];
    for (what, header, reason) in cases {
        let response = h.get_paid("/data", &header).await;
        assert_eq!(response.status(), 402, "{what}");
        assert!(
            response.headers().contains_key(codec::PAYMENT_REQUIRED),
            "{what}: the offer comes again"
        );
        let body = json(response).await;
        assert_eq!(body["reason"], reason, "{what}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}");
    }
    if url_safe != good {
        let response = h.get_paid("/data", &url_safe).await;
        assert_eq!(response.status(), 402, "base64url is refused like the reference");
    }
    assert_eq!(h.upstream.calls("/data"), 0);
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn payments_for_other_terms_are_refused_before_the_facilitator() {
    let (url, scripted) = start_scripted(Misbehaviour::CountOnly).await;
    let h = Harness::start(ROUTES, Link::Url(url)).await;
    let data = h.offer("/data").await;
    let cheap = h.offer("/cheap").await;
    let altered = |change: &dyn Fn(&mut v2::PaymentRequirements)| {
        let mut offer = data.clone();
        change(&mut offer.accepts[0]);
        offer
    };
    let other_payee = altered(&|r| r.pay_to = alloy::primitives::Address::repeat_byte(0x66));
    let other_asset = altered(&|r| r.asset = alloy::primitives::Address::repeat_byte(0x77));
    let other_network = altered(&|r| r.network = "eip155:5042002".into());
    let cases = [
        ("a payment for a cheaper route", "GET", h.pay(&cheap).await),
        ("a GET payment used for the dearer POST", "POST", h.pay(&data).await),
        ("another payTo", "GET", h.pay(&other_payee).await),
        ("another asset", "GET", h.pay(&other_asset).await),
        ("another network", "GET", h.pay(&other_network).await),
    ];
    for (what, method, payment) in cases {
        let response = h
            .http
            .request(method.parse().unwrap(), h.url("/data"))
            .header(codec::PAYMENT_SIGNATURE, payment)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 402, "{what}");
        let body = json(response).await;
        assert_eq!(body["reason"], "invalid_exact_evm_accepted_mismatch", "{what}: {body}");
    }
    assert_eq!(scripted.verify_calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(scripted.settle_calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(h.upstream.calls("/data"), 0);
}

#[tokio::test]
async fn a_paid_head_is_answered_like_an_unpaid_one() {
    let h = Harness::start(ROUTES, Link::Real).await;
    let seller_before = h.balance(h.seller).await;
    let offer = h.offer("/data").await;
    let payment = h.pay(&offer).await;
    let head = h
        .http
        .head(h.url("/data"))
        .header(codec::PAYMENT_SIGNATURE, &payment)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 402, "a HEAD buys nothing");
    assert!(head.headers().contains_key(codec::PAYMENT_REQUIRED));
    assert!(receipt(head.headers()).is_none());
    assert_eq!(h.upstream.calls("/data"), 0, "no upstream call");
    assert_eq!(h.balance(h.seller).await, seller_before);
    // The payment is still good for the GET.
    let get = h.get_paid("/data", &payment).await;
    assert_eq!(get.status(), 200);
    assert_eq!(h.balance(h.seller).await, seller_before + U256::from(CENT));
}

#[tokio::test]
async fn bodies_stream_through_in_both_directions() {
    let h = Harness::start(ROUTES, Link::Real).await;
    let offer = h.offer("/stream").await;
    let mut response = h.get_paid("/stream", &h.pay(&offer).await).await;
    assert_eq!(response.status(), 200);
    assert!(receipt(response.headers()).unwrap().success);
    // The first chunk arrives while the upstream still holds the second.
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), response.chunk())
        .await
        .expect("the first chunk streams before the upstream finishes")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"first;");
    h.upstream.release.notify_one();
    let rest = response.bytes().await.unwrap();
    assert_eq!(&rest[..], b"second;");

    // A chunked request body of 1 MiB reaches the upstream whole.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..16).map(|i| Ok(vec![b'a' + i as u8; 65_536])).collect();
    let body = reqwest::Body::wrap_stream(tokio_stream::iter(chunks));
    let echoed = h.http.post(h.url("/echo")).body(body).send().await.unwrap();
    assert_eq!(echoed.status(), 200);
    let bytes = echoed.bytes().await.unwrap();
    assert_eq!(bytes.len(), 16 * 65_536);
    assert_eq!(bytes[65_536 * 3], b'd');
}

#[tokio::test]
async fn a_v1_buyer_pays_with_x_payment_and_gets_x_payment_response() {
    let h = Harness::start(ROUTES, Link::Real).await;
    let seller_before = h.balance(h.seller).await;
    let body = json(h.http.get(h.url("/data")).send().await.unwrap()).await;
    let requirement: protocol::v1::PaymentRequirements = serde_json::from_value(body["accepts"][0].clone()).unwrap();
    let payload = protocol::eip3009::pay_v1(
        &h.buyer,
        &requirement,
        h.devnet.state().chain_id,
        common::now(),
        alloy::primitives::B256::random(),
    )
    .await
    .unwrap();
    let response = h
        .http
        .get(h.url("/data"))
        .header(codec::X_PAYMENT, codec::encode(&payload))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(!response.headers().contains_key(codec::PAYMENT_RESPONSE));
    let settled = codec::decode_payment_response(response.headers()[codec::X_PAYMENT_RESPONSE].as_bytes()).unwrap();
    assert!(settled.success, "{settled:?}");
    assert_eq!(h.balance(h.seller).await, seller_before + U256::from(CENT));
}

#[tokio::test]
async fn a_settle_before_route_is_paid_even_when_the_upstream_then_fails() {
    let h = Harness::start(ROUTES, Link::Real).await;
    let seller_before = h.balance(h.seller).await;
    let offer = h.offer("/before-fail").await;
    let payment = h.pay(&offer).await;
    let response = h.get_paid("/before-fail", &payment).await;
    assert_eq!(response.status(), 500, "the upstream's answer");
    let paid = receipt(response.headers()).unwrap();
    assert!(paid.success);
    assert_eq!(h.upstream.calls("/fail"), 1);
    assert_eq!(h.balance(h.seller).await, seller_before + U256::from(2 * CENT));
    // Paid and undelivered: listed for the seller and counted in the metrics.
    let listed: Value = h
        .http
        .get(format!("{}/payments?state=paid_undelivered", h.admin_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["payments"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["payments"][0]["transaction"], paid.transaction, "{listed}");
    assert_eq!(listed["payments"][0]["route"], "before", "{listed}");
    let metrics = h
        .http
        .get(format!("{}/metrics", h.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("proxy_payments_paid_undelivered 1"), "{metrics}");
    let bad = h
        .http
        .get(format!("{}/payments?state=nope", h.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // A resend within validity runs the upstream again and settles nothing more.
    let again = h.get_paid("/before-fail", &payment).await;
    assert_eq!(again.status(), 500);
    assert_eq!(receipt(again.headers()).unwrap().transaction, paid.transaction);
    assert_eq!(h.upstream.calls("/fail"), 2);
    assert_eq!(h.balance(h.seller).await, seller_before + U256::from(2 * CENT));
}
