//! The buyer client against small real HTTP servers: the payment goes only to the URL that answered 402 (not to
//! the host that redirected there, and never along a redirect after paying), the cheapest offer the policy
//! admits is the one signed, and a 402 whose every offer is refused signs nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agents::buyer::spend_ledger::SpendLedger;
use agents::buyer::spending_policy::SpendingPolicy;
use agents::buyer::x402_client::{CallRequest, PayError, X402Client};
use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use protocol::header as codec;
use protocol::wire::{Extra, ResourceInfo, v2};
use serde_json::json;

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<(String, String, bool)>>>);

impl Log {
    fn record(&self, server: &str, uri: &Uri, headers: &HeaderMap) {
        let paid = headers.contains_key(codec::PAYMENT_SIGNATURE) || headers.contains_key(codec::X_PAYMENT);
        self.0
            .lock()
            .unwrap()
            .push((server.to_owned(), uri.path().to_owned(), paid));
    }

    fn paid(&self, server: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _, p)| s == server && *p)
            .count()
    }

    fn seen(&self, server: &str) -> usize {
        self.0.lock().unwrap().iter().filter(|(s, _, _)| s == server).count()
    }
}

fn requirement(network: &str, amount: u64) -> v2::PaymentRequirements {
    v2::PaymentRequirements {
        scheme: "exact".into(),
        network: network.into(),
        amount: U256::from(amount),
        asset: protocol::network::ARC_USDC,
        pay_to: alloy::primitives::Address::repeat_byte(0x42),
        max_timeout_seconds: 60,
        extra: Some(Extra::eip712("USDC", "2")),
    }
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

async fn client(policy: SpendingPolicy) -> X402Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ledger = SpendLedger::open("sqlite::memory:").await.unwrap();
    X402Client::new(
        Arc::new(PrivateKeySigner::random()),
        policy,
        ledger,
        protocol::Networks::builtin(),
        Duration::from_secs(5),
    )
    .unwrap()
}

/// A → (302) → B; B asks 402 with `accepts`, and answers a paid request with a 302 to C.
async fn servers(accepts: Vec<v2::PaymentRequirements>) -> (String, Log, Arc<Mutex<Vec<String>>>) {
    let log = Log::default();
    let payments: Arc<Mutex<Vec<String>>> = Arc::default();
    let c_log = log.clone();
    let c = serve(axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let log = c_log.clone();
        async move {
            log.record("C", &uri, &headers);
            "elsewhere"
        }
    }))
    .await;
    let b_log = log.clone();
    let b_payments = payments.clone();
    let b = serve(axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let (log, payments, accepts, c) = (b_log.clone(), b_payments.clone(), accepts.clone(), c.clone());
        async move {
            log.record("B", &uri, &headers);
            if let Some(payment) = headers.get(codec::PAYMENT_SIGNATURE) {
                payments.lock().unwrap().push(payment.to_str().unwrap().to_owned());
                return (StatusCode::FOUND, [("location", format!("{c}/steal"))]).into_response();
            }
            let offer = v2::PaymentRequired {
                x402_version: protocol::version::Version,
                error: Some("pay".into()),
                resource: ResourceInfo {
                    url: format!("http://b{}", uri.path()),
                    description: None,
                    mime_type: None,
                },
                accepts,
                extensions: None,
            };
            let response: Response = (
                StatusCode::PAYMENT_REQUIRED,
                [(codec::PAYMENT_REQUIRED, codec::encode(&offer))],
                axum::Json(json!({})),
            )
                .into_response();
            response
        }
    }))
    .await;
    let a_log = log.clone();
    let a = serve(axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let (log, b) = (a_log.clone(), b.clone());
        async move {
            log.record("A", &uri, &headers);
            (StatusCode::FOUND, [("location", format!("{b}/priced"))]).into_response()
        }
    }))
    .await;
    (a, log, payments)
}

