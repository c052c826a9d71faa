//! Compliance screening end to end with the real binary and `nerdcabal dev`: a payee on an OFAC list (a copy
//! of the real-format fixture with the dev stack's seller written in) makes `nerdcabal pay` exit 8 with
//! `compliance_blocked` — no spend row, the seller's balance unchanged — and `x402_fetch` over MCP answer
//! the same tool error; `compliance screen` and `compliance audit` show the recorded decisions; an address
//! blacklisted on the devnet's USDC is blocked by the token's own blocklist; Circle's screening (the local
//! Circle-shaped server) down and not advisory refuses `compliance_unavailable`, and advisory lets the payment
//! through with the audit row naming the unreachable source; `nerdcabal facilitator` with a `[compliance]`
//! section refuses to settle to a payee blacklisted on the devnet USDC or on its OFAC list (nothing moves),
//! settles to a clear one, names the check in `/supported`, and does not start with a section it cannot build.

mod common;

use std::path::{Path, PathBuf};

use alloy::network::EthereumWallet;
use alloy::primitives::Address;
use alloy::providers::ProviderBuilder;
use alloy::signers::local::PrivateKeySigner;
use common::dev::Dev;
use devstack::circle_compliance::{CircleCompliance, CircleComplianceConfig};
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/agents/tests/fixtures/sdn_advanced_small.xml"
);
/// The fixture's ETH address, replaced by the address a test puts on the list.
const FIXTURE_ETH: &str = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96";

alloy::sol! {
    #[sol(rpc)]
    interface IBlacklister {
        function blacklist(address account) external;
    }
}

/// The OFAC fixture with `who` in place of its ETH address (written in lower case, as OFAC sometimes does).
fn ofac_list_with(dir: &Path, who: Address) -> PathBuf {
    let xml = std::fs::read_to_string(FIXTURE).unwrap();
    assert!(xml.contains(FIXTURE_ETH));
    let path = dir.join("sdn_advanced.xml");
    std::fs::write(&path, xml.replace(FIXTURE_ETH, &format!("{who:#x}"))).unwrap();
    path
}

