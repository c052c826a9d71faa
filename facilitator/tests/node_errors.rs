//! Broadcast refusals by kind, through a fake JSON-RPC node in front of the devnet that answers
//! `eth_sendRawTransaction` the way anvil, geth or reth word each refusal: "already known" counts as submitted,
//! "nonce too low" resyncs (to the chain's nonce, or by filling a gap nothing holds), "underpriced" bumps the
//! fee at the same nonce, "insufficient funds" and "exceeds block gas limit" fail with the node's reason and
//! free the nonce (the payment can be settled later), and unknown errors are retried before they fail.

mod common;

use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::U256;
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use common::fake_node::FakeNode;
use common::stack::{Options, Stack};
use contracts::{Devnet, DevnetConfig};
use facilitator::ledger::SettlementState;
use protocol::reason;
use serde_json::Value;

/// No background reconciler (its re-sends would blur what each test counts); the tests that need a pass run one.
const TOML: &str = "[settlement]\nreceipt_timeout_ms = 3000\nnonce_resync_after_ms = 300\nnonce_check_ms = 100\n\
                    reconcile_interval_ms = 3600000\n";

async fn behind_fake_node() -> (Stack, FakeNode) {
    behind_fake_node_with(TOML).await
}

async fn behind_fake_node_with(toml: &str) -> (Stack, FakeNode) {
    let devnet = Devnet::start(DevnetConfig::default()).await.expect("devnet");
    let fake = FakeNode::start(devnet.rpc_url()).await;
    let stack = Stack::start_with(Options {
        toml: toml.into(),
        devnet: Some(devnet),
        rpc_url: Some(fake.base.clone()),
        ..Default::default()
    })
    .await;
    (stack, fake)
}

async fn settle(stack: &Stack, request: &protocol::VerifyRequest) -> Value {
    let (status, answer) = stack.post("/settle", request).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

#[tokio::test]
async fn already_known_counts_as_submitted() {
    let (stack, fake) = behind_fake_node().await;
    let (start, _) = stack.signer_nonces().await;
    // geth and reth say "already known", anvil "transaction already imported"; the node has it either way.
    for (code, message) in [(-32000, "already known"), (-32003, "transaction already imported")] {
        fake.refuse_next(code, message, true);
        let answer = settle(&stack, &stack.payment(1_000).await).await;
        assert_eq!(answer["success"], true, "{message}: {answer}");
    }
    let sent = fake.sent();
    assert_eq!(sent.len(), 2, "each sent once: {sent:#?}");
    assert!(sent.iter().all(|s| s.refused.is_some()));
    assert_eq!(stack.signer_nonces().await, (start + 2, start + 2));
}

#[tokio::test]
async fn nonce_too_low_moves_the_payment_to_the_chains_nonce() {
    // No periodic check: it would notice the chain ahead of the owner and resync before the node can refuse.
    let (stack, fake) = behind_fake_node_with(
        "[settlement]\nreceipt_timeout_ms = 3000\nnonce_check_ms = 3600000\nreconcile_interval_ms = 3600000\n",
    )
    .await;
    let seller0 = stack.usdc_balance(stack.seller).await;
    assert_eq!(settle(&stack, &stack.payment(1_000).await).await["success"], true);
    let (n, _) = stack.signer_nonces().await;

    // Someone else uses the settlement key behind the facilitator's back: the next nonce is taken on chain,
    // and the real node answers "nonce too low".
    let key = stack.settlement_key();
    let admin = stack.devnet.admin_provider();
    let fees = admin.estimate_eip1559_fees().await.unwrap();
    let foreign = TransactionRequest::default()
        .with_from(key.address())
        .with_to(key.address())
        .with_value(U256::ZERO)
        .with_nonce(n)
        .with_gas_limit(21_000)
        .with_chain_id(stack.devnet.state().chain_id)
        .with_max_fee_per_gas(fees.max_fee_per_gas)
        .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas)
        .build(&EthereumWallet::from(key))
        .await
        .unwrap();
    admin
        .send_tx_envelope(foreign)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    let request = stack.payment(2_000).await;
    let answer = settle(&stack, &request).await;
    assert_eq!(answer["success"], true, "{answer}");
    // (The reconciler may re-send the first payment's transaction meanwhile; only this payment's count here.)
    let mut tries: Vec<u64> = fake
        .sent()
        .iter()
        .map(|s| s.nonce)
        .filter(|nonce| *nonce >= n)
        .collect();
    tries.dedup();
    assert_eq!(tries, vec![n, n + 1], "signed at the taken nonce, then at the chain's");
    assert_eq!(stack.row(&request).await.unwrap().signer_nonce, Some(n + 1));
    assert_eq!(stack.signer_nonces().await, (n + 2, n + 2));
    assert_eq!(stack.usdc_balance(stack.seller).await, seller0 + U256::from(3_000u64));
}