#[tokio::test]
async fn the_payment_goes_only_to_the_url_that_asked_and_the_cheapest_admitted_offer_is_signed() {
    let accepts = vec![
        requirement("eip155:1", 10),              // cheapest, but a network the policy does not allow
        requirement("eip155:5042002", 5_000),     // allowed, dearer
        requirement("eip155:5042002", 2_000),     // allowed, cheapest admitted
        requirement("eip155:5042002", 1_000_000), // over the per-request maximum
    ];
    let (a, log, payments) = servers(accepts).await;
    let client = client(SpendingPolicy::default()).await;
    let outcome = client
        .call(&CallRequest::get(format!("{a}/start").parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(
        outcome.status,
        StatusCode::FOUND,
        "the paid answer's redirect is not followed"
    );
    assert_eq!(log.paid("A"), 0, "the host that redirected never sees the payment");
    assert_eq!(log.paid("B"), 1, "the host that asked gets it once");
    assert_eq!(log.seen("C"), 0, "no redirect is followed with a payment attached");
    let payment = payments.lock().unwrap()[0].clone();
    let protocol::PaymentPayload::V2(payload) = codec::decode_payment(payment.as_bytes()).unwrap() else {
        panic!("a v2 payment");
    };
    assert_eq!(payload.accepted.amount, U256::from(2_000));
    assert_eq!(payload.accepted.network, "eip155:5042002");
    let rows = client.ledger().recent(10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].amount, 2_000);
    assert_eq!(rows[0].host, "127.0.0.1");
}

#[tokio::test]
async fn when_every_offer_is_refused_nothing_is_signed() {
    let (a, log, _) = servers(vec![requirement("eip155:1", 10), requirement("eip155:8453", 10)]).await;
    let client = client(SpendingPolicy::default()).await;
    let error = client
        .call(&CallRequest::get(format!("{a}/start").parse().unwrap()))
        .await
        .unwrap_err();
    assert!(matches!(error, PayError::Unpayable { .. }), "{error}");
    assert!(error.to_string().contains("eip155:8453"), "{error}");
    assert_eq!(log.paid("B"), 0);
    assert!(client.ledger().recent(10).await.unwrap().is_empty());

    let (a, log, _) = servers(vec![requirement("eip155:5042002", 200_000)]).await;
    let error = client
        .call(&CallRequest::get(format!("{a}/start").parse().unwrap()))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, PayError::OverBudget { scope, .. } if scope == "per_request"),
        "{error}"
    );
    assert_eq!(log.paid("B"), 0);
}

/// How the seller answers a paid request.
#[derive(Clone, Copy)]
enum Answer {
    /// HTTP 500 with a success `PAYMENT-RESPONSE` (it settled, then the API failed).
    ReceiptOn500,
    /// HTTP 500, no receipt: nobody knows whether it will settle.
    ErrorWithoutReceipt,
    /// HTTP 200, no receipt.
    ContentWithoutReceipt,
    /// 402 with a failed `PAYMENT-RESPONSE`, reason `facilitator_timeout`.
    FacilitatorTimeout,
    /// 402 refusing the payment, no settlement.
    Refusal,
}

fn receipt_header(success: bool, reason: Option<&str>) -> String {
    codec::encode(&protocol::SettleResponse {
        success,
        error_reason: reason.map(str::to_owned),
        error_message: None,
        payer: None,
        transaction: if success {
            format!("{:#x}", alloy::primitives::B256::repeat_byte(0xab))
        } else {
            String::new()
        },
        network: "eip155:5042002".into(),
        amount: None,
    })
}

/// One priced route (`$0.001`, validity `timeout` seconds) that answers paid requests as `answer` says.
async fn seller(answer: Answer, timeout: u64) -> String {
    let mut offer = requirement("eip155:5042002", 1_000);
    offer.max_timeout_seconds = timeout;
    serve(axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let offer = offer.clone();
        async move {
            if !headers.contains_key(codec::PAYMENT_SIGNATURE) {
                let required = v2::PaymentRequired {
                    x402_version: protocol::version::Version,
                    error: Some("pay".into()),
                    resource: ResourceInfo {
                        url: uri.path().to_owned(),
                        description: None,
                        mime_type: None,
                    },
                    accepts: vec![offer],
                    extensions: None,
                };
                return (
                    StatusCode::PAYMENT_REQUIRED,
                    [(codec::PAYMENT_REQUIRED, codec::encode(&required))],
                )
                    .into_response();
            }
            match answer {
                Answer::ReceiptOn500 => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(codec::PAYMENT_RESPONSE, receipt_header(true, None))],
                    "upstream failed after settlement",
                )
                    .into_response(),
                Answer::ErrorWithoutReceipt => (StatusCode::INTERNAL_SERVER_ERROR, "upstream failed").into_response(),
                Answer::ContentWithoutReceipt => "content".into_response(),
                Answer::FacilitatorTimeout => (
                    StatusCode::PAYMENT_REQUIRED,
                    [(
                        codec::PAYMENT_RESPONSE,
                        receipt_header(false, Some("facilitator_timeout")),
                    )],
                    axum::Json(json!({"error": "the facilitator did not answer in time"})),
                )
                    .into_response(),
                Answer::Refusal => (
                    StatusCode::PAYMENT_REQUIRED,
                    axum::Json(json!({"error": "payment refused", "reason": "invalid_exact_evm_signature"})),
                )
                    .into_response(),
            }
        }
    }))
    .await
}

