//! A signer's nonce sequence against a node that loses transactions: a dropped transaction with later ones
//! waiting behind it is re-sent by the nonce owner and everything mines once; a batch whose transaction was
//! dropped and whose nonce went to another transaction is re-signed once for all its payments.

mod common;

use std::sync::Arc;
use std::time::Duration;

use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::rpc::types::TransactionRequest;
use common::stack::{Options, Stack, amount_of, now};
use facilitator::ledger::SettlementState;
use protocol::reason;

#[tokio::test]
async fn a_dropped_transaction_is_resent_and_the_ones_behind_it_confirm_once() {
    // No reconciler: only the nonce owner's gap check can get the chain moving again. It waits until the oldest
    // transaction in flight is 3 s old, which leaves the test time to make the gap and look at it.
    let stack = Stack::start_with(Options {
        toml: "[settlement]\nreceipt_timeout_ms = 200\nnonce_resync_after_ms = 3000\nnonce_check_ms = 100\n\
               reconcile_interval_ms = 3600000\n"
            .into(),
        ..Default::default()
    })
    .await;
    let admin = stack.devnet.admin_provider().clone();
    let seller0 = stack.usdc_balance(stack.seller).await;
    let (start, _) = stack.signer_nonces().await;
    admin.anvil_set_auto_mine(false).await.unwrap();
    let mut requests = Vec::new();
    let mut hashes = Vec::new();
    for amount in [1_000u64, 2_000, 3_000] {
        let request = stack.payment(amount).await;
        let (_, answer) = stack.post("/settle", &request).await;
        assert_eq!(answer["errorReason"], reason::SETTLEMENT_PENDING, "{answer}");
        hashes.push(answer["transaction"].as_str().unwrap().parse::<B256>().unwrap());
        requests.push(request);
    }
    let rows = stack
        .rows_when(&requests, 5, |r| r.state == SettlementState::Submitted)
        .await;
    let nonces: Vec<u64> = rows.iter().map(|r| r.signer_nonce.unwrap()).collect();
    assert_eq!(nonces, vec![start, start + 1, start + 2]);

    // The node loses the first (anvil drops the ones behind it too); the later two come back and wait.
    assert_eq!(admin.anvil_drop_transaction(hashes[0]).await.unwrap(), Some(hashes[0]));
    for row in &rows[1..] {
        let _ = admin.send_raw_transaction(row.raw_tx.as_ref().unwrap()).await.unwrap();
    }
    assert_eq!(stack.signer_nonces().await, (start, start), "a gap: nothing can mine");
    admin.anvil_set_auto_mine(true).await.unwrap();

    // The owner sees the pending count stuck below its next nonce and re-sends the gap.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while stack.signer_nonces().await != (start + 3, start + 3) {
        assert!(std::time::Instant::now() < deadline, "the gap was never closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for hash in &hashes {
        let receipt = admin.get_transaction_receipt(*hash).await.unwrap().expect("mined");
        assert!(receipt.status(), "the very transactions that were stored, each once");
    }
    let report = stack.settler.reconcile_once(Duration::from_secs(2)).await;
    assert_eq!(report.confirmed, 3, "{report:?}");
    let rows = stack
        .rows_when(&requests, 5, |r| r.state == SettlementState::Confirmed)
        .await;
    assert_eq!(rows.iter().map(|r| r.tx_hash.unwrap()).collect::<Vec<_>>(), hashes);
    let total: U256 = requests.iter().map(amount_of).sum();
    assert_eq!(stack.usdc_balance(stack.seller).await, seller0 + total);
}