#[tokio::test]
async fn a_false_nonce_too_low_leaves_a_gap_that_is_filled() {
    let (stack, fake) = behind_fake_node().await;
    let seller0 = stack.usdc_balance(stack.seller).await;
    let (n, _) = stack.signer_nonces().await;
    // reth's wording, from a node (say, behind a load balancer) that is wrong: the nonce is not used at all.
    fake.refuse_next(
        -32000,
        &format!("nonce too low: next nonce {}, tx nonce {n}", n + 1),
        false,
    );
    let request = stack.payment(1_000).await;
    let answer = settle(&stack, &request).await;
    // The payment moved to the next nonce, which waits behind the gap: pending until the gap is filled.
    assert!(
        answer["success"] == true || answer["errorReason"] == reason::SETTLEMENT_PENDING,
        "{answer}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while stack.row(&request).await.unwrap().state != SettlementState::Confirmed {
        assert!(std::time::Instant::now() < deadline, "never confirmed");
        stack
            .settler
            .reconcile_once(std::time::Duration::from_millis(200))
            .await;
    }
    let row = [stack.row(&request).await.unwrap()];
    assert_eq!(row[0].signer_nonce, Some(n + 1));
    // Sent: the refused transaction at n; the payment's at n + 1 (re-sent as often as needed, always the same
    // bytes); and at n, once the gap had lasted, a filler that carries no payment.
    let sent = fake.sent();
    assert_eq!((sent[0].nonce, sent[0].refused.is_some()), (n, true), "{sent:#?}");
    let payment_tx = row[0].tx_hash.unwrap();
    assert!(
        sent.iter().filter(|s| s.nonce == n + 1).all(|s| s.hash == payment_tx),
        "{sent:#?}"
    );
    let fillers: std::collections::HashSet<_> = sent[1..].iter().filter(|s| s.nonce == n).map(|s| s.hash).collect();
    assert_eq!(fillers.len(), 1, "one filler closed the gap: {sent:#?}");
    let filler = stack
        .devnet
        .admin_provider()
        .get_transaction_receipt(*fillers.iter().next().unwrap())
        .await
        .unwrap()
        .expect("the filler was mined");
    assert_eq!(filler.to, Some(stack.settlement), "a transfer to the signer itself");
    assert_eq!(stack.signer_nonces().await, (n + 2, n + 2));
    assert_eq!(
        stack.usdc_balance(stack.seller).await,
        seller0 + U256::from(1_000u64),
        "paid once"
    );
}

#[tokio::test]
async fn underpriced_bumps_the_fee_at_the_same_nonce() {
    let (stack, fake) = behind_fake_node().await;
    let (n, _) = stack.signer_nonces().await;
    for (code, message) in [
        (-32000, "replacement transaction underpriced"),
        (-32003, "max fee per gas less than block base fee"),
    ] {
        fake.refuse_next(code, message, false);
        let request = stack.payment(1_000).await;
        assert_eq!(settle(&stack, &request).await["success"], true, "{message}");
        let sent = fake.sent();
        let (refused, bumped) = (&sent[sent.len() - 2], &sent[sent.len() - 1]);
        assert_eq!(refused.nonce, bumped.nonce, "the same nonce");
        assert!(bumped.max_fee_per_gas * 10 >= refused.max_fee_per_gas * 11, "{sent:#?}");
        assert!(
            bumped.max_priority_fee_per_gas * 10 >= refused.max_priority_fee_per_gas * 11,
            "{sent:#?}"
        );
        assert_eq!(stack.row(&request).await.unwrap().tx_hash, Some(bumped.hash));
    }
    assert_eq!(stack.signer_nonces().await, (n + 2, n + 2));
}

