//! The chain-state mirror against a real devnet (behind a node that records every method called): a verify
//! whose entries are fresh sends no chain call, and the settle after it reuses it; a payer that spends its
//! balance elsewhere, a nonce used by another facilitator, a blacklisting and a pause are each seen by verify
//! once the mirror has followed the block that made them; a node that goes back or skips blocks is resynced.

mod common;

use std::time::{Duration, Instant};

use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use common::fake_node::FakeNode;
use common::stack::{Options, Stack, amount_of};
use contracts::bindings::USDC;
use facilitator::chain::mirror::MirrorStatus;
use protocol::network::ARC_USDC;
use protocol::{VerifyRequest, reason};

/// Sends a contract call and waits until it is mined.
macro_rules! mined {
    ($call:expr) => {
        $call.send().await.unwrap().get_receipt().await.unwrap()
    };
}

const MIRROR: &str = "[mirror]\nenabled = true\npoll_interval_ms = 50\nmax_gap_blocks = 5\n";

async fn start() -> (Stack, FakeNode) {
    let devnet = contracts::Devnet::start(contracts::DevnetConfig::default())
        .await
        .unwrap();
    let node = FakeNode::start(devnet.rpc_url()).await;
    let stack = Stack::start_with(Options {
        toml: MIRROR.into(),
        devnet: Some(devnet),
        rpc_url: Some(node.base.clone()),
        ..Options::default()
    })
    .await;
    (stack, node)
}

fn status(stack: &Stack) -> Option<MirrorStatus> {
    let network = &stack.devnet.state().network;
    stack.settler.verifier().chain(network)?.mirror()?.status(ARC_USDC)
}

/// Waits (up to 10 s, polling) until the mirror's status satisfies `done`.
async fn mirror_when(stack: &Stack, what: &str, done: impl Fn(&MirrorStatus) -> bool) -> MirrorStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = status(stack)
            && done(&s)
        {
            return s;
        }
        assert!(Instant::now() < deadline, "mirror never {what}: {:?}", status(stack));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the mirror has followed the chain to its current head.
async fn mirror_caught_up(stack: &Stack) {
    let head = stack.devnet.admin_provider().get_block_number().await.unwrap();
    mirror_when(stack, "caught up", |s| s.head >= Some(head)).await;
}

/// A verify that loads the buyer and seller, then waits until both are in the mirror.
async fn warm(stack: &Stack) {
    let probe = stack.payment(1).await;
    assert_eq!(stack.verify_reason(&probe).await, "valid");
    mirror_when(stack, "loaded buyer and seller", |s| s.accounts >= 2).await;
}

async fn metrics(stack: &Stack) -> String {
    let response = stack.http.get(format!("{}/metrics", stack.url)).send().await.unwrap();
    response.text().await.unwrap()
}

