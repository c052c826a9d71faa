//! `/settle` against a real devnet: funds move once (balances on chain), the status endpoint agrees, a resend
//! of the same payload gets the same transaction, a different payload reusing the nonce is refused, and 200
//! concurrent settles of one payload make exactly one transfer.

mod common;

use alloy::primitives::U256;
use common::stack::Stack;
use protocol::{VerifyRequest, reason};

fn nonce_of(request: &VerifyRequest) -> alloy::primitives::B256 {
    match request {
        VerifyRequest::V2(r) => r.payment_payload.payload.exact_evm().unwrap().authorization.nonce,
        VerifyRequest::V1(r) => r.payment_payload.payload.exact_evm().unwrap().authorization.nonce,
    }
}

#[tokio::test]
async fn settle_moves_funds_once_and_is_idempotent() {
    let stack = Stack::start().await;
    let (buyer0, seller0) = (
        stack.usdc_balance(stack.buyer.address()).await,
        stack.usdc_balance(stack.seller).await,
    );
    let request = stack.payment(10_000).await;
    let (status, first) = stack.post("/settle", &request).await;
    assert_eq!(status, 200);
    assert_eq!(first["success"], true, "{first}");
    let tx = first["transaction"].as_str().unwrap().to_owned();
    assert_eq!(tx.len(), 66);
    assert_eq!(first["network"], stack.devnet.state().network);
    assert_eq!(first["payer"], stack.buyer.address().to_checksum(None));
    assert_eq!(
        stack.usdc_balance(stack.buyer.address()).await,
        buyer0 - U256::from(10_000u64)
    );
    assert_eq!(stack.usdc_balance(stack.seller).await, seller0 + U256::from(10_000u64));

    let (_, again) = stack.post("/settle", &request).await;
    assert_eq!(
        (again["success"].clone(), again["transaction"].as_str()),
        (true.into(), Some(tx.as_str()))
    );
    assert_eq!(
        stack.usdc_balance(stack.seller).await,
        seller0 + U256::from(10_000u64),
        "charged once"
    );

    let (status, record) = stack
        .get(&format!(
            "/settlements/{}/{}",
            stack.buyer.address(),
            nonce_of(&request)
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(record["settlements"][0]["state"], "confirmed");
    assert_eq!(record["settlements"][0]["transaction"], tx);

    // Same nonce, different payment (another amount, freshly signed): refused as a duplicate.
    let mut other = stack.payment(20_000).await;
    if let (VerifyRequest::V2(o), VerifyRequest::V2(r)) = (&mut other, &request) {
        let nonce = r.payment_payload.payload.exact_evm().unwrap().authorization.nonce;
        let mut exact = o.payment_payload.payload.exact_evm().unwrap().clone();
        exact.authorization.nonce = nonce;
        let domain = protocol::eip3009::domain_for(&o.payment_requirements).unwrap();
        exact.signature = protocol::eip3009::sign(&stack.buyer, &exact.authorization, &domain)
            .await
            .unwrap();
        o.payment_payload.payload = exact.into();
    }
    let (_, duplicate) = stack.post("/settle", &other).await;
    assert_eq!(duplicate["success"], false);
    assert_eq!(duplicate["errorReason"], reason::DUPLICATE_SETTLEMENT, "{duplicate}");
    assert_eq!(stack.usdc_balance(stack.seller).await, seller0 + U256::from(10_000u64));

    // An invalid payment is refused with its reason, and leaves no ledger row.
    let mut bad = stack.payment(10_000).await;
    if let VerifyRequest::V2(r) = &mut bad {
        r.payment_requirements.pay_to = stack.buyer.address();
        r.payment_payload.accepted.pay_to = stack.buyer.address();
    }
    let (_, refused) = stack.post("/settle", &bad).await;
    assert_eq!(
        refused["errorReason"],
        reason::INVALID_EXACT_EVM_RECIPIENT_MISMATCH,
        "{refused}"
    );
    assert_eq!(refused["transaction"], "");
    assert!(
        stack
            .settler
            .verifier()
            .ledger()
            .find(stack.buyer.address(), nonce_of(&bad))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn two_hundred_concurrent_settles_of_one_payload_make_one_transfer() {
    let stack = std::sync::Arc::new(Stack::start().await);
    let seller0 = stack.usdc_balance(stack.seller).await;
    let request = std::sync::Arc::new(stack.payment(10_000).await);
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (stack, request) = (stack.clone(), request.clone());
            tokio::spawn(async move { stack.post("/settle", &*request).await })
        })
        .collect();
    let mut hashes = std::collections::HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body["success"], true, "{body}");
        hashes.insert(body["transaction"].as_str().unwrap().to_owned());
    }
    assert_eq!(hashes.len(), 1, "every caller gets the same transaction");
    assert_eq!(
        stack.usdc_balance(stack.seller).await,
        seller0 + U256::from(10_000u64),
        "exactly one transfer"
    );
}

#[tokio::test]
async fn api_keys_guard_settle_and_rate_limits_answer_429() {
    let stack = Stack::start_with(common::stack::Options {
        toml: "[security]\napi_keys = [\"sekrit\"]\n[limits]\nper_ip_per_second = 5\n".into(),
        database_url: None,
        ..Default::default()
    })
    .await;
    let request = stack.payment(10_000).await;
    let response = stack
        .http
        .post(format!("{}/settle", stack.url))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["reason"],
        "missing_api_key"
    );
    let response = stack
        .http
        .post(format!("{}/settle", stack.url))
        .bearer_auth("wrong")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = stack
        .http
        .post(format!("{}/settle", stack.url))
        .bearer_auth("sekrit")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["success"], true);

    let mut limited = None;
    for _ in 0..20 {
        let response = stack.http.get(format!("{}/supported", stack.url)).send().await.unwrap();
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("the per-IP limit answers 429");
    assert!(limited.headers().get("retry-after").is_some());
    assert_eq!(
        limited.json::<serde_json::Value>().await.unwrap()["reason"],
        "rate_limited"
    );
}

#[tokio::test]
async fn supported_health_ready_and_metrics() {
    let stack = Stack::start().await;
    let (status, supported) = stack.get("/supported").await;
    assert_eq!(status, 200);
    let kinds = supported["kinds"].as_array().unwrap();
    assert!(
        kinds
            .iter()
            .any(|k| k["x402Version"] == 2 && k["network"] == stack.devnet.state().network)
    );
    assert!(
        kinds
            .iter()
            .any(|k| k["x402Version"] == 1 && k["network"] == "arc-devnet")
    );
    assert_eq!(supported["signers"]["eip155:*"][0], stack.settlement.to_checksum(None));
    assert_eq!(stack.get("/health").await.0, 200);
    assert_eq!(stack.get("/ready").await, (200, serde_json::json!({"ready": true})));
    let request = stack.payment(10_000).await;
    stack.post("/verify", &request).await;
    let text = stack
        .http
        .get(format!("{}/metrics", stack.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("facilitator_requests_total{endpoint=\"verify\",outcome=\"valid\"} 1"),
        "{text}"
    );
    assert!(text.contains("facilitator_request_duration_seconds"), "{text}");
}
