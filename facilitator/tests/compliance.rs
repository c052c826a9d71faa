//! The facilitator's counterparty screen, end to end over HTTP on a devnet: a payee the screen blocks is refused
//! `compliance_blocked` at `/verify` and `/settle` and no money moves; a screen that cannot answer refuses
//! `compliance_unavailable`; a clear screen lets the payment settle; `/supported` names the check; a
//! `[compliance]` section with no screen built from it stops the facilitator from starting. (The agents'
//! screener that the binary plugs in has its own end-to-end tests at the workspace level.)

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use alloy::primitives::{Address, U256};
use common::stack::{Options, Stack};
use facilitator::compliance::{CounterpartyScreen, ScreenFuture, ScreenRefusal};

/// A deny set, and a switch that makes the screen unable to answer.
#[derive(Default)]
struct DenySet {
    denied: Mutex<HashSet<Address>>,
    down: Mutex<bool>,
    asked: Mutex<Vec<Address>>,
}

impl CounterpartyScreen for DenySet {
    fn screen(&self, address: Address) -> ScreenFuture<'_> {
        Box::pin(async move {
            self.asked.lock().unwrap().push(address);
            if *self.down.lock().unwrap() {
                return Err(ScreenRefusal::Unavailable {
                    address,
                    source_name: "deny_set".into(),
                });
            }
            if self.denied.lock().unwrap().contains(&address) {
                return Err(ScreenRefusal::Blocked {
                    address,
                    source_name: "deny_set".into(),
                    detail: "listed".into(),
                });
            }
            Ok(())
        })
    }

    fn sources(&self) -> Vec<String> {
        vec!["deny_set".into()]
    }
}

async fn stack_with(screen: Arc<DenySet>) -> Stack {
    Stack::start_with(Options {
        screen: Some(screen),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn a_blocked_payee_is_refused_at_verify_and_settle_and_nothing_moves() {
    let screen = Arc::new(DenySet::default());
    let stack = stack_with(screen.clone()).await;
    screen.denied.lock().unwrap().insert(stack.seller);
    let (buyer0, seller0) = (
        stack.usdc_balance(stack.buyer.address()).await,
        stack.usdc_balance(stack.seller).await,
    );
    let request = stack.payment(10_000).await;

    let (status, verify) = stack.post("/verify", &request).await;
    assert_eq!(status, 200);
    assert_eq!(verify["isValid"], false, "{verify}");
    assert_eq!(verify["invalidReason"], "compliance_blocked", "{verify}");

    let (_, settle) = stack.post("/settle", &request).await;
    assert_eq!(settle["success"], false, "{settle}");
    assert_eq!(settle["errorReason"], "compliance_blocked", "{settle}");
    assert_eq!(settle["transaction"], "", "{settle}");
    assert_eq!(stack.usdc_balance(stack.buyer.address()).await, buyer0);
    assert_eq!(stack.usdc_balance(stack.seller).await, seller0);
    let asked = screen.asked.lock().unwrap().clone();
    assert!(
        asked.contains(&stack.buyer.address()) && asked.contains(&stack.seller),
        "{asked:?}"
    );

    // Cleared, the same payment settles.
    screen.denied.lock().unwrap().clear();
    let (_, settle) = stack.post("/settle", &request).await;
    assert_eq!(settle["success"], true, "{settle}");
    assert_eq!(stack.usdc_balance(stack.seller).await, seller0 + U256::from(10_000u64));
}

#[tokio::test]
async fn a_screen_that_cannot_answer_refuses_unavailable() {
    let screen = Arc::new(DenySet::default());
    *screen.down.lock().unwrap() = true;
    let stack = stack_with(screen).await;
    let seller0 = stack.usdc_balance(stack.seller).await;
    let request = stack.payment(10_000).await;
    let (_, settle) = stack.post("/settle", &request).await;
    assert_eq!(settle["success"], false, "{settle}");
    assert_eq!(settle["errorReason"], "compliance_unavailable", "{settle}");
    assert_eq!(stack.usdc_balance(stack.seller).await, seller0);
}

#[tokio::test]
async fn supported_names_the_check_only_when_screening() {
    let stack = stack_with(Arc::new(DenySet::default())).await;
    let (_, supported) = stack.get("/supported").await;
    let extensions = supported["extensions"].as_array().unwrap();
    assert!(extensions.iter().any(|e| e == "compliance-screening"), "{supported}");

    let plain = Stack::start().await;
    let (_, supported) = plain.get("/supported").await;
    assert!(
        !supported["extensions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "compliance-screening"),
        "{supported}"
    );
}

#[tokio::test]
async fn a_compliance_section_without_a_screen_stops_the_start() {
    let config =
        facilitator::config::FacilitatorConfig::from_toml("[compliance]\nofac_list = \"sdn.xml\"\n", |_| None).unwrap();
    assert!(config.compliance.is_some());
    let built = facilitator::service::Facilitator::build(config).await;
    assert!(matches!(
        built,
        Err(facilitator::service::ServiceError::ComplianceUnwired)
    ));
}
