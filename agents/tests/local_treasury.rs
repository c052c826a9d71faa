//! Local treasury custody against the spend ledger: the policy's history is read in the transaction that
//! reserves the spend, so concurrent reservations from two ledger handles (two pools, as two processes)
//! never exceed the daily cap, on SQLite and on PostgreSQL; a payment above the approval amount becomes a
//! proposal, and only an approved proposal for that same payment lets it through, once.

use std::sync::Arc;

use agents::buyer::spend_ledger::{Budgets, NewSpend, SpendKind, SpendLedger, unix_now};
use agents::buyer::x402_client::PayError;
use agents::treasury::ledger_policy::TreasuryGuard;
use agents::treasury::proposals::ProposalKind;
use agents::treasury::rules_config::TreasuryRules;
use alloy::primitives::{Address, B256};
use tokio::sync::Barrier;

const RESERVES: usize = 24;
/// $1 a payment.
const PRICE: i64 = 1_000_000;

fn spend<'a>(payer: Address, pay_to: Address, amount: i64, url: &'a str) -> NewSpend<'a> {
    NewSpend {
        kind: SpendKind::X402,
        url,
        host: "seller.example",
        network: "eip155:5042002",
        asset: protocol::network::ARC_USDC,
        pay_to,
        payer,
        nonce: B256::random(),
        amount,
        valid_before: Some(unix_now() + 60),
        tx_hash: None,
        chain_nonce: None,
    }
}

fn rules(text: &str) -> agents::treasury::policy_engine::PolicyRules {
    toml::from_str::<TreasuryRules>(text).unwrap().validate().unwrap()
}

