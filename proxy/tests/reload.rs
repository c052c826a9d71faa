//! Route reload on SIGHUP, in a test binary of its own (the signal goes to the whole process): a valid new
//! file replaces the routes at once; an invalid one is refused and the old routes stay. Each step waits on
//! the proxy's own reload status (attempt counted, outcome given), so the test cannot pass unless the signal
//! handler ran the reload.

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

/// Sends SIGHUP and waits (bounded) for the proxy to finish reload number `attempt`; its outcome.
async fn reload_by_signal(h: &Harness, attempt: u64) -> Result<usize, String> {
    let mut status = h.proxy.reload_status();
    tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| s.listening))
        .await
        .expect("the SIGHUP handler is installed")
        .unwrap();
    hang_up();
    let done = tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| s.attempts >= attempt))
        .await
        .expect("the proxy reloads on SIGHUP")
        .unwrap()
        .clone();
    assert_eq!(done.attempts, attempt, "one reload per hang-up");
    done.last.expect("an outcome")
}

async fn reloads_counted(h: &Harness, outcome: &str) -> u64 {
    let text = h
        .http
        .get(format!("{}/metrics", h.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let needle = format!("proxy_reloads_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(needle.as_str()))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or(0)
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
    assert_eq!(
        reload_by_signal(&h, 1).await,
        Ok(2),
        "the new file's two routes are in force"
    );
    assert_eq!(
        price_of(&h).await,
        U256::from(20_000),
        "the new price applies after SIGHUP"
    );
    assert_eq!(h.http.get(h.url("/extra")).send().await.unwrap().status(), 200);
    assert_eq!(reloads_counted(&h, "applied").await, 1);

    let broken = AFTER.replace("price = \"$0.02\"", "price = \"$0.03\"\npay_to = \"0xnot-an-address\"");
    std::fs::write(
        &h.config_path,
        proxy_toml(&h.devnet, h.seller, &h.upstream_url, link, &broken),
    )
    .unwrap();
    let refused = reload_by_signal(&h, 2).await.expect_err("the broken file is refused");
    assert!(refused.contains("pay_to"), "the refusal names the bad key: {refused}");
    assert_eq!(price_of(&h).await, U256::from(20_000), "the old routes stay");
    assert_eq!(h.http.get(h.url("/extra")).send().await.unwrap().status(), 200);
    assert_eq!(reloads_counted(&h, "refused").await, 1);
}
