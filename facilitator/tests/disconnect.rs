//! Settlement outlives its request: bursts of 32 concurrent settles whose callers give up at random points
//! (HTTP clients hanging up, and embedded callers dropping the engine's future) leave no nonce gap, no row
//! `reserved` and no payment paid twice; a caller that asks again gets its payment's one settlement, and every
//! later settle confirms at once.

mod common;

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::U256;
use common::stack::{Stack, amount_of, now};
use facilitator::ledger::SettlementState;
use protocol::VerifyRequest;

const BURST: usize = 32;
const ROUNDS: usize = 3;

/// A pseudo-random delay in 0..max_ms (from fresh random bytes).
fn random_ms(max_ms: u64) -> u64 {
    let bytes = alloy::primitives::B64::random();
    u64::from_le_bytes(bytes.0) % max_ms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callers_that_give_up_leave_no_gap_no_reserved_row_and_no_double_payment() {
    let stack = Arc::new(Stack::start().await);
    let buyers: Vec<_> = [1usize, 3, 4, 5]
        .iter()
        .map(|i| stack.devnet.signer(*i).unwrap().clone())
        .collect();
    let seller0 = stack.usdc_balance(stack.seller).await;
    let (start, _) = stack.signer_nonces().await;
    let mut reached: Vec<VerifyRequest> = Vec::new(); // every payment made, in the end
    let mut later_settles = 0u64;
    let mut paid = U256::ZERO;

    for round in 0..ROUNDS {
        let mut requests = Vec::new();
        for i in 0..BURST {
            let buyer = &buyers[i % buyers.len()];
            requests.push(stack.payment_from(buyer, 1_000 + (round * BURST + i) as u64).await);
        }
        let tasks: Vec<_> = requests
            .iter()
            .enumerate()
            .map(|(i, request)| {
                let (stack, request) = (stack.clone(), request.clone());
                // Give up somewhere between before the request is sent and after the settlement is done.
                let give_up = Duration::from_millis(random_ms(60));
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        let send = stack.http.post(format!("{}/settle", stack.url)).json(&request).send();
                        let _ = tokio::time::timeout(give_up, send).await;
                    } else {
                        let _ = tokio::time::timeout(give_up, stack.settler.settle(&request, now())).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        // Every caller now asks again and waits: a payment whose settlement went on without its caller gets
        // that settlement's outcome; one that never reached the facilitator is settled now. Either way, once.
        let resends: Vec<_> = requests
            .iter()
            .map(|request| {
                let (stack, request) = (stack.clone(), request.clone());
                tokio::spawn(async move { stack.post("/settle", &request).await })
            })
            .collect();
        let mut hashes = std::collections::HashSet::new();
        for (resend, request) in resends.into_iter().zip(&requests) {
            let (status, answer) = resend.await.unwrap();
            assert_eq!(
                (status, &answer["success"]),
                (200, &serde_json::Value::Bool(true)),
                "{answer}"
            );
            hashes.insert(answer["transaction"].as_str().unwrap().to_owned());
            paid += amount_of(request);
            reached.push(request.clone());
        }
        assert_eq!(hashes.len(), BURST, "one transaction per payment");
        let rows = stack.rows_when(&requests, 10, |row| row.state.is_final()).await;
        assert!(
            rows.iter().all(|row| row.state == SettlementState::Confirmed),
            "{rows:#?}"
        );
        let unfinished = stack.settler.verifier().ledger().unfinished(0).await.unwrap();
        assert!(
            unfinished.is_empty(),
            "no row stays reserved or submitted: {unfinished:#?}"
        );

        // A later settle confirms at once (no gap holds it back).
        let later = stack.payment(500).await;
        let (_, answer) = stack.post("/settle", &later).await;
        assert_eq!(answer["success"], true, "round {round}: {answer}");
        later_settles += 1;
        paid += U256::from(500u64);
    }

    // Every payment that reached the facilitator was paid once, each by its own transaction at its own nonce,
    // and the chain holds exactly those transactions.
    let rows: Vec<_> = {
        let mut rows = Vec::new();
        for request in &reached {
            rows.push(stack.row(request).await.unwrap());
        }
        rows
    };
    let mut nonces: Vec<u64> = rows.iter().map(|r| r.signer_nonce.unwrap()).collect();
    nonces.sort_unstable();
    nonces.dedup();
    assert_eq!(nonces.len(), rows.len(), "no nonce used twice");
    let (latest, pending) = stack.signer_nonces().await;
    assert_eq!(
        latest,
        start + rows.len() as u64 + later_settles,
        "one transaction per payment, nothing else"
    );
    assert_eq!(pending, latest, "nothing waits behind a gap");
    assert_eq!(
        stack.usdc_balance(stack.seller).await,
        seller0 + paid,
        "each payment paid once"
    );
}
