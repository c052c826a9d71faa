//! Route reload on SIGHUP, in a test binary of its own (the signal goes to the whole process): a valid new
//! file replaces the routes at once; an invalid one is refused and the old routes stay.

mod common;

use std::time::Duration;

use alloy::primitives::U256;
use common::{Harness, Link, proxy_toml};

const BEFORE: &str = r#"
[[route]]
name = "data"
path = "/data"
upstream = "{upstream}"
price = "$0.01"
"#;

const AFTER: &str = r#"
[[route]]
name = "data"
path = "/data"
upstream = "{upstream}"
price = "$0.02"

[[route]]
name = "extra"
path = "/extra"
upstream = "{upstream}"
free = true
"#;

fn hang_up() {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn price_of(h: &Harness) -> U256 {
    h.offer("/data").await.accepts[0].amount
}

#[tokio::test]
async fn sighup_swaps_in_valid_routes_and_keeps_the_old_ones_on_error() {
    // Registered before anything else, so SIGHUP can never take the default action (exit) here.
    let _keep = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let h = Harness::start(BEFORE, Link::Embedded).await;
    assert_eq!(price_of(&h).await, U256::from(10_000));
    assert_eq!(h.http.get(h.url("/extra")).send().await.unwrap().status(), 404);

    let link = "[facilitator]\nembedded = true";
    std::fs::write(
        &h.config_path,
        proxy_toml(&h.devnet, h.seller, &h.upstream_url, link, AFTER),
    )
    .unwrap();
    hang_up();
    let mut reloaded = false;
    for _ in 0..50 {
        if price_of(&h).await == U256::from(20_000) {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reloaded, "the new price applies after SIGHUP");
    assert_eq!(h.http.get(h.url("/extra")).send().await.unwrap().status(), 200);

    let broken = AFTER.replace("price = \"$0.02\"", "price = \"$0.03\"\npay_to = \"0xnot-an-address\"");
    std::fs::write(
        &h.config_path,
        proxy_toml(&h.devnet, h.seller, &h.upstream_url, link, &broken),
    )
    .unwrap();
    assert!(h.proxy.reload().is_err(), "the broken file is refused");
    hang_up();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(price_of(&h).await, U256::from(20_000), "the old routes stay");
    assert_eq!(h.http.get(h.url("/extra")).send().await.unwrap().status(), 200);
}