#[tokio::test]
async fn insufficient_funds_fails_with_the_reason_frees_the_nonce_and_can_be_settled_later() {
    let (stack, fake) = behind_fake_node().await;
    let seller0 = stack.usdc_balance(stack.seller).await;
    let (n, _) = stack.signer_nonces().await;
    fake.refuse_next(-32003, "Insufficient funds for gas * price + value", false);
    let request = stack.payment(1_000).await;
    let answer = settle(&stack, &request).await;
    assert_eq!(answer["success"], false, "{answer}");
    assert_eq!(answer["errorReason"], reason::UNEXPECTED_SETTLE_ERROR, "{answer}");
    assert!(
        answer["errorMessage"]
            .as_str()
            .unwrap()
            .contains("insufficient_funds_for_gas"),
        "{answer}"
    );
    assert_eq!(answer["transaction"], "", "nothing was mined");
    let row = stack.row(&request).await.unwrap();
    assert_eq!(
        (row.state, row.retryable, row.tx_hash),
        (SettlementState::Failed, true, None)
    );
    assert_eq!(stack.signer_nonces().await, (n, n));

    // The signer has gas again: the same payment settles, at the nonce the refusal gave back.
    let answer = settle(&stack, &request).await;
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(stack.row(&request).await.unwrap().signer_nonce, Some(n));
    let sent = fake.sent();
    assert_eq!((sent[0].nonce, sent[0].refused.is_some()), (n, true), "{sent:#?}");
    assert!(
        sent[1..].iter().all(|s| s.nonce == n && s.refused.is_none()),
        "{sent:#?}"
    );
    assert_eq!(stack.signer_nonces().await, (n + 1, n + 1));
    assert_eq!(stack.usdc_balance(stack.seller).await, seller0 + U256::from(1_000u64));
}

#[tokio::test]
async fn exceeds_block_gas_limit_fails_with_the_reason_and_the_next_payment_takes_the_nonce() {
    let (stack, fake) = behind_fake_node().await;
    let (n, _) = stack.signer_nonces().await;
    for (code, message) in [
        (-32000, "exceeds block gas limit"),
        (-32000, "intrinsic gas too high -- tx.gas_limit > env.block.gas_limit"),
    ] {
        fake.refuse_next(code, message, false);
        let answer = settle(&stack, &stack.payment(1_000).await).await;
        assert_eq!(answer["success"], false, "{answer}");
        assert!(
            answer["errorMessage"]
                .as_str()
                .unwrap()
                .contains("exceeds_block_gas_limit"),
            "{answer}"
        );
    }
    let next = stack.payment(1_000).await;
    assert_eq!(settle(&stack, &next).await["success"], true);
    assert_eq!(stack.row(&next).await.unwrap().signer_nonce, Some(n));
    assert_eq!(stack.signer_nonces().await, (n + 1, n + 1));
}

#[tokio::test]
async fn unknown_errors_are_retried_then_fail_with_the_nodes_words() {
    let (stack, fake) = behind_fake_node().await;
    let (n, _) = stack.signer_nonces().await;
    // Twice, then the node takes it: the same bytes three times.
    fake.refuse_next(-32000, "txpool is full", false);
    fake.refuse_next(-32000, "txpool is full", false);
    let first = stack.payment(1_000).await;
    assert_eq!(settle(&stack, &first).await["success"], true);
    let sent = fake.sent();
    let refused: Vec<bool> = sent.iter().take(3).map(|s| s.refused.is_some()).collect();
    assert_eq!(refused, vec![true, true, false], "{sent:#?}");
    assert!(
        sent.iter().all(|s| s.hash == sent[0].hash),
        "the same bytes every time: {sent:#?}"
    );

    // Refused every time: failed with the node's words, retryable, and the nonce is free again.
    for _ in 0..4 {
        fake.refuse_next(-32010, "gateway says no", false);
    }
    let second = stack.payment(2_000).await;
    let answer = settle(&stack, &second).await;
    assert_eq!(answer["success"], false, "{answer}");
    assert!(
        answer["errorMessage"].as_str().unwrap().contains("gateway says no"),
        "{answer}"
    );
    assert!(stack.row(&second).await.unwrap().retryable);
    assert_eq!(stack.signer_nonces().await, (n + 1, n + 1));
}