fn write_config(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

async fn spend_rows(ledger: &str) -> Vec<agents::buyer::spend_ledger::SpendRecord> {
    let ledger = agents::buyer::spend_ledger::SpendLedger::open(ledger).await.unwrap();
    ledger.recent(100).await.unwrap()
}

async fn audit_rows(ledger: &str) -> Vec<agents::compliance::audit::AuditRow> {
    let ledger = agents::buyer::spend_ledger::SpendLedger::open(ledger).await.unwrap();
    agents::compliance::audit::since(&ledger, 0, 1000).await.unwrap()
}

/// `nerdcabal compliance <args…> --devnet <state> --ledger <ledger>`: exit code, stdout, stderr.
async fn compliance(dev: &Dev, ledger: &str, args: &[&str]) -> (i32, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_nerdcabal"))
        .arg("compliance")
        .args(args)
        .arg("--devnet")
        .arg(&dev.state_file)
        .args(["--ledger", ledger])
        .output()
        .await
        .expect("run nerdcabal compliance");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_payee_on_the_ofac_list_is_refused_before_anything_is_signed_by_pay_and_by_mcp() {
    let dev = Dev::start().await;
    let (buyer, seller) = (dev.address("buyer"), dev.address("seller"));
    let seller_before = dev.balance(seller).await;
    let list = ofac_list_with(&dev.dir, seller);
    let config = write_config(
        &dev.dir,
        "buyer.toml",
        &format!("[compliance]\nofac_list = {:?}\n", list.display().to_string()),
    );
    let ledger = dev.ledger("spend");
    let paid_url = dev.state["paid_url"].as_str().unwrap().to_owned();

    let (code, stdout, stderr) = dev.pay(&ledger, &["--config", &config, &paid_url]).await;
    assert_eq!(code, 8, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("compliance_blocked"), "{stderr}");
    let (code, stdout, _) = dev.pay(&ledger, &["--config", &config, "--json", &paid_url]).await;
    assert_eq!(code, 8);
    let refusal: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(refusal["error"], "compliance_blocked");
    assert_eq!(refusal["source"], "ofac");
    assert_eq!(refusal["address"], seller.to_checksum(None));
    assert!(spend_rows(&ledger).await.is_empty(), "nothing was signed");
    assert_eq!(dev.balance(seller).await, seller_before);

    // Each attempt recorded the payee's and the payer's decisions, with the list's publication date.
    let rows = audit_rows(&ledger).await;
    assert_eq!(rows.len(), 4, "{rows:?}");
    let payee: Vec<_> = rows.iter().filter(|r| r.context == "payee").collect();
    assert_eq!(payee.len(), 2);
    for row in &payee {
        assert_eq!(row.address, seller.to_checksum(None));
        assert_eq!(row.decision, "blocked");
        assert_eq!(row.list_version.as_deref(), Some("ofac=2024-09-26"));
        let sources = row.sources_json();
        let names: Vec<&str> = sources
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["source"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["token_blocklist", "ofac"]);
        assert_eq!(sources[0]["answer"], "clear");
        assert_eq!(sources[1]["answer"], "blocked");
    }
    assert!(
        rows.iter()
            .filter(|r| r.context == "payer")
            .all(|r| r.decision == "clear" && r.address == buyer.to_checksum(None))
    );

    // The CLI screens and records too.
    let (code, stdout, stderr) = compliance(
        &dev,
        &ledger,
        &["screen", &seller.to_string(), "--config", &config, "--json"],
    )
    .await;
    assert_eq!(code, 8, "{stderr}");
    let decision: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(decision["decision"], "blocked");
    assert_eq!(decision["sources"][1]["source"], "ofac");
    assert_eq!(decision["sources"][1]["version"], "2024-09-26");
    let (code, stdout, _) = compliance(&dev, &ledger, &["screen", &buyer.to_string(), "--config", &config]).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains(": clear"), "{stdout}");
    let (code, stdout, stderr) = compliance(&dev, &ledger, &["audit", "--since", "1h", "--json"]).await;
    assert_eq!(code, 0, "{stderr}");
    let audit: Value = serde_json::from_str(&stdout).unwrap();
    let contexts: Vec<&str> = audit["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["context"].as_str().unwrap())
        .collect();
    assert_eq!(contexts.len(), 6);
    assert_eq!(contexts.iter().filter(|c| **c == "screen").count(), 2);

    // The same payee through MCP: a tool error naming the reason; still nothing signed.
    let mcp_ledger = dev.ledger("mcp");
    let client = dev.mcp_stdio(&mcp_ledger, &["--config", &config]).await;
    let tools = client.list_all_tools().await.unwrap();
    let screen_tool = tools
        .iter()
        .find(|t| t.name == "screen_address")
        .expect("screen_address");
    assert_eq!(
        screen_tool.annotations.as_ref().and_then(|a| a.read_only_hint),
        Some(true)
    );
    let result = client
        .call_tool(
            CallToolRequestParams::new("x402_fetch")
                .with_arguments(json!({"url": paid_url}).as_object().cloned().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
    let error = result.structured_content.clone().unwrap();
    assert_eq!(error["error"], "compliance_blocked", "{error}");
    let result = client
        .call_tool(
            CallToolRequestParams::new("screen_address")
                .with_arguments(json!({"address": seller.to_string()}).as_object().cloned().unwrap()),
        )
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true));
    let screened = result.structured_content.clone().unwrap();
    assert_eq!(screened["decision"], "blocked");
    client.cancel().await.unwrap();
    assert!(spend_rows(&mcp_ledger).await.is_empty());
    assert_eq!(dev.balance(seller).await, seller_before);
}

#[tokio::test]
async fn an_address_blacklisted_on_the_devnet_usdc_is_blocked_by_the_token_blocklist() {
    let dev = Dev::start().await;
    let admin: PrivateKeySigner = dev.state["accounts"][0]["private_key"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(admin))
        .connect(dev.state["rpc_url"].as_str().unwrap())
        .await
        .unwrap();
    let target = Address::random();
    IBlacklister::new(protocol::network::ARC_USDC, &provider)
        .blacklist(target)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let ledger = dev.ledger("screen");
    let (code, stdout, stderr) = compliance(&dev, &ledger, &["screen", &target.to_string(), "--json"]).await;
    assert_eq!(code, 8, "{stdout}{stderr}");
    let decision: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(decision["decision"], "blocked");
    assert_eq!(decision["sources"][0]["source"], "token_blocklist");
    assert_eq!(decision["sources"][0]["reason"], "blacklisted");
    let (code, stdout, _) = compliance(&dev, &ledger, &["screen", &Address::random().to_string(), "--json"]).await;
    assert_eq!(code, 0, "{stdout}");
}

const CIRCLE_KEY: &str = "TEST_API_KEY:0d9c8b7a6f5e4d3c:1a2b3c4d5e6f7a8b";

#[tokio::test]
async fn circle_down_refuses_unless_advisory_and_the_audit_names_the_unreachable_source() {
    let dev = Dev::start().await;
    let seller = dev.address("seller");
    let seller_before = dev.balance(seller).await;
    let circle = CircleCompliance::start(CircleComplianceConfig::new(CIRCLE_KEY))
        .await
        .unwrap();
    circle.set_down(true);
    let key_file = dev.dir.join("circle.key");
    std::fs::write(&key_file, CIRCLE_KEY).unwrap();
    let section = format!(
        "[compliance]\ncircle_base_url = {:?}\ncircle_api_key_file = {:?}\n",
        circle.url(),
        key_file.display().to_string()
    );
    let strict = write_config(&dev.dir, "strict.toml", &section);
    let advisory = write_config(
        &dev.dir,
        "advisory.toml",
        &format!("{section}advisory = [\"circle\"]\n"),
    );
    let paid_url = dev.state["paid_url"].as_str().unwrap().to_owned();

    let ledger = dev.ledger("strict");
    let (code, stdout, stderr) = dev.pay(&ledger, &["--config", &strict, "--json", &paid_url]).await;
    assert_eq!(code, 8, "{stdout}{stderr}");
    let refusal: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(refusal["error"], "compliance_unavailable");
    assert_eq!(refusal["source"], "circle");
    assert!(!stdout.contains("0d9c8b7a6f5e4d3c") && !stderr.contains("0d9c8b7a6f5e4d3c"));
    assert!(spend_rows(&ledger).await.is_empty());
    assert_eq!(dev.balance(seller).await, seller_before);

    let ledger = dev.ledger("advisory");
    let (code, stdout, stderr) = dev.pay(&ledger, &["--config", &advisory, "--json", &paid_url]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(dev.balance(seller).await, seller_before + dev.price());
    let rows = audit_rows(&ledger).await;
    let payee = rows.iter().find(|r| r.context == "payee").unwrap();
    assert_eq!(payee.decision, "clear");
    let sources = payee.sources_json();
    let circle_answer = sources
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "circle")
        .unwrap();
    assert_eq!(circle_answer["answer"], "unavailable");
    assert_eq!(circle_answer["advisory"], true);
    assert!(circle_answer["error"].as_str().unwrap().contains("503"));

    // Back up: Circle answers, and the dev seller is approved.
    circle.set_down(false);
    let (code, stdout, _) = dev.pay(&ledger, &["--config", &strict, "--json", &paid_url]).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(circle.screened() >= 2);
}

#[tokio::test]
async fn the_facilitator_refuses_to_settle_to_a_blacklisted_or_listed_payee_and_settles_a_clear_one() {
    let dir = common::temp_dir("facilitator-compliance");
    let (devnet, state_file) = common::devnet(&dir).await;
    let database_url = format!("sqlite://{}", dir.join("ledger.db").display());
    let settlement_key = devnet.state().accounts[9].private_key;
    let buyer = devnet.signer(1).unwrap().clone();
    let blacklisted = devnet.signer(2).unwrap().address();
    let listed = devnet.signer(3).unwrap().address();
    let clear = devnet.signer(4).unwrap().address();
    IBlacklister::new(protocol::network::ARC_USDC, devnet.admin_provider())
        .blacklist(blacklisted)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let list = ofac_list_with(&dir, listed);
    let toml = format!(
        "[settlement]\nreceipt_timeout_ms = 5000\n[compliance]\nofac_list = {:?}\n",
        list.display().to_string()
    );
    let facilitator = common::FacilitatorProcess::start(&state_file, &database_url, settlement_key, &toml, &dir).await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: &protocol::VerifyRequest| {
        let request = http.post(format!("{}{path}", facilitator.url)).json(body);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };

    let supported: Value = http
        .get(format!("{}/supported", facilitator.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        supported["extensions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "compliance-screening"),
        "{supported}"
    );

    for payee in [blacklisted, listed] {
        let before = common::usdc_balance(&devnet, payee).await;
        let request = common::payment(&devnet, &buyer, payee, 10_000).await;
        let settle = post("/settle", &request).await;
        assert_eq!(settle["success"], false, "{settle}");
        assert_eq!(settle["errorReason"], "compliance_blocked", "{settle}");
        assert_eq!(common::usdc_balance(&devnet, payee).await, before);
    }

    let before = common::usdc_balance(&devnet, clear).await;
    let request = common::payment(&devnet, &buyer, clear, 10_000).await;
    let settle = post("/settle", &request).await;
    assert_eq!(settle["success"], true, "{settle}");
    assert_eq!(
        common::usdc_balance(&devnet, clear).await,
        before + alloy::primitives::U256::from(10_000)
    );
    drop(facilitator);

    // A [compliance] section that names a source that does not exist stops the start (fail-closed).
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[compliance]\nadvisory = [\"circel\"]\n").unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_nerdcabal"))
        .args(["facilitator", "--devnet"])
        .arg(&state_file)
        .arg("--config")
        .arg(&bad)
        .env(
            "NERDCABAL_FACILITATOR_LISTEN",
            format!("127.0.0.1:{}", common::free_port()),
        )
        .env("DATABASE_URL", &database_url)
        .env("NERDCABAL_SETTLEMENT_KEYS", settlement_key.to_string())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("circel"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
