//! The buyer client against small real HTTP servers: the payment goes only to the URL that answered 402 (not to
//! the host that redirected there, and never along a redirect after paying), the cheapest offer the policy
//! admits is the one signed, and a 402 whose every offer is refused signs nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agents::spend_ledger::SpendLedger;
use agents::spending_policy::SpendingPolicy;
use agents::x402_client::{CallRequest, PayError, X402Client};
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