/// The value of `facilitator_verify_source_total{source=…}`.
async fn verifies_from(stack: &Stack, source: &str) -> u64 {
    let text = metrics(stack).await;
    let prefix = format!("facilitator_verify_source_total{{source=\"{source}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0)
}

fn chain_reads(node: &FakeNode) -> usize {
    node.methods()
        .iter()
        .filter(|m| {
            matches!(
                m.as_str(),
                "eth_call" | "eth_getCode" | "eth_estimateGas" | "eth_getBalance"
            )
        })
        .count()
}

#[tokio::test]
async fn a_fresh_mirror_answers_verify_without_a_chain_call_and_settle_reuses_it() {
    let (stack, node) = start().await;
    warm(&stack).await;
    let payment = stack.payment(25_000).await;
    let (reads, from_mirror) = (chain_reads(&node), verifies_from(&stack, "mirror").await);
    assert_eq!(stack.verify_reason(&payment).await, "valid");
    assert_eq!(chain_reads(&node), reads, "a fresh verify reads nothing from the chain");
    assert_eq!(verifies_from(&stack, "mirror").await, from_mirror + 1);

    let seller_before = stack.usdc_balance(stack.seller).await;
    let (status, body) = stack.post("/settle", &payment).await;
    assert_eq!(status, 200);
    assert_eq!(body["success"], true, "{body}");
    assert_eq!(verifies_from(&stack, "reused").await, 1, "the settle reused the verify");
    assert_eq!(
        stack.usdc_balance(stack.seller).await,
        seller_before + amount_of(&payment)
    );
    // The same payload again is the same settlement, and a /verify of it now sees the nonce used.
    let (_, again) = stack.post("/settle", &payment).await;
    assert_eq!(again["transaction"], body["transaction"]);
    mirror_caught_up(&stack).await;
    assert_eq!(
        stack.verify_reason(&payment).await,
        reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED
    );
    let metrics = metrics(&stack).await;
    assert!(metrics.contains("facilitator_mirror_events_total{"), "{metrics}");
}

#[tokio::test]
async fn a_spent_balance_a_used_nonce_a_blacklisting_and_a_pause_are_seen_within_a_block() {
    let (stack, _node) = start().await;
    warm(&stack).await;
    let admin = USDC::new(ARC_USDC, stack.devnet.admin_provider().clone());
    let as_buyer = USDC::new(ARC_USDC, stack.devnet.provider_for(1).unwrap());
    let elsewhere = stack.devnet.signer(5).unwrap().address();
    let pending = stack.payment(10_000).await;
    assert_eq!(stack.verify_reason(&pending).await, "valid");

    // The payer spends everything elsewhere.
    let from_mirror = verifies_from(&stack, "mirror").await;
    let all = stack.usdc_balance(stack.buyer.address()).await;
    mined!(as_buyer.transfer(elsewhere, all));
    mirror_caught_up(&stack).await;
    assert_eq!(
        stack.verify_reason(&pending).await,
        reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE
    );
    let as_elsewhere = USDC::new(ARC_USDC, stack.devnet.provider_for(5).unwrap());
    mined!(as_elsewhere.transfer(stack.buyer.address(), all));
    mirror_caught_up(&stack).await;
    assert_eq!(stack.verify_reason(&pending).await, "valid");

    // Another facilitator settles the payment on its own.
    let other = stack.devnet.provider_for(3).unwrap();
    submit_directly(&other, &pending).await;
    mirror_caught_up(&stack).await;
    assert_eq!(
        stack.verify_reason(&pending).await,
        reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED
    );

    // The seller is blacklisted, then cleared; the token is paused, then resumed.
    let fresh = stack.payment(10_000).await;
    mined!(admin.blacklist(stack.seller));
    mirror_caught_up(&stack).await;
    assert_eq!(
        stack.verify_reason(&fresh).await,
        reason::INVALID_EXACT_EVM_ADDRESS_BLACKLISTED
    );
    mined!(admin.unBlacklist(stack.seller));
    mined!(admin.pause());
    mirror_caught_up(&stack).await;
    assert_eq!(
        stack.verify_reason(&fresh).await,
        reason::INVALID_EXACT_EVM_TOKEN_PAUSED
    );
    mined!(admin.unpause());
    mirror_caught_up(&stack).await;
    assert_eq!(stack.verify_reason(&fresh).await, "valid");
    // Every one of those answers came from the mirror, none from a chain read.
    assert_eq!(verifies_from(&stack, "mirror").await, from_mirror + 6);
}

/// Settles `request` on chain from `provider`'s account, as a second facilitator would.
async fn submit_directly(provider: &alloy::providers::DynProvider, request: &VerifyRequest) {
    let VerifyRequest::V2(r) = request else {
        unreachable!("v2")
    };
    let exact = r.payment_payload.payload.exact_evm().unwrap();
    let a = &exact.authorization;
    let token = contracts::bindings::IEip3009::new(ARC_USDC, provider.clone());
    let receipt = mined!(token.transferWithAuthorization(
        a.from,
        a.to,
        a.value,
        a.valid_after,
        a.valid_before,
        a.nonce,
        exact.signature.clone(),
    ));
    assert!(receipt.status());
}

#[tokio::test]
async fn a_node_that_goes_back_or_skips_blocks_is_resynced() {
    let (stack, _node) = start().await;
    warm(&stack).await;
    let anvil = stack.devnet.admin_provider();
    let before = status(&stack).unwrap().generation;
    let payment = stack.payment(10_000).await;

    // The payer empties its balance; the node then goes back to before that (a restart from a snapshot).
    let snapshot = anvil.anvil_snapshot().await.unwrap();
    let as_buyer = USDC::new(ARC_USDC, stack.devnet.provider_for(1).unwrap());
    let all = stack.usdc_balance(stack.buyer.address()).await;
    let elsewhere = stack.devnet.signer(5).unwrap().address();
    mined!(as_buyer.transfer(elsewhere, all));
    mirror_caught_up(&stack).await;
    assert_eq!(
        stack.verify_reason(&payment).await,
        reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE
    );
    assert!(anvil.anvil_revert(snapshot).await.unwrap());
    let after_revert = mirror_when(&stack, "resynced after the node went back", |s| s.generation > before).await;
    assert_eq!(stack.usdc_balance(stack.buyer.address()).await, all);
    assert_eq!(
        stack.verify_reason(&payment).await,
        "valid",
        "the restored balance is seen"
    );

    // More blocks than max_gap_blocks pass between two polls: resync rather than guess.
    warm(&stack).await;
    anvil.anvil_mine(Some(10), None).await.unwrap();
    mirror_when(&stack, "resynced after a gap", |s| {
        s.generation > after_revert.generation
    })
    .await;
    mirror_caught_up(&stack).await;
    assert_eq!(stack.verify_reason(&payment).await, "valid");
}