/// The ledger row of the payment for the URL ending in `path`.
async fn row_state(client: &X402Client, path: &str) -> (String, Option<String>, Option<String>) {
    let rows = client.ledger().recent(100).await.unwrap();
    let row = rows.iter().find(|r| r.url.ends_with(path)).expect("a recorded payment");
    (row.state.clone(), row.reason.clone(), row.tx_hash.clone())
}

#[tokio::test]
async fn a_success_receipt_is_believed_at_any_status_and_every_other_outcome_stays_counted() {
    let policy = SpendingPolicy {
        daily_budget: Some(U256::from(5_500)),
        ..SpendingPolicy::default()
    };
    let client = client(policy).await;

    // A success PAYMENT-RESPONSE on a 500: settled, and the caller sees both the error and the receipt.
    let url = seller(Answer::ReceiptOn500, 60).await;
    let outcome = client
        .call(&CallRequest::get(format!("{url}/a").parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(outcome.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(outcome.receipt.is_some(), "the receipt is believed");
    let (state, reason, tx) = row_state(&client, "/a").await;
    assert_eq!((state.as_str(), reason.as_deref()), ("settled", Some("http_500")));
    assert!(tx.unwrap().starts_with("0xabab"));

    // No receipt on an error, no receipt on content, a facilitator timeout, a refusal: all pending.
    let url = seller(Answer::ErrorWithoutReceipt, 60).await;
    let outcome = client
        .call(&CallRequest::get(format!("{url}/b").parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(outcome.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(row_state(&client, "/b").await.0, "pending");
    let url = seller(Answer::ContentWithoutReceipt, 60).await;
    client
        .call(&CallRequest::get(format!("{url}/c").parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(row_state(&client, "/c").await.0, "pending");
    let url = seller(Answer::FacilitatorTimeout, 60).await;
    let error = client
        .call(&CallRequest::get(format!("{url}/d").parse().unwrap()))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, PayError::SettlementFailed { reason, .. } if reason == "facilitator_timeout"),
        "{error}"
    );
    assert_eq!(
        row_state(&client, "/d").await,
        ("pending".into(), Some("facilitator_timeout".into()), None)
    );
    let url = seller(Answer::Refusal, 60).await;
    assert!(matches!(
        client
            .call(&CallRequest::get(format!("{url}/e").parse().unwrap()))
            .await,
        Err(PayError::Refused { .. })
    ));
    assert_eq!(row_state(&client, "/e").await.0, "pending");

    // Five payments of $0.001 count: the next one is over the $0.0055 budget and signs nothing.
    let refused = client
        .call(&CallRequest::get(format!("{url}/f").parse().unwrap()))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, PayError::OverBudget { scope, spent, .. } if scope == "daily" && spent == "$0.005"),
        "{refused}"
    );
    assert_eq!(client.ledger().recent(100).await.unwrap().len(), 5);
}

#[tokio::test]
async fn an_offer_valid_longer_than_the_policy_allows_is_refused_and_nothing_is_signed() {
    let client = client(SpendingPolicy::default()).await;
    let url = seller(Answer::ContentWithoutReceipt, 301).await;
    let error = client
        .call(&CallRequest::get(format!("{url}/long").parse().unwrap()))
        .await
        .unwrap_err();
    assert!(matches!(error, PayError::Unpayable { .. }), "{error}");
    assert!(error.to_string().contains("301 s, over the policy's 300 s"), "{error}");
    assert!(client.ledger().recent(10).await.unwrap().is_empty());
    // At the limit it pays, and the ledger keeps the authorization's validBefore.
    let url = seller(Answer::ContentWithoutReceipt, 300).await;
    client
        .call(&CallRequest::get(format!("{url}/ok").parse().unwrap()))
        .await
        .unwrap();
    let row = client.ledger().recent(1).await.unwrap().remove(0);
    let valid_before = row.valid_before.unwrap();
    assert_eq!(valid_before - row.created_at, 300, "{row:?}");
}

#[tokio::test]
async fn a_paid_request_that_cannot_connect_was_never_sent_and_frees_its_amount() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The seller answers one 402 and stops listening before it does: every paid attempt is refused at connect.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/gone", listener.local_addr().unwrap());
    let required = v2::PaymentRequired {
        x402_version: protocol::version::Version,
        error: None,
        resource: ResourceInfo {
            url: url.clone(),
            description: None,
            mime_type: None,
        },
        accepts: vec![requirement("eip155:5042002", 1_000)],
        extensions: None,
    };
    let header = codec::encode(&required);
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        drop(listener);
        let mut request = vec![0u8; 4096];
        let _ = stream.read(&mut request).await.unwrap();
        let answer = format!(
            "HTTP/1.1 402 Payment Required\r\n{}: {header}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            codec::PAYMENT_REQUIRED
        );
        stream.write_all(answer.as_bytes()).await.unwrap();
        stream.shutdown().await.unwrap();
    });
    let client = client(SpendingPolicy::default()).await;
    let error = client.call(&CallRequest::get(url.parse().unwrap())).await.unwrap_err();
    server.await.unwrap();
    assert!(matches!(error, PayError::Network(_)), "{error}");
    assert!(error.to_string().contains("nothing was paid"), "{error}");
    let (state, reason, _) = row_state(&client, "/gone").await;
    assert_eq!((state.as_str(), reason.as_deref()), ("unsettled", Some("not_sent")));
}

/// A route answering `size` bytes, produced 64 KiB at a time only as the client reads; `produced` counts
/// what was made. With `paid`, it asks $0.001 first and sends a success receipt with the body.
async fn big_answer(size: usize, paid: bool) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = produced.clone();
    let url = serve(axum::Router::new().fallback(move |headers: HeaderMap| {
        let counter = counter.clone();
        async move {
            if paid && !headers.contains_key(codec::PAYMENT_SIGNATURE) {
                let required = v2::PaymentRequired {
                    x402_version: protocol::version::Version,
                    error: None,
                    resource: ResourceInfo {
                        url: "/big".into(),
                        description: None,
                        mime_type: None,
                    },
                    accepts: vec![requirement("eip155:5042002", 1_000)],
                    extensions: None,
                };
                return (
                    StatusCode::PAYMENT_REQUIRED,
                    [(codec::PAYMENT_REQUIRED, codec::encode(&required))],
                )
                    .into_response();
            }
            let chunks = futures_util::stream::unfold(0usize, move |sent| {
                let counter = counter.clone();
                async move {
                    if sent >= size {
                        return None;
                    }
                    let n = (size - sent).min(64 * 1024);
                    counter.fetch_add(n, Ordering::SeqCst);
                    Some((
                        Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b'x'; n])),
                        sent + n,
                    ))
                }
            });
            let mut response = axum::body::Body::from_stream(chunks).into_response();
            if paid {
                response
                    .headers_mut()
                    .insert(codec::PAYMENT_RESPONSE, receipt_header(true, None).parse().unwrap());
            }
            response
        }
    }))
    .await;
    (format!("{url}/big"), produced)
}