#[tokio::test]
async fn a_batch_whose_nonce_was_taken_is_resigned_once_for_all_its_payments() {
    let stack = Arc::new(
        Stack::start_with(Options {
            toml: "[batch]\nenabled = true\nmax_wait_ms = 5000\nmax_items = 3\n\
                   [settlement]\nreceipt_timeout_ms = 200\nreconcile_interval_ms = 3600000\n\
                   nonce_resync_after_ms = 3600000\n"
                .into(),
            ..Default::default()
        })
        .await,
    );
    let admin = stack.devnet.admin_provider().clone();
    let seller0 = stack.usdc_balance(stack.seller).await;
    admin.anvil_set_auto_mine(false).await.unwrap();
    let mut requests = Vec::new();
    for (i, buyer) in [3usize, 4, 5].into_iter().enumerate() {
        let buyer = stack.devnet.signer(buyer).unwrap().clone();
        requests.push(stack.payment_from(&buyer, 1_000 * (i as u64 + 1)).await);
    }
    let tasks: Vec<_> = requests
        .iter()
        .map(|request| {
            let (stack, request) = (stack.clone(), request.clone());
            tokio::spawn(async move { stack.settler.settle(&request, now()).await })
        })
        .collect();
    let mut batch_tx = Vec::new();
    for task in tasks {
        let answer = task.await.unwrap();
        assert_eq!(
            answer.error_reason.as_deref(),
            Some(reason::SETTLEMENT_PENDING),
            "{answer:?}"
        );
        batch_tx.push(answer.transaction);
    }
    batch_tx.dedup();
    assert_eq!(batch_tx.len(), 1, "one batch transaction");
    let old: B256 = batch_tx[0].parse().unwrap();
    let rows = stack.rows_when(&requests, 5, |r| r.tx_hash == Some(old)).await;
    let taken = rows[0].signer_nonce.unwrap();

    // The node drops the batch, and another transaction from the same key takes its nonce.
    assert_eq!(admin.anvil_drop_transaction(old).await.unwrap(), Some(old));
    let key = stack.settlement_key();
    let wallet = EthereumWallet::from(key.clone());
    let fees = admin.estimate_eip1559_fees().await.unwrap();
    let other = TransactionRequest::default()
        .with_from(key.address())
        .with_to(key.address())
        .with_value(U256::ZERO)
        .with_nonce(taken)
        .with_gas_limit(21_000)
        .with_chain_id(stack.devnet.state().chain_id)
        .with_max_fee_per_gas(fees.max_fee_per_gas)
        .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas)
        .build(&wallet)
        .await
        .unwrap();
    let other_hash = *admin.send_tx_envelope(other).await.unwrap().tx_hash();
    admin.evm_mine(None).await.unwrap();
    assert!(admin.get_transaction_receipt(other_hash).await.unwrap().is_some());
    admin.anvil_set_auto_mine(true).await.unwrap();
    let (before, _) = stack.signer_nonces().await;
    assert_eq!(before, taken + 1);

    // Two passes: the first re-signs (once, for all three rows) and does not wait; the second confirms.
    let first = stack.settler.reconcile_once(Duration::ZERO).await;
    let second = stack.settler.reconcile_once(Duration::from_secs(5)).await;
    assert_eq!(first.confirmed + second.confirmed, 3, "{first:?} {second:?}");
    let rows = stack
        .rows_when(&requests, 5, |r| r.state == SettlementState::Confirmed)
        .await;
    let new = rows[0].tx_hash.unwrap();
    assert_ne!(new, old);
    assert!(
        rows.iter().all(|r| r.tx_hash == Some(new)),
        "one new transaction for the three: {rows:#?}"
    );
    assert_eq!(rows[0].signer_nonce, Some(taken + 1));
    assert_eq!(
        stack.signer_nonces().await,
        (before + 1, before + 1),
        "exactly one new transaction"
    );
    let total: U256 = requests.iter().map(amount_of).sum();
    assert_eq!(
        stack.usdc_balance(stack.seller).await,
        seller0 + total,
        "each payment once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_settlements_take_consecutive_nonces_and_each_mines_once() {
    // Submissions that queue at the nonce owner are signed and stored together; whatever the grouping, every
    // payment gets its own nonce, no nonce is skipped or used twice, and each transfer happens once.
    let stack = Arc::new(Stack::start().await);
    let seller0 = stack.usdc_balance(stack.seller).await;
    let (start, _) = stack.signer_nonces().await;
    let mut requests = Vec::new();
    for i in 0..40u64 {
        requests.push(stack.payment(1_000 + i).await);
    }
    let tasks: Vec<_> = requests
        .iter()
        .map(|request| {
            let (stack, request) = (stack.clone(), request.clone());
            tokio::spawn(async move { stack.settler.settle(&request, now()).await })
        })
        .collect();
    let mut hashes = std::collections::HashSet::new();
    for task in tasks {
        let answer = task.await.unwrap();
        assert!(answer.success, "{answer:?}");
        assert!(hashes.insert(answer.transaction.clone()), "one transaction each");
    }
    let rows = stack
        .rows_when(&requests, 5, |r| r.state == SettlementState::Confirmed)
        .await;
    let mut nonces: Vec<u64> = rows.iter().map(|r| r.signer_nonce.unwrap()).collect();
    nonces.sort_unstable();
    assert_eq!(nonces, (start..start + 40).collect::<Vec<_>>());
    assert_eq!(stack.signer_nonces().await, (start + 40, start + 40));
    let total: U256 = requests.iter().map(amount_of).sum();
    assert_eq!(stack.usdc_balance(stack.seller).await, seller0 + total);
}