/// 24 reservations of $1 released at once against a $5 daily cap, from two ledger handles: exactly five
/// are recorded, and the ledger rows say so.
async fn concurrent_reserves_hold_the_daily_cap(url: &str) {
    let ledgers = [
        SpendLedger::open(url).await.unwrap(),
        SpendLedger::open(url).await.unwrap(),
    ];
    let rules = rules("daily_cap = \"$5\"");
    let guards = [
        TreasuryGuard::new(rules.clone(), ledgers[0].clone()),
        TreasuryGuard::new(rules, ledgers[1].clone()),
    ];
    for round in 0..3 {
        let payer = Address::random();
        let barrier = Arc::new(Barrier::new(RESERVES));
        let now = unix_now();
        let tasks: Vec<_> = (0..RESERVES)
            .map(|i| {
                let (guard, barrier) = (guards[i % 2].clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let s = spend(payer, Address::repeat_byte(0x42), PRICE, "http://seller.example/paid");
                    guard
                        .reserve(&s, Budgets::default(), now, None, ProposalKind::X402, "")
                        .await
                })
            })
            .collect();
        let mut recorded = 0;
        let mut refused = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => recorded += 1,
                Err(PayError::PolicyDenied { rule, .. }) => {
                    assert_eq!(rule, "daily_cap");
                    refused += 1;
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((recorded, refused), (5, RESERVES - 5), "round {round}");
        let rows = ledgers[1].recent(10_000).await.unwrap();
        let rows = rows.iter().filter(|r| r.payer == payer.to_checksum(None)).count();
        assert_eq!(rows, 5, "refused reservations leave no row (round {round})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_concurrent_reserves_never_exceed_the_daily_cap() {
    let dir = std::env::temp_dir().join(format!("nerdcabal-treasury-race-{}", B256::random()));
    std::fs::create_dir_all(&dir).unwrap();
    concurrent_reserves_hold_the_daily_cap(&format!("sqlite://{}", dir.join("spend.db").display())).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[path = "../../tests/support/postgres.rs"]
mod postgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_reserves_never_exceed_the_daily_cap() {
    let (db, url) = postgres::create_database("treasury_race").await;
    let outcome = tokio::spawn(async move { concurrent_reserves_hold_the_daily_cap(&url).await }).await;
    postgres::drop_database(&db).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
}

#[tokio::test]
async fn a_payment_above_the_approval_amount_waits_and_only_its_approved_proposal_lets_it_through_once() {
    let ledger = SpendLedger::open("sqlite::memory:").await.unwrap();
    let owners = "owners = [\"0x1111111111111111111111111111111111111111\", \
                  \"0x2222222222222222222222222222222222222222\"]\nthreshold = 2";
    let guard = TreasuryGuard::new(rules(&format!("approval_above = \"$5\"\n{owners}")), ledger.clone());
    let (payer, payee) = (Address::random(), Address::repeat_byte(0x42));
    let url = "http://seller.example/dear";
    let now = unix_now();
    let reserve = |amount: i64, url: &'static str, proposal: Option<u64>| {
        let guard = guard.clone();
        async move {
            guard
                .reserve(
                    &spend(payer, payee, amount, url),
                    Budgets::default(),
                    now,
                    proposal,
                    ProposalKind::X402,
                    "",
                )
                .await
        }
    };
    reserve(5 * PRICE, url, None)
        .await
        .expect("at the approval amount it pays");
    let Err(PayError::NeedsApproval {
        proposal_id,
        rule,
        approvals,
        required,
    }) = reserve(6 * PRICE, url, None).await
    else {
        panic!("above the approval amount it waits");
    };
    assert_eq!((rule.as_str(), approvals, required), ("needs_approval", 0, 2));
    let row = guard.proposals().get(proposal_id, now).await.unwrap().unwrap();
    assert_eq!(
        (row.state.as_str(), row.url.as_deref(), row.amount),
        ("pending_approval", Some(url), 6 * PRICE)
    );
    // Pending: not usable yet.
    assert!(matches!(
        reserve(6 * PRICE, url, Some(proposal_id)).await,
        Err(PayError::ApprovalDenied(_))
    ));
    assert!(
        guard
            .proposals()
            .transition(proposal_id, "pending_approval", "approved", None, None, now)
            .await
            .unwrap()
    );
    // Approved, but for this URL and no more money.
    assert!(matches!(
        reserve(6 * PRICE, "http://seller.example/other", Some(proposal_id)).await,
        Err(PayError::ApprovalDenied(_))
    ));
    assert!(matches!(
        reserve(7 * PRICE, url, Some(proposal_id)).await,
        Err(PayError::ApprovalDenied(_))
    ));
    let mut transfer = spend(payer, payee, 6 * PRICE, url);
    transfer.kind = SpendKind::Transfer;
    let other_kind = guard
        .reserve(
            &transfer,
            Budgets::default(),
            now,
            Some(proposal_id),
            ProposalKind::Transfer,
            "",
        )
        .await;
    assert!(
        matches!(other_kind, Err(PayError::ApprovalDenied(_))),
        "an x402 proposal pays no transfer"
    );
    let payment = reserve(6 * PRICE, url, Some(proposal_id))
        .await
        .expect("the approved payment");
    let row = guard.proposals().get(proposal_id, now).await.unwrap().unwrap();
    assert_eq!(
        (row.state.as_str(), row.payment_id.as_deref()),
        ("executed", Some(payment.as_str()))
    );
    assert!(
        matches!(
            reserve(6 * PRICE, url, Some(proposal_id)).await,
            Err(PayError::ApprovalDenied(_))
        ),
        "used once"
    );
    let rows = ledger.recent(100).await.unwrap();
    assert_eq!(rows.len(), 2, "the $5 payment and the approved $6 one");
}

#[tokio::test]
async fn without_owners_a_payment_that_needs_approval_is_refused() {
    let ledger = SpendLedger::open("sqlite::memory:").await.unwrap();
    let guard = TreasuryGuard::new(rules("approval_above = \"$5\""), ledger.clone());
    let s = spend(Address::random(), Address::repeat_byte(1), 6 * PRICE, "http://h/x");
    let result = guard
        .reserve(&s, Budgets::default(), unix_now(), None, ProposalKind::X402, "")
        .await;
    assert!(
        matches!(result, Err(PayError::PolicyDenied { ref rule, .. }) if rule == "needs_approval"),
        "{result:?}"
    );
    let refused = result.unwrap_err();
    assert_eq!(refused.kind(), "policy_denied");
    assert_eq!(refused.to_json()["rule"], "needs_approval");
    assert_eq!(agents::buyer::pay_command::exit_code(&refused), 3);
    assert!(ledger.recent(10).await.unwrap().is_empty());
    assert_eq!(guard.proposals().count().await.unwrap(), 0);
}

// ---- the scenario in local mode, against a real devnet ----

use agents::buyer::buyer_config::{BuyerConfig, BuyerConfigError, BuyerFlags};
use agents::buyer::direct_transfer;
use agents::buyer::spending_policy::SpendingPolicy;
use agents::treasury::custody::{Custody, CustodyError, PaymentProposal, ProposalState};
use agents::treasury::local_custody::{LocalCustody, LocalCustodyParts};
use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;
use contracts::{Devnet, DevnetConfig};

fn dollars(n: u64) -> U256 {
    U256::from(n * 1_000_000)
}

fn scenario_rules(owners: &[&PrivateKeySigner]) -> String {
    let owners: Vec<String> = owners.iter().map(|o| format!("\"{}\"", o.address())).collect();
    format!(
        "daily_cap = \"$20\"\napproval_above = \"$5\"\nowners = [{}]\nthreshold = 2",
        owners.join(", ")
    )
}

#[tokio::test]
async fn two_of_three_owners_approve_a_payment_above_the_threshold_and_the_daily_cap_refuses_the_next() {
    let devnet = Devnet::start(DevnetConfig::default()).await.unwrap();
    let state = devnet.state().clone();
    let agent = devnet.signer(1).unwrap().clone();
    let payee = Address::random();
    let owners = [
        PrivateKeySigner::random(),
        PrivateKeySigner::random(),
        PrivateKeySigner::random(),
    ];
    let outsider = PrivateKeySigner::random();
    let dir = std::env::temp_dir().join(format!("nerdcabal-local-treasury-{}", B256::random()));
    std::fs::create_dir_all(&dir).unwrap();
    let ledger = SpendLedger::open(&format!("sqlite://{}", dir.join("spend.db").display()))
        .await
        .unwrap();
    let custody = LocalCustody::new(LocalCustodyParts {
        key: agent.clone(),
        rules: rules(&scenario_rules(&[&owners[0], &owners[1], &owners[2]])),
        spending_policy: SpendingPolicy {
            max_per_request: dollars(1_000),
            daily_budget: None,
            assets: vec![state.usdc],
            ..SpendingPolicy::default()
        },
        ledger: ledger.clone(),
        rpc_url: state.rpc_url.clone(),
        network: state.network.clone(),
        usdc: state.usdc,
    })
    .unwrap();
    let balance = |who: Address| {
        let (rpc, usdc) = (state.rpc_url.clone(), state.usdc);
        async move { direct_transfer::balance(&rpc, usdc, who).await.unwrap() }
    };
    let agent_start = balance(agent.address()).await;
    let propose = |amount: u64, memo: &str| PaymentProposal {
        to: payee,
        amount: dollars(amount),
        memo: memo.to_owned(),
    };

    // Below the approval amount: executes at once.
    let small = custody.propose(&propose(4, "coffee")).await.unwrap();
    assert_eq!((small.state, small.required), (ProposalState::Executed, 0), "{small:?}");
    assert!(small.transaction.is_some());
    assert_eq!(balance(payee).await, dollars(4));

    // Above it: waits for 2 of 3.
    let big = custody.propose(&propose(10, "rent")).await.unwrap();
    assert_eq!(
        (big.state, big.approvals, big.required, big.transaction.as_deref()),
        (ProposalState::PendingApproval, 0, 2, None)
    );
    let id = big.proposal_id;
    assert_eq!(balance(payee).await, dollars(4), "nothing moved while it waits");

    // Neither the agent nor an outsider can approve; an owner's approval is not enough alone.
    assert!(matches!(
        custody.approve(id, &agent).await,
        Err(CustodyError::NotAllowed(_))
    ));
    assert!(matches!(
        custody.approve(id, &outsider).await,
        Err(CustodyError::NotAllowed(_))
    ));
    let one = custody.approve(id, &owners[0]).await.unwrap();
    assert_eq!((one.state, one.approvals), (ProposalState::PendingApproval, 1));
    // The same owner twice still counts once; a revoked approval no longer counts.
    assert_eq!(custody.approve(id, &owners[0]).await.unwrap().approvals, 1);
    assert_eq!(custody.revoke(id, &owners[0]).await.unwrap().approvals, 0);
    assert_eq!(custody.approve(id, &owners[0]).await.unwrap().approvals, 1);
    assert_eq!(balance(payee).await, dollars(4));

    // The second owner's approval executes it.
    let done = custody.approve(id, &owners[2]).await.unwrap();
    assert_eq!(
        (done.state, done.approvals, done.required),
        (ProposalState::Executed, 2, 2),
        "{done:?}"
    );
    let mut approvers = done.approvers.clone();
    approvers.sort();
    let mut expected = vec![owners[0].address(), owners[2].address()];
    expected.sort();
    assert_eq!(approvers, expected);
    assert!(done.transaction.is_some());
    assert_eq!(custody.proposal(id).await.unwrap(), done);
    assert!(matches!(
        custody.approve(id, &owners[1]).await,
        Err(CustodyError::WrongState { .. })
    ));
    assert!(
        matches!(custody.execute(id).await, Err(CustodyError::WrongState { .. })),
        "executed once"
    );

    // $14 of $20 spent today: $7 more is refused by the daily cap, and nothing moves.
    let refused = custody.propose(&propose(2 + 5, "more")).await.unwrap_err();
    assert_eq!(refused.reason(), "daily_cap", "{refused}");
    assert!(
        refused.to_string().contains("$7 requested, $14 of $20 spent today"),
        "{refused}"
    );

    // The chain agrees with the ledger.
    assert_eq!(balance(payee).await, dollars(14));
    assert_eq!(balance(agent.address()).await, agent_start - dollars(14));
    let status = custody.status().await.unwrap();
    assert_eq!(
        (
            status.mode,
            status.threshold,
            status.remaining_today.as_deref(),
            status.proposals
        ),
        ("local", 2, Some("6000000"), 2)
    );
    assert_eq!(status.balance, (agent_start - dollars(14)).to_string());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_agent_key_among_the_owners_is_refused_at_config_load() {
    let dir = std::env::temp_dir().join(format!("nerdcabal-treasury-config-{}", B256::random()));
    std::fs::create_dir_all(&dir).unwrap();
    let agent = PrivateKeySigner::random();
    let other = PrivateKeySigner::random();
    let key_file = dir.join("agent.key");
    std::fs::write(&key_file, format!("{}\n", alloy::hex::encode(agent.to_bytes()))).unwrap();
    let write = |owners: &[&PrivateKeySigner]| {
        let path = dir.join("buyer.toml");
        std::fs::write(
            &path,
            format!(
                "[wallet]\nkey_file = \"{}\"\n\n[treasury]\n{}\n",
                key_file.display(),
                scenario_rules(owners)
            ),
        )
        .unwrap();
        BuyerFlags {
            config: Some(path),
            ledger: Some("sqlite::memory:".into()),
            ..BuyerFlags::default()
        }
    };
    let refused = BuyerConfig::resolve(&write(&[&other, &agent]), |_| None).unwrap_err();
    assert!(
        matches!(refused, BuyerConfigError::AgentIsOwner(a) if a == agent.address()),
        "{refused}"
    );
    let third = PrivateKeySigner::random();
    let config = BuyerConfig::resolve(&write(&[&other, &third]), |_| None).unwrap();
    let rules = config.treasury.as_ref().expect("[treasury] is resolved");
    assert_eq!((rules.threshold(), rules.owners().len()), (2, 2));
    // The same refusal holds for custody built from parts.
    let parts = LocalCustodyParts {
        key: agent.clone(),
        rules: rules_with_owner(agent.address()),
        spending_policy: SpendingPolicy::default(),
        ledger: SpendLedger::open("sqlite::memory:").await.unwrap(),
        rpc_url: "http://127.0.0.1:1".into(),
        network: "eip155:5042002".into(),
        usdc: protocol::network::ARC_USDC,
    };
    assert!(matches!(LocalCustody::new(parts), Err(CustodyError::NotAllowed(_))));
    let _ = std::fs::remove_dir_all(&dir);
}

fn rules_with_owner(owner: Address) -> agents::treasury::policy_engine::PolicyRules {
    rules(&format!("owners = [\"{owner}\"]\nthreshold = 1"))
}

// ---- an x402 payment that needs approval: a proposal, two owners, the agent's retry ----

use agents::buyer::x402_client::{CallRequest, NoGate, X402Client};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use protocol::header as codec;
use protocol::wire::{Extra, ResourceInfo, v2};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A seller of one route at $0.001 that settles every payment it gets (a success `PAYMENT-RESPONSE`);
/// returns its URL and how many paid requests it saw.
async fn settling_seller() -> (String, Arc<AtomicUsize>) {
    let paid = Arc::new(AtomicUsize::new(0));
    let seen = paid.clone();
    let offer = v2::PaymentRequirements {
        scheme: "exact".into(),
        network: "eip155:5042002".into(),
        amount: U256::from(1_000u64),
        asset: protocol::network::ARC_USDC,
        pay_to: Address::repeat_byte(0x42),
        max_timeout_seconds: 60,
        extra: Some(Extra::eip712("USDC", "2")),
    };
    let router = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let (offer, seen) = (offer.clone(), seen.clone());
        async move {
            if headers.contains_key(codec::PAYMENT_SIGNATURE) {
                seen.fetch_add(1, Ordering::SeqCst);
                let receipt = codec::encode(&protocol::SettleResponse {
                    success: true,
                    error_reason: None,
                    error_message: None,
                    payer: None,
                    transaction: format!("{:#x}", B256::repeat_byte(0xab)),
                    network: "eip155:5042002".into(),
                    amount: None,
                });
                return ([(codec::PAYMENT_RESPONSE, receipt)], "paid content").into_response();
            }
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
            (
                StatusCode::PAYMENT_REQUIRED,
                [(codec::PAYMENT_REQUIRED, codec::encode(&required))],
            )
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, paid)
}

#[tokio::test]
async fn an_x402_payment_above_the_approval_amount_pays_only_after_two_owners_approve_and_the_agent_retries() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (seller, paid) = settling_seller().await;
    let agent = PrivateKeySigner::random();
    let owners = [PrivateKeySigner::random(), PrivateKeySigner::random()];
    let text = format!(
        "approval_above = \"$0.0005\"\nowners = [\"{}\", \"{}\"]\nthreshold = 2",
        owners[0].address(),
        owners[1].address()
    );
    let ledger = SpendLedger::open("sqlite::memory:").await.unwrap();
    let client = X402Client::new(
        Arc::new(agent.clone()),
        SpendingPolicy::default(),
        ledger.clone(),
        protocol::Networks::builtin(),
        std::time::Duration::from_secs(5),
    )
    .unwrap()
    .with_treasury(TreasuryGuard::new(rules(&text), ledger.clone()));
    let custody = LocalCustody::new(LocalCustodyParts {
        key: agent.clone(),
        rules: rules(&text),
        spending_policy: SpendingPolicy::default(),
        ledger: ledger.clone(),
        rpc_url: "http://127.0.0.1:1".into(),
        network: "eip155:5042002".into(),
        usdc: protocol::network::ARC_USDC,
    })
    .unwrap();
    let request = CallRequest::get(format!("{seller}/report").parse().unwrap());

    let Err(waiting) = client.call(&request).await else {
        panic!("above the approval amount nothing is paid");
    };
    let PayError::NeedsApproval {
        proposal_id,
        ref rule,
        approvals: 0,
        required: 2,
    } = waiting
    else {
        panic!("expected needs_approval, got {waiting:?}");
    };
    assert_eq!(rule, "needs_approval");
    assert_eq!(waiting.to_json()["proposal_id"], proposal_id);
    assert_eq!(agents::buyer::pay_command::exit_code(&waiting), 3);
    assert_eq!(paid.load(Ordering::SeqCst), 0, "signed nothing, sent nothing");
    assert!(ledger.recent(10).await.unwrap().is_empty());

    // Retrying before the owners approve does not pay either.
    let early = client.call_approved(&request, &NoGate, Some(proposal_id)).await;
    assert!(matches!(early, Err(PayError::ApprovalDenied(_))), "{early:?}");

    assert_eq!(custody.approve(proposal_id, &owners[0]).await.unwrap().approvals, 1);
    let approved = custody.approve(proposal_id, &owners[1]).await.unwrap();
    assert_eq!(
        (approved.state, approved.approvals, approved.required),
        (ProposalState::PendingApproval, 2, 2),
        "approved; an x402 proposal waits for the agent's retry"
    );
    assert_eq!(paid.load(Ordering::SeqCst), 0);

    let outcome = client
        .call_approved(&request, &NoGate, Some(proposal_id))
        .await
        .unwrap();
    assert_eq!(outcome.body, b"paid content");
    assert!(outcome.receipt.is_some());
    assert_eq!(paid.load(Ordering::SeqCst), 1);
    let done = custody.proposal(proposal_id).await.unwrap();
    assert_eq!(done.state, ProposalState::Executed);
    assert_eq!(done.transaction, Some(format!("{:#x}", B256::repeat_byte(0xab))));

    // Used once: the same proposal pays nothing more, and a new call asks again.
    let again = client.call_approved(&request, &NoGate, Some(proposal_id)).await;
    assert!(matches!(again, Err(PayError::ApprovalDenied(_))), "{again:?}");
    assert!(matches!(
        client.call(&request).await,
        Err(PayError::NeedsApproval { proposal_id: next, .. }) if next != proposal_id
    ));
    assert_eq!(paid.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_proposal_expires_after_its_ttl_and_can_no_longer_be_used() {
    let ledger = SpendLedger::open("sqlite::memory:").await.unwrap();
    let owners = "owners = [\"0x1111111111111111111111111111111111111111\"]\nthreshold = 1";
    let guard = TreasuryGuard::new(
        rules(&format!("approval_above = \"$1\"\nproposal_ttl_seconds = 60\n{owners}")),
        ledger.clone(),
    );
    let (payer, payee, url) = (Address::random(), Address::repeat_byte(7), "http://h/ttl");
    let now = unix_now();
    let Err(PayError::NeedsApproval { proposal_id, .. }) = guard
        .reserve(
            &spend(payer, payee, 2 * PRICE, url),
            Budgets::default(),
            now,
            None,
            ProposalKind::X402,
            "",
        )
        .await
    else {
        panic!("needs approval");
    };
    let proposals = guard.proposals();
    assert_eq!(
        proposals.get(proposal_id, now + 60).await.unwrap().unwrap().state,
        "pending_approval"
    );
    assert!(
        proposals
            .transition(proposal_id, "pending_approval", "approved", None, None, now)
            .await
            .unwrap()
    );
    // One second past its expiry it cannot pay, and reads as expired.
    let late = guard
        .reserve(
            &spend(payer, payee, 2 * PRICE, url),
            Budgets::default(),
            now + 61,
            Some(proposal_id),
            ProposalKind::X402,
            "",
        )
        .await;
    assert!(matches!(late, Err(PayError::ApprovalDenied(_))), "{late:?}");
    assert_eq!(
        proposals.get(proposal_id, now + 61).await.unwrap().unwrap().state,
        "expired"
    );
    assert!(ledger.recent(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_approved_transfer_whose_execution_failed_is_executed_by_execute() {
    let devnet = Devnet::start(DevnetConfig::default()).await.unwrap();
    let state = devnet.state().clone();
    let agent = devnet.signer(2).unwrap().clone();
    let payee = Address::random();
    let owners = [PrivateKeySigner::random(), PrivateKeySigner::random()];
    let text = format!(
        "approval_above = \"$5\"\nowners = [\"{}\", \"{}\"]\nthreshold = 2",
        owners[0].address(),
        owners[1].address()
    );
    let custody = LocalCustody::new(LocalCustodyParts {
        key: agent.clone(),
        rules: rules(&text),
        spending_policy: SpendingPolicy {
            max_per_request: dollars(10_000_000),
            daily_budget: None,
            assets: vec![state.usdc],
            ..SpendingPolicy::default()
        },
        ledger: SpendLedger::open("sqlite::memory:").await.unwrap(),
        rpc_url: state.rpc_url.clone(),
        network: state.network.clone(),
        usdc: state.usdc,
    })
    .unwrap();
    // More than the agent holds (1,000,000 USDC): approved, but the transfer cannot be made.
    let amount = dollars(2_000_000);
    let waiting = custody
        .propose(&PaymentProposal {
            to: payee,
            amount,
            memo: "too much for now".into(),
        })
        .await
        .unwrap();
    let id = waiting.proposal_id;
    custody.approve(id, &owners[0]).await.unwrap();
    let failed = custody.approve(id, &owners[1]).await.unwrap_err();
    assert!(matches!(failed, CustodyError::Chain(_)), "{failed:?}");
    let after = custody.proposal(id).await.unwrap();
    assert_eq!(
        (after.state, after.approvals, after.transaction.as_deref()),
        (ProposalState::PendingApproval, 2, None),
        "still approved, not executed"
    );
    // Funded, `execute` pays it, once.
    devnet.mint(agent.address(), amount).await.unwrap();
    let done = custody.execute(id).await.unwrap();
    assert_eq!(done.state, ProposalState::Executed);
    assert!(done.transaction.is_some());
    assert_eq!(
        direct_transfer::balance(&state.rpc_url, state.usdc, payee)
            .await
            .unwrap(),
        amount
    );
    assert!(matches!(
        custody.execute(id).await,
        Err(CustodyError::WrongState { .. })
    ));
}

#[tokio::test]
async fn nerdcabal_pay_under_a_treasury_refuses_with_the_rule_waits_for_owners_and_pays_once_with_proposal() {
    use agents::buyer::pay_command::{PayOptions, run};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (seller, paid) = settling_seller().await;
    let dir = std::env::temp_dir().join(format!("nerdcabal-treasury-pay-{}", B256::random()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("agent.key");
    std::fs::write(&key_file, alloy::hex::encode(PrivateKeySigner::random().to_bytes())).unwrap();
    let owners = [PrivateKeySigner::random(), PrivateKeySigner::random()];
    let config_path = dir.join("buyer.toml");
    let pay_under = |treasury: String, proposal: Option<u64>| {
        let config = dir.join("buyer.toml");
        std::fs::write(
            &config,
            format!(
                // No chain here: the token blocklist cannot answer, so it is advisory (compliance is fail-closed).
                "ledger = \"sqlite://{}\"\nrpc_url = \"http://127.0.0.1:1\"\n[wallet]\nkey_file = \"{}\"\n\n\
                 [compliance]\nadvisory = [\"token_blocklist\"]\n\n[treasury]\n{treasury}\n",
                dir.join("spend.db").display(),
                key_file.display()
            ),
        )
        .unwrap();
        let options = PayOptions {
            url: format!("{seller}/report"),
            json: true,
            timeout: std::time::Duration::from_secs(5),
            buyer: BuyerFlags {
                config: Some(config),
                ..BuyerFlags::default()
            },
            proposal,
            ..PayOptions::default()
        };
        async move {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = run(options, &mut out, &mut err).await;
            let document: serde_json::Value =
                serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&err)));
            (code, document)
        }
    };
    let pay = |treasury: String| pay_under(treasury, None);
    // The price ($0.001) is over the per-transaction cap.
    let (code, refused) = pay("per_tx_cap = \"$0.0005\"".into()).await;
    assert_eq!(code, 3, "{refused}");
    assert_eq!(
        (refused["error"].as_str(), refused["rule"].as_str()),
        (Some("policy_denied"), Some("per_tx_cap"))
    );
    // Above the approval amount: a proposal for two owners.
    let approving = format!(
        "approval_above = \"$0.0005\"\nowners = [\"{}\", \"{}\"]\nthreshold = 2",
        owners[0].address(),
        owners[1].address()
    );
    let (code, waiting) = pay(approving.clone()).await;
    assert_eq!(code, 3, "{waiting}");
    assert_eq!(waiting["error"], "needs_approval");
    assert_eq!(
        (waiting["approvals"].as_u64(), waiting["required"].as_u64()),
        (Some(0), Some(2))
    );
    assert!(waiting["proposal_id"].as_u64().is_some(), "{waiting}");
    assert_eq!(paid.load(Ordering::SeqCst), 0, "nothing was sent to the seller");
    // Both owners approve; `pay --proposal` then pays under it, once.
    let id = waiting["proposal_id"].as_u64().unwrap();
    let buyer = BuyerConfig::resolve(
        &BuyerFlags {
            config: Some(config_path.clone()),
            ..BuyerFlags::default()
        },
        |_| None,
    )
    .unwrap();
    let ledger = SpendLedger::open(&buyer.ledger_url).await.unwrap();
    let custody = LocalCustody::open(&buyer, ledger).unwrap();
    custody.approve(id, &owners[0]).await.unwrap();
    let approved = custody.approve(id, &owners[1]).await.unwrap();
    assert_eq!(approved.approvals, 2, "{approved:?}");
    let (code, done) = pay_under(approving.clone(), Some(id)).await;
    assert_eq!(code, 0, "{done}");
    assert_eq!(paid.load(Ordering::SeqCst), 1, "paid under the approved proposal");
    let (code, again) = pay_under(approving, Some(id)).await;
    assert_eq!(code, 3, "a proposal pays once: {again}");
    assert_eq!(paid.load(Ordering::SeqCst), 1);
    // Within every rule it pays.
    let (code, ok) = pay("per_tx_cap = \"$1\"\ndaily_cap = \"$2\"".into()).await;
    assert_eq!(code, 0, "{ok}");
    assert_eq!(paid.load(Ordering::SeqCst), 2);
    let _ = std::fs::remove_dir_all(&dir);
}
