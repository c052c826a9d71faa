//! The screening sources on their own: the OFAC SDN parser on a real-format fixture (addresses normalised,
//! the publication date as version, non-EVM entries and non-address features ignored), the OFAC source from a
//! path and a URL keeping its last good list when a reload fails, and the Circle adapter against the local
//! server that follows Circle's documented shapes (APPROVED, DENIED, 503 and a bad key are `unavailable`, the
//! key never in the error text).

use std::time::Duration;

use agents::compliance::circle_screening::CircleScreening;
use agents::compliance::ofac_sdn::{self, ListLocation, OfacSdn};
use agents::compliance::screener::{Screener, SourceAnswer};
use alloy::primitives::{Address, address};
use devstack::circle_compliance::{CircleCompliance, CircleComplianceConfig};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sdn_advanced_small.xml");

const ETH: Address = address!("0x098B716B8Aaf21512996dC57EB0615e2383E2f96");
const USDC: Address = address!("0xa7e5d5a720f06526557c513402f2e6b5fa20b008");
const ARB: Address = address!("0x3cbded43efdaf0fc77b9c55f6fc9988fcc9b37d9");

#[test]
fn the_fixture_yields_its_evm_addresses_normalised_and_its_publication_date() {
    let list = ofac_sdn::parse(std::io::BufReader::new(std::fs::File::open(FIXTURE).unwrap())).unwrap();
    let mut found: Vec<Address> = list.addresses.iter().copied().collect();
    found.sort();
    let mut expected = vec![ETH, USDC, ARB];
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(list.published.as_deref(), Some("2024-09-26"));
    // The Tron USDT address; the Bitcoin address is under a non-EVM feature and not counted at all; the
    // EVM-looking value under "Nationality Country" is not an address feature.
    assert_eq!(list.ignored, 1);
    assert!(
        !list
            .addresses
            .contains(&address!("0x1111111111111111111111111111111111111111"))
    );
}

#[test]
fn a_file_that_is_not_sdn_advanced_is_refused() {
    let err = ofac_sdn::parse(&b"<Sanctions><DistinctParties/></Sanctions>"[..]).unwrap_err();
    assert!(matches!(err, ofac_sdn::OfacError::NoFeatureTypes), "{err}");
    assert!(ofac_sdn::parse(&b"<Sanctions><ReferenceValueSets></Oops>"[..]).is_err());
}

fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn blocked(answer: &SourceAnswer) -> bool {
    matches!(answer, SourceAnswer::Blocked { .. })
}