#[tokio::test]
async fn at_most_max_response_bytes_of_an_answer_is_read_and_the_cut_is_reported() {
    use std::sync::atomic::Ordering;
    const LIMIT: usize = 256 * 1024;
    const HUGE: usize = 1024 * 1024 * 1024;
    let client = client(SpendingPolicy::default()).await.with_max_response_bytes(LIMIT);

    // A free gigabyte: the first 256 KiB are kept, and the server was stopped long before the end.
    let (url, produced) = big_answer(HUGE, false).await;
    let outcome = client.call(&CallRequest::get(url.parse().unwrap())).await.unwrap();
    assert_eq!((outcome.body.len(), outcome.truncated), (LIMIT, true));
    assert!(
        produced.load(Ordering::SeqCst) < 64 * 1024 * 1024,
        "the rest was not downloaded"
    );

    // Exactly the limit is not a cut; a per-call limit below the client's wins.
    let (url, _) = big_answer(LIMIT, false).await;
    let outcome = client.call(&CallRequest::get(url.parse().unwrap())).await.unwrap();
    assert_eq!((outcome.body.len(), outcome.truncated), (LIMIT, false));
    let mut small = CallRequest::get(url.parse().unwrap());
    small.max_body_bytes = Some(1_000);
    let outcome = client.call(&small).await.unwrap();
    assert_eq!((outcome.body.len(), outcome.truncated), (1_000, true));

    // A paid answer too big to read whole still settles: the receipt is in the headers.
    let (url, _) = big_answer(HUGE, true).await;
    let outcome = client.call(&CallRequest::get(url.parse().unwrap())).await.unwrap();
    assert!(outcome.receipt.is_some());
    assert_eq!((outcome.body.len(), outcome.truncated), (LIMIT, true));
    assert_eq!(row_state(&client, "/big").await.0, "settled");
}

