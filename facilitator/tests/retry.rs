//! Transient failures are not final: a payment the node refused because the settlement signer had no gas is
//! settled by a later settle of the same payload, once. Permanent failures stay: a payment whose payer no
//! longer had the funds when it ran stays failed with that reason, even after the payer is funded again.

mod common;

use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::U256;
use alloy::providers::ext::AnvilApi;
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use common::stack::{Options, Stack};
use facilitator::ledger::SettlementState;
use protocol::reason;

#[tokio::test]
async fn a_payment_refused_for_want_of_gas_is_settled_by_a_later_call() {
    let stack = Stack::start().await;
    let admin = stack.devnet.admin_provider().clone();
    let seller0 = stack.usdc_balance(stack.seller).await;
    let gas = admin.get_balance(stack.settlement).await.unwrap();
    let (n, _) = stack.signer_nonces().await;

    // The signer is out of gas: the node (anvil itself) refuses the settlement.
    admin.anvil_set_balance(stack.settlement, U256::ZERO).await.unwrap();
    let request = stack.payment(10_000).await;
    let (_, answer) = stack.post("/settle", &request).await;
    assert_eq!(answer["success"], false, "{answer}");
    assert_eq!(answer["errorReason"], reason::UNEXPECTED_SETTLE_ERROR, "{answer}");
    assert!(
        answer["errorMessage"]
            .as_str()
            .unwrap()
            .contains("insufficient_funds_for_gas"),
        "{answer}"
    );
    let row = stack.row(&request).await.unwrap();
    assert_eq!((row.state, row.retryable), (SettlementState::Failed, true));
    assert_eq!(stack.signer_nonces().await, (n, n), "nothing sent, the nonce free");
    assert_eq!(stack.usdc_balance(stack.seller).await, seller0);

    // Gas again: the same payload, still unused on chain and inside its window, settles.
    admin.anvil_set_balance(stack.settlement, gas).await.unwrap();
    let (_, answer) = stack.post("/settle", &request).await;
    assert_eq!(answer["success"], true, "{answer}");
    let row = stack.row(&request).await.unwrap();
    assert_eq!(
        (row.state, row.retryable, row.signer_nonce),
        (SettlementState::Confirmed, false, Some(n))
    );
    let (_, again) = stack.post("/settle", &request).await;
    assert_eq!(
        again["transaction"], answer["transaction"],
        "a resend gets the same settlement"
    );
    assert_eq!(stack.usdc_balance(stack.seller).await, seller0 + U256::from(10_000u64));
    assert_eq!(stack.signer_nonces().await, (n + 1, n + 1));
}

#[tokio::test]
async fn a_payer_short_of_funds_stays_failed_with_that_reason() {
    let stack = Stack::start_with(Options {
        toml: "[settlement]\nreceipt_timeout_ms = 200\nreconcile_interval_ms = 3600000\n".into(),
        ..Default::default()
    })
    .await;
    let admin = stack.devnet.admin_provider().clone();
    let seller0 = stack.usdc_balance(stack.seller).await;
    let poor = PrivateKeySigner::random();
    stack.devnet.mint(poor.address(), U256::from(10_000u64)).await.unwrap();
    admin
        .anvil_set_balance(poor.address(), U256::from(10u64).pow(U256::from(18u64)))
        .await
        .unwrap();
    let request = stack.payment_from(&poor, 10_000).await;

    // The settlement waits in the pool; the payer's own transfer (paying a far higher tip) goes first.
    admin.anvil_set_auto_mine(false).await.unwrap();
    let (_, answer) = stack.post("/settle", &request).await;
    assert_eq!(answer["errorReason"], reason::SETTLEMENT_PENDING, "{answer}");
    let settlement_tx = answer["transaction"].as_str().unwrap().parse().unwrap();
    let payer = ProviderBuilder::new()
        .wallet(EthereumWallet::from(poor.clone()))
        .connect_http(stack.devnet.rpc_url().parse().unwrap());
    let token = contracts::bindings::USDC::new(protocol::network::ARC_USDC, payer);
    let away = token
        .transfer(stack.devnet.signer(7).unwrap().address(), U256::from(10_000u64))
        .gas(100_000)
        .max_priority_fee_per_gas(50_000_000_000)
        .max_fee_per_gas(100_000_000_000)
        .send()
        .await
        .unwrap();
    admin.evm_mine(None).await.unwrap();
    admin.anvil_set_auto_mine(true).await.unwrap();
    away.get_receipt().await.unwrap();
    let receipt = admin
        .get_transaction_receipt(settlement_tx)
        .await
        .unwrap()
        .expect("mined");
    assert!(!receipt.status(), "the settlement reverted");

    let report = stack.settler.reconcile_once(Duration::from_secs(1)).await;
    assert_eq!(report.failed, 1, "{report:?}");
    let row = stack.row(&request).await.unwrap();
    assert_eq!(
        (row.state, row.error_reason.as_deref(), row.retryable),
        (
            SettlementState::Failed,
            Some(reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE),
            false
        )
    );

    // Funded again, the same payload verifies — but its failure was its own: it stays failed, nothing is sent.
    stack.devnet.mint(poor.address(), U256::from(10_000u64)).await.unwrap();
    let (n, _) = stack.signer_nonces().await;
    let (_, answer) = stack.post("/settle", &request).await;
    assert_eq!(answer["success"], false, "{answer}");
    assert_eq!(
        answer["errorReason"],
        reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE,
        "{answer}"
    );
    assert_eq!(stack.signer_nonces().await, (n, n));
    assert_eq!(stack.usdc_balance(stack.seller).await, seller0);
    assert_eq!(stack.usdc_balance(poor.address()).await, U256::from(10_000u64));
}