#[tokio::test]
async fn the_ofac_source_blocks_listed_addresses_and_keeps_its_last_good_list() {
    init();
    let dir = std::env::temp_dir().join(format!("nerdcabal-ofac-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sdn.xml");
    std::fs::copy(FIXTURE, &path).unwrap();
    let source = OfacSdn::new(ListLocation::Path(path.clone()), Duration::from_secs(5)).unwrap();
    source.load().await.unwrap();
    assert_eq!(source.version().as_deref(), Some("2024-09-26"));
    let answer = source.screen(ETH).await;
    assert!(blocked(&answer), "{answer:?}");
    if let SourceAnswer::Blocked { reason, detail } = &answer {
        assert_eq!(reason, "sanctions");
        assert!(detail.contains("2024-09-26"), "{detail}");
    }
    assert_eq!(source.screen(Address::repeat_byte(0x42)).await, SourceAnswer::Clear);

    // A reload of a broken file fails and the last good list stays.
    std::fs::write(&path, "<Sanctions>").unwrap();
    assert!(source.load().await.is_err());
    assert!(blocked(&source.screen(USDC).await));
    assert!(source.age().is_some());

    // A source whose first load failed answers unavailable.
    let missing = OfacSdn::new(ListLocation::Path(dir.join("absent.xml")), Duration::from_secs(5)).unwrap();
    assert!(missing.load().await.is_err());
    assert!(matches!(missing.screen(ETH).await, SourceAnswer::Unavailable { .. }));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_scheduled_refresh_picks_up_a_new_publication() {
    init();
    let dir = std::env::temp_dir().join(format!("nerdcabal-ofac-refresh-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sdn.xml");
    let xml = std::fs::read_to_string(FIXTURE).unwrap();
    std::fs::write(&path, &xml).unwrap();
    let source = std::sync::Arc::new(OfacSdn::new(ListLocation::Path(path.clone()), Duration::from_secs(5)).unwrap());
    source.load().await.unwrap();
    let newcomer = address!("0x00000000000000000000000000000000000000aa");
    assert_eq!(source.screen(newcomer).await, SourceAnswer::Clear);
    OfacSdn::refresh_every(&source, Duration::from_millis(100));
    // The next publication lists one more address.
    let next = xml
        .replace("<Day>26</Day>", "<Day>27</Day>")
        .replace("0xa7e5d5a720f06526557c513402f2e6b5fa20b008", &format!("{newcomer:#x}"));
    std::fs::write(&path, next).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while source.version().as_deref() != Some("2024-09-27") {
        assert!(
            std::time::Instant::now() < deadline,
            "the refresh did not load the new list"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(blocked(&source.screen(newcomer).await));
    assert_eq!(
        source.screen(USDC).await,
        SourceAnswer::Clear,
        "dropped from the new publication"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_ofac_list_loads_from_a_url() {
    init();
    let xml = std::fs::read_to_string(FIXTURE).unwrap();
    let app = axum::Router::new().route("/sdn_advanced.xml", axum::routing::get(move || async move { xml }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let location = ListLocation::parse(&format!("http://{addr}/sdn_advanced.xml")).unwrap();
    assert!(matches!(location, ListLocation::Url(_)));
    let source = OfacSdn::new(location, Duration::from_secs(5)).unwrap();
    source.load().await.unwrap();
    assert!(blocked(&source.screen(ARB).await));
    let gone = OfacSdn::new(
        ListLocation::parse(&format!("http://{addr}/missing.xml")).unwrap(),
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(matches!(gone.screen(ARB).await, SourceAnswer::Unavailable { .. }));
    server.abort();
}

const KEY: &str = "TEST_API_KEY:5c1d0f2e9a8b7c6d:3f4e5d6c7b8a9f0e";

#[tokio::test]
async fn the_circle_adapter_reads_approved_denied_and_treats_errors_as_unavailable() {
    init();
    let server = CircleCompliance::start(CircleComplianceConfig::new(KEY)).await.unwrap();
    let circle = CircleScreening::new(Some(server.url()), KEY.into(), "ETH".into(), Duration::from_secs(5)).unwrap();
    assert_eq!(circle.screen(Address::repeat_byte(0x11)).await, SourceAnswer::Clear);
    let sanctioned = address!("0x1234567890abcdef1234567890abcdef12349999");
    match circle.screen(sanctioned).await {
        SourceAnswer::Blocked { reason, detail } => {
            assert_eq!(reason, "sanctions");
            assert!(detail.contains("Sanctions blocklist"), "{detail}");
        }
        other => panic!("expected blocked, got {other:?}"),
    }
    assert_eq!(server.screened(), 2);

    server.set_down(true);
    match circle.screen(Address::repeat_byte(0x11)).await {
        SourceAnswer::Unavailable { error } => assert!(error.contains("503"), "{error}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    server.set_down(false);

    let wrong = CircleScreening::new(
        Some(server.url()),
        "TEST_API_KEY:wrong:wrong".into(),
        "ETH".into(),
        Duration::from_secs(5),
    )
    .unwrap();
    match wrong.screen(Address::repeat_byte(0x11)).await {
        SourceAnswer::Unavailable { error } => {
            assert!(error.contains("401"), "{error}");
            assert!(!error.contains("wrong:wrong"), "{error}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert!(!format!("{circle:?}").contains("5c1d0f2e9a8b7c6d"));

    // Nobody listening: unavailable, and the key is nowhere in the message.
    let port = server.addr.port();
    drop(server);
    let closed = CircleScreening::new(
        Some(format!("http://127.0.0.1:{port}")),
        KEY.into(),
        "ETH".into(),
        Duration::from_secs(2),
    )
    .unwrap();
    match closed.screen(Address::repeat_byte(0x11)).await {
        SourceAnswer::Unavailable { error } => assert!(!error.contains("5c1d0f2e9a8b7c6d"), "{error}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
}
