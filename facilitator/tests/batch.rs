//! Batch mode: 100 payments, one of them invalid on chain, settle in a few Multicall3 transactions; each
//! payment gets its own outcome, balances move exactly by the valid ones, and the ledger agrees.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use alloy::primitives::U256;
use alloy::providers::ext::AnvilApi;
use alloy::signers::local::PrivateKeySigner;
use common::stack::{Options, Stack};
use protocol::VerifyRequest;

#[tokio::test]
async fn a_hundred_payments_settle_in_few_transactions_with_their_own_outcomes() {
    let stack = Arc::new(
        Stack::start_with(Options {
            toml: "[batch]\nenabled = true\nmax_wait_ms = 50\nmax_items = 100\n".into(),
            database_url: None,
            ..Default::default()
        })
        .await,
    );
    let seller0 = stack.usdc_balance(stack.seller).await;
    let mut requests = Vec::new();
    for i in 0..100u64 {
        let buyer = PrivateKeySigner::random();
        stack.devnet.mint(buyer.address(), U256::from(5_000u64)).await.unwrap();
        let mut request = stack.payment_from(&buyer, 1_000 + i).await;
        if i == 42 {
            // The invalid one: signed by someone other than the payer.
            let VerifyRequest::V2(r) = &mut request else {
                unreachable!()
            };
            let mut exact = r.payment_payload.payload.exact_evm().unwrap().clone();
            let domain = protocol::eip3009::domain_for(&r.payment_requirements).unwrap();
            exact.signature = protocol::eip3009::sign(&PrivateKeySigner::random(), &exact.authorization, &domain)
                .await
                .unwrap();
            r.payment_payload.payload = exact.into();
        }
        requests.push(request);
    }
    let tasks: Vec<_> = requests
        .iter()
        .map(|request| {
            let (stack, request) = (stack.clone(), request.clone());
            tokio::spawn(async move { stack.post("/settle", &request).await })
        })
        .collect();
    let mut transactions = HashSet::new();
    let mut expected = U256::ZERO;
    for (i, (task, request)) in tasks.into_iter().zip(&requests).enumerate() {
        let (status, answer) = task.await.unwrap();
        assert_eq!(status, 200);
        if i == 42 {
            assert_eq!(answer["success"], false, "{answer}");
            assert_eq!(
                answer["errorReason"],
                protocol::reason::INVALID_EXACT_EVM_SIGNATURE,
                "{answer}"
            );
            continue;
        }
        assert_eq!(answer["success"], true, "{answer}");
        transactions.insert(answer["transaction"].as_str().unwrap().to_owned());
        let VerifyRequest::V2(r) = request else { unreachable!() };
        expected += r.payment_requirements.amount;
    }
    assert!(
        transactions.len() <= 10,
        "99 payments went out in {} transactions",
        transactions.len()
    );
    assert_eq!(
        stack.usdc_balance(stack.seller).await,
        seller0 + expected,
        "the 99 valid payments, each once"
    );
}

#[tokio::test]
async fn a_payment_that_fails_inside_a_batch_gets_its_own_failure() {
    // Drive the engine directly so a payment whose funds vanish between verify and the batch can be placed in
    // the same batch as good ones. No clock decides the order: the batch holds exactly two payments (its window
    // is a minute, so it leaves when the second joins), the chain mines only when told, and the drain is
    // ordered ahead of the batch in the same block by its fee.
    use alloy::network::TransactionBuilder;
    use alloy::providers::Provider;
    let stack = Stack::start_with(Options {
        toml: "[batch]\nenabled = true\nmax_wait_ms = 60000\nmax_items = 2\n".into(),
        database_url: None,
        ..Default::default()
    })
    .await;
    let admin = stack.devnet.admin_provider().clone();
    let seller0 = stack.usdc_balance(stack.seller).await;
    let good = stack.payment(10_000).await;
    let poor = PrivateKeySigner::random();
    stack.devnet.mint(poor.address(), U256::from(10_000u64)).await.unwrap();
    let bad = stack.payment_from(&poor, 10_000).await;
    admin
        .anvil_set_balance(poor.address(), U256::from(10u64).pow(U256::from(18u64)))
        .await
        .unwrap();
    let (start, _) = stack.signer_nonces().await;
    admin.anvil_set_auto_mine(false).await.unwrap();

    let settler = stack.settler.clone();
    let (good_task, bad_task) = {
        let (s1, s2) = (settler.clone(), settler.clone());
        let (g, b) = (good.clone(), bad.clone());
        (
            tokio::spawn(async move { s1.settle(&g, common::stack::now()).await }),
            tokio::spawn(async move { s2.settle(&b, common::stack::now()).await }),
        )
    };
    // Both were verified (the poor buyer still funded) and the batch is in the node's pool, unmined.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while stack.signer_nonces().await != (start, start + 1) {
        assert!(std::time::Instant::now() < deadline, "the batch never reached the node");
        tokio::task::yield_now().await;
    }
    // Now the poor buyer's funds leave by an ordinary transfer that pays more for its place in the block.
    let poor_provider = {
        let url = stack.devnet.rpc_url().parse().unwrap();
        alloy::providers::ProviderBuilder::new()
            .wallet(alloy::network::EthereumWallet::from(poor.clone()))
            .connect_http(url)
    };
    let token = contracts::bindings::USDC::new(protocol::network::ARC_USDC, poor_provider.clone());
    let drain = token
        .transfer(stack.devnet.signer(7).unwrap().address(), U256::from(10_000u64))
        .into_transaction_request()
        // No estimate: the node would estimate against its pending block, where the batch already took the funds.
        .with_gas_limit(100_000)
        .with_max_fee_per_gas(1_000_000_000_000)
        .with_max_priority_fee_per_gas(500_000_000_000);
    let drain = poor_provider.send_transaction(drain).await.unwrap();
    admin.evm_mine(None).await.unwrap();
    admin.anvil_set_auto_mine(true).await.unwrap();
    let drained = drain.get_receipt().await.unwrap();
    assert!(drained.status(), "the drain went through");

    let (good_answer, bad_answer) = (good_task.await.unwrap(), bad_task.await.unwrap());
    assert_eq!(
        drained.block_number,
        admin
            .get_transaction_receipt(good_answer.transaction.parse().unwrap())
            .await
            .unwrap()
            .unwrap()
            .block_number,
        "the drain and the batch were mined in one block, the drain first"
    );
    assert!(good_answer.success, "{good_answer:?}");
    assert!(!bad_answer.success, "{bad_answer:?}");
    // Its call failed inside the batch; the chain says why: the payer's balance had gone.
    assert_eq!(
        bad_answer.error_reason.as_deref(),
        Some(protocol::reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE),
        "{bad_answer:?}"
    );
    assert_eq!(
        bad_answer.transaction, good_answer.transaction,
        "one batch transaction, two outcomes"
    );
    assert_eq!(stack.usdc_balance(stack.seller).await, seller0 + U256::from(10_000u64));
    let nonce = match &bad {
        VerifyRequest::V2(r) => r.payment_payload.payload.exact_evm().unwrap().authorization.nonce,
        _ => unreachable!(),
    };
    let rows = stack
        .settler
        .verifier()
        .ledger()
        .find(poor.address(), nonce)
        .await
        .unwrap();
    assert_eq!(rows[0].state, facilitator::ledger::SettlementState::Failed);
    assert_eq!(
        (rows[0].error_reason.as_deref(), rows[0].retryable),
        (Some(protocol::reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE), false),
        "the payer's own failure is final"
    );
}