#[tokio::test]
async fn a_guarded_client_screens_the_first_url_every_redirect_and_every_resolved_address() {
    use agents::buyer::fetch_guard::FetchGuard;
    let log = Log::default();
    let inner_log = log.clone();
    let inner = serve(axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let log = inner_log.clone();
        async move {
            log.record("inner", &uri, &headers);
            "internal secrets"
        }
    }))
    .await;
    let inner_port = inner.rsplit(':').next().unwrap().to_owned();
    let front_log = log.clone();
    let target = inner.clone();
    let front = serve(axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let (log, target, inner_port) = (front_log.clone(), target.clone(), inner_port.clone());
        async move {
            log.record("front", &uri, &headers);
            let location = match uri.path() {
                "/to-ip" => format!("{target}/admin"),
                "/to-name" => format!("http://localhost:{inner_port}/admin"),
                _ => return "public content".into_response(),
            };
            (StatusCode::FOUND, [("location", location)]).into_response()
        }
    }))
    .await;
    let front_port: u16 = front.rsplit(':').next().unwrap().parse().unwrap();
    let guarded = |allow: Vec<String>| async move {
        client(SpendingPolicy::default())
            .await
            .with_fetch_guard(FetchGuard::new(&allow).unwrap())
            .unwrap()
    };
    let refused = |error: PayError| match error {
        PayError::FetchRefused { rule, host, .. } => (rule, host),
        other => panic!("not a fetch refusal: {other}"),
    };

    // Without an allowance the loopback server is refused before any connection, by IP or by name.
    let client = guarded(Vec::new()).await;
    let error = client
        .call(&CallRequest::get(format!("{front}/x").parse().unwrap()))
        .await
        .unwrap_err();
    assert_eq!(refused(error), ("loopback".into(), "127.0.0.1".into()));
    let by_name = format!("http://localhost:{front_port}/x").parse().unwrap();
    let error = client.quote(axum::http::Method::GET, by_name).await.unwrap_err();
    assert_eq!(refused(error), ("loopback".into(), "localhost".into()));
    assert_eq!(log.seen("front"), 0);

    // Allowing the front server's host and port lets it through, and only it: its redirects to the
    // internal server, by IP or by a name resolving to loopback, are refused and never reach it.
    let client = guarded(vec![format!("127.0.0.1:{front_port}")]).await;
    let outcome = client
        .call(&CallRequest::get(format!("{front}/x").parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(outcome.body, b"public content");
    let error = client
        .call(&CallRequest::get(format!("{front}/to-ip").parse().unwrap()))
        .await
        .unwrap_err();
    assert_eq!(refused(error).0, "loopback");
    let error = client
        .call(&CallRequest::get(format!("{front}/to-name").parse().unwrap()))
        .await
        .unwrap_err();
    assert_eq!(refused(error), ("loopback".into(), "localhost".into()));
    assert_eq!(log.seen("inner"), 0, "no redirect reached the internal server");
    assert!(client.ledger().recent(10).await.unwrap().is_empty());
}

/// A seller like the official middlewares: it compares `accepted` with its own requirement as JSON, exactly,
/// and refuses a mismatch with `No matching payment requirements` in a fresh `PAYMENT-REQUIRED`.
async fn strict_seller(accepted: serde_json::Value) -> String {
    let offer = json!({
        "x402Version": 2,
        "error": "Payment required",
        "resource": {"url": "http://seller/paid", "description": "d", "mimeType": "application/json", "x-kept": 1},
        "accepts": [accepted.clone()],
    });
    serve(axum::Router::new().fallback(move |headers: HeaderMap| {
        let (offer, accepted) = (offer.clone(), accepted.clone());
        async move {
            let encode = |doc: &serde_json::Value| codec::encode(doc);
            if let Some(payment) = headers.get(codec::PAYMENT_SIGNATURE) {
                let sent = codec::decode_json_header(payment.as_bytes()).unwrap();
                if sent["accepted"] == accepted && sent["resource"] == offer["resource"] {
                    return (StatusCode::OK, "paid").into_response();
                }
                let mut refusal = offer.clone();
                refusal["error"] = json!("No matching payment requirements");
                return (
                    StatusCode::PAYMENT_REQUIRED,
                    [(codec::PAYMENT_REQUIRED, encode(&refusal))],
                    axum::Json(json!({})),
                )
                    .into_response();
            }
            (
                StatusCode::PAYMENT_REQUIRED,
                [(codec::PAYMENT_REQUIRED, encode(&offer))],
                axum::Json(json!({})),
            )
                .into_response()
        }
    }))
    .await
}

fn arc_requirement_json(pay_to: &str) -> serde_json::Value {
    json!({
        "scheme": "exact",
        "network": "eip155:5042002",
        "amount": "1000",
        "asset": format!("{:#x}", protocol::network::ARC_USDC),
        "payTo": pay_to,
        "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2", "sellerNote": {"kept": true}},
        "futureField": [1, 2]
    })
}

