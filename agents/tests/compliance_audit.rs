//! The buyer's compliance check and its audit rows, on SQLite and PostgreSQL: a payee on the local deny list
//! is `compliance_blocked` (the payee's and the payer's decisions both recorded, with each source's answer); a
//! source that cannot answer is `compliance_unavailable` unless it is advisory, and then the row says it was
//! unreachable; `audit::since` lists rows from a time on, oldest first.

#[path = "../../tests/support/postgres.rs"]
mod postgres;

use std::sync::Arc;
use std::time::Duration;

use agents::buyer::spend_ledger::SpendLedger;
use agents::buyer::x402_client::PayError;
use agents::compliance::audit;
use agents::compliance::circle_screening::CircleScreening;
use agents::compliance::decision::{ComplianceScreen, Source};
use agents::compliance::local_list::LocalList;
use agents::compliance::payment_check::PaymentScreen;
use alloy::primitives::Address;

const DENIED: Address = Address::repeat_byte(0xd1);
const PAYER: Address = Address::repeat_byte(0xb0);
const PAYEE: Address = Address::repeat_byte(0x5e);

/// The local list denying [`DENIED`], and a Circle source at a port nobody listens on.
fn screen(circle_advisory: bool) -> ComplianceScreen {
    let list = LocalList::parse(&format!("deny {DENIED}\n")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let circle = CircleScreening::new(
        Some(format!("http://127.0.0.1:{port}")),
        "TEST_API_KEY:k:k".into(),
        "ETH".into(),
        Duration::from_secs(2),
    )
    .unwrap();
    ComplianceScreen::new(vec![
        Source::new(Arc::new(list), false, Duration::ZERO),
        Source::new(Arc::new(circle), circle_advisory, Duration::from_secs(60)),
    ])
}

async fn scenario(url: &str) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ledger = SpendLedger::open(url).await.unwrap();
    let strict = PaymentScreen::new(Arc::new(screen(false)), ledger.clone());
    let lenient = PaymentScreen::new(Arc::new(screen(true)), ledger.clone());

    // Blocked wins over unavailable, whichever party it is.
    match strict.check(DENIED, PAYER).await {
        Err(PayError::ComplianceBlocked { address, screener, .. }) => {
            assert_eq!(address, DENIED);
            assert_eq!(screener, "local_list");
        }
        other => panic!("expected compliance_blocked, got {other:?}"),
    }
    match strict.check(PAYEE, PAYER).await {
        Err(e @ PayError::ComplianceUnavailable { .. }) => {
            assert_eq!(e.kind(), "compliance_unavailable");
            assert_eq!(e.to_json()["source"], "circle");
        }
        other => panic!("expected compliance_unavailable, got {other:?}"),
    }
    lenient.check(PAYEE, PAYER).await.unwrap();
    assert!(matches!(
        lenient.check(PAYEE, DENIED).await,
        Err(PayError::ComplianceBlocked { address, .. }) if address == DENIED
    ));

    let rows = audit::since(&ledger, 0, 100).await.unwrap();
    assert_eq!(rows.len(), 8, "two decisions per check");
    assert_eq!(rows.iter().filter(|r| r.context == "payee").count(), 4);
    let blocked = rows
        .iter()
        .find(|r| r.address == DENIED.to_checksum(None) && r.context == "payee")
        .unwrap();
    assert_eq!(blocked.decision, "blocked");
    let sources = blocked.sources_json();
    assert_eq!(sources[0]["source"], "local_list");
    assert_eq!(sources[0]["answer"], "blocked");
    let advisory_clear = rows
        .iter()
        .filter(|r| r.address == PAYEE.to_checksum(None) && r.decision == "clear")
        .collect::<Vec<_>>();
    // The two lenient checks: the payee was clear both times, Circle unreachable and advisory.
    assert_eq!(advisory_clear.len(), 2);
    for row in advisory_clear {
        let circle = &row.sources_json()[1];
        assert_eq!(circle["source"], "circle");
        assert_eq!(circle["answer"], "unavailable");
        assert_eq!(circle["advisory"], true);
        assert!(!circle["error"].as_str().unwrap().contains("TEST_API_KEY"));
    }
    assert!(rows.windows(2).all(|w| w[0].created_at <= w[1].created_at));
    let future = audit::since(&ledger, rows[rows.len() - 1].created_at + 1, 100)
        .await
        .unwrap();
    assert!(future.is_empty());
}

#[tokio::test]
async fn sqlite_records_every_decision_and_refuses_blocked_and_unavailable() {
    scenario("sqlite::memory:").await;
}

#[tokio::test]
async fn postgres_records_every_decision_and_refuses_blocked_and_unavailable() {
    let (db, url) = postgres::create_database("compliance_audit").await;
    scenario(&url).await;
    postgres::drop_database(&db).await;
}