#[tokio::test]
async fn the_chosen_requirement_is_echoed_exactly_as_the_seller_wrote_it() {
    let lower = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc";
    let checksummed = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
    for pay_to in [lower, checksummed] {
        let seller = strict_seller(arc_requirement_json(pay_to)).await;
        let client = client(SpendingPolicy::default()).await;
        let outcome = client
            .call(&CallRequest::get(format!("{seller}/paid").parse().unwrap()))
            .await
            .unwrap_or_else(|e| panic!("payTo {pay_to}: {e}"));
        assert_eq!(outcome.status, StatusCode::OK, "payTo {pay_to}");
        assert_eq!(&outcome.body[..], b"paid");
    }
}

#[tokio::test]
async fn a_refusal_names_the_sellers_own_error() {
    // The seller's requirement differs from what it offered, so every payment is refused.
    let offered = arc_requirement_json("0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc");
    let mut expected = offered.clone();
    expected["amount"] = json!("999");
    let seller = serve(axum::Router::new().fallback(move |headers: HeaderMap| {
        let (offered, expected) = (offered.clone(), expected.clone());
        async move {
            let accepts = if headers.contains_key(codec::PAYMENT_SIGNATURE) {
                expected
            } else {
                offered
            };
            let error = if headers.contains_key(codec::PAYMENT_SIGNATURE) {
                "No matching payment requirements"
            } else {
                "Payment required"
            };
            let doc =
                json!({"x402Version": 2, "error": error, "resource": {"url": "http://s/p"}, "accepts": [accepts]});
            (
                StatusCode::PAYMENT_REQUIRED,
                [(codec::PAYMENT_REQUIRED, codec::encode(&doc))],
                axum::Json(json!({})),
            )
                .into_response()
        }
    }))
    .await;
    let client = client(SpendingPolicy::default()).await;
    let error = client
        .call(&CallRequest::get(format!("{seller}/paid").parse().unwrap()))
        .await
        .unwrap_err();
    assert!(matches!(error, PayError::Refused { status: 402, .. }), "{error}");
    assert!(
        error.to_string().contains("No matching payment requirements"),
        "the seller's error is shown: {error}"
    );
}
