//! An organisation's on-chain Treasury on the dev stack's devnet, through the real `nerdcabal` binary: `treasury
//! create` deploys a 2-of-3 treasury through the factory; a spender's payment below the approval amount executes at
//! once, one above it waits, one owner's approval is not enough, the second executes it; the daily cap refuses the
//! next one (exit 3, `daily_cap`); the chain's balances and remaining allowance match. With `[wallet] treasury` set,
//! `nerdcabal pay` pays the dev stack's priced route *from the treasury*: the payment names the Treasury as an
//! EIP-1271 payer, our facilitator settles it, the seller gains the price, the Treasury loses it and its daily
//! allowance shrinks by it; a dearer route above the approval amount answers `needs_approval` with the proposal id
//! and moves nothing; an owner's key is refused as the paying agent; an approval that reaches M stands when
//! execution is refused by the daily cap. Over MCP (rmcp client): `propose_payment` above the approval amount is the
//! tool error `needs_approval` with the proposal id; after two `treasury approve` calls `proposal_status` says
//! `executed` with the transaction; `x402_fetch` pays from the treasury; no tool can approve; a withdrawn approval
//! leaves the proposal short and `execute` refused. Without a treasury address the same CLI scenario runs in local
//! custody (`[treasury]` rules; the agent's key pays, owners sign EIP-712 approvals). A payee blacklisted on the
//! devnet USDC is refused `compliance_blocked` (exit 8) before anything is proposed, and the decision is audited.

mod common;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, U256};
use alloy::providers::ProviderBuilder;
use alloy::signers::local::PrivateKeySigner;
use common::dev::Dev;
use contracts::bindings::{Treasury, USDC};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::{Value, json};

/// `nerdcabal treasury <args…> --devnet <state> --json`: exit code and the JSON document printed.
async fn treasury(dev: &Dev, args: &[&str]) -> (i32, Value) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_nerdcabal"))
        .arg("treasury")
        .args(args)
        .arg("--devnet")
        .arg(&dev.state_file)
        .arg("--json")
        .env_remove("NERDCABAL_BUYER_KEY")
        .output()
        .await
        .expect("run nerdcabal treasury");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let document = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), document)
}

fn account(dev: &Dev, index: usize) -> (Address, String) {
    let entry = &dev.state["accounts"][index];
    (
        entry["address"].as_str().unwrap().parse().unwrap(),
        entry["private_key"].as_str().unwrap().to_owned(),
    )
}

/// Writes account `index`'s key to a file; returns its path.
fn key_file(dev: &Dev, index: usize) -> String {
    let path = dev.dir.join(format!("key-{index}"));
    std::fs::write(&path, account(dev, index).1).unwrap();
    path.display().to_string()
}

/// Sends `amount` USDC from account `from` to `to`.
async fn fund(dev: &Dev, from: usize, to: Address, amount: U256) {
    let key: PrivateKeySigner = account(dev, from).1.parse().unwrap();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key))
        .connect(dev.state["rpc_url"].as_str().unwrap())
        .await
        .unwrap();
    let receipt = USDC::new(protocol::network::ARC_USDC, provider)
        .transfer(to, amount)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
}

/// `treasury approve <id>` by each of `owners` (account indices); each must succeed.
async fn approve_by(dev: &Dev, at: Address, id: u64, owners: &[usize]) {
    for &owner in owners {
        let key = key_file(dev, owner);
        let (code, approved) = treasury(
            dev,
            &[
                "approve",
                &id.to_string(),
                "--treasury",
                &at.to_string(),
                "--key-file",
                &key,
            ],
        )
        .await;
        assert_eq!(code, 0, "{approved}");
    }
}

fn usd(dollars: u64) -> U256 {
    U256::from(dollars * 1_000_000)
}

/// `treasury create` 2-of-3 (owners: accounts 3–5) with the dev buyer as spender; returns its address.
async fn create_treasury(dev: &Dev, daily: &str, per_tx: &str, approval_above: &str) -> Address {
    let owners = (3..=5)
        .map(|i| account(dev, i).0.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let spender = dev.address("buyer").to_string();
    let (code, created) = treasury(
        dev,
        &[
            "create",
            "--owners",
            &owners,
            "--threshold",
            "2",
            "--spenders",
            &spender,
            "--daily",
            daily,
            "--per-tx",
            per_tx,
            "--approval-above",
            approval_above,
        ],
    )
    .await;
    assert_eq!(code, 0, "{created}");
    created["address"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn pay_from_the_treasury_settles_it_as_an_eip1271_payer_through_our_facilitator() {
    let dev = Dev::start().await;
    let at = create_treasury(&dev, "$1", "$1", "$0.01").await;
    fund(&dev, 6, at, usd(5)).await;
    let config = dev.dir.join("buyer.toml");
    std::fs::write(&config, format!("[wallet]\ntreasury = \"{at}\"\n")).unwrap();
    let config = config.display().to_string();
    let (buyer, seller, price) = (dev.address("buyer"), dev.address("seller"), dev.price());
    let (treasury_before, seller_before, buyer_before) = (
        dev.balance(at).await,
        dev.balance(seller).await,
        dev.balance(buyer).await,
    );
    let contract = Treasury::new(at, dev.provider.clone());
    let allowance_before = contract.remainingDailyAllowance().call().await.unwrap();
    let ledger = dev.ledger("spend");
    let paid_url = dev.state["paid_url"].as_str().unwrap().to_owned();

    let (code, stdout, stderr) = dev.pay(&ledger, &["--config", &config, "--json", &paid_url]).await;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    let outcome: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(outcome["body"]["city"], "paris", "{outcome}");
    assert_eq!(
        outcome["receipt"]["payer"]
            .as_str()
            .unwrap()
            .parse::<Address>()
            .unwrap(),
        at
    );
    assert_eq!(dev.balance(seller).await, seller_before + price);
    assert_eq!(dev.balance(at).await, treasury_before - price);
    assert_eq!(
        dev.balance(buyer).await,
        buyer_before,
        "the spender's own USDC never moves"
    );
    assert_eq!(
        contract.remainingDailyAllowance().call().await.unwrap(),
        allowance_before - price
    );
    let ledger_rows = agents::buyer::spend_ledger::SpendLedger::open(&ledger)
        .await
        .unwrap()
        .recent(10)
        .await
        .unwrap();
    assert_eq!(ledger_rows.len(), 1);
    assert_eq!(
        ledger_rows[0].payer.parse::<Address>().unwrap(),
        at,
        "the ledger records the treasury as the payer"
    );

    // An owner's key is refused as the paying agent before anything is signed.
    let owner_key = key_file(&dev, 3);
    let (code, _, stderr) = dev
        .pay(&ledger, &["--config", &config, "--key-file", &owner_key, &paid_url])
        .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("never an owner"), "{stderr}");
    assert_eq!(dev.balance(at).await, treasury_before - price);

    // The dearer route is above the approval amount: a proposal waits for owners and nothing moves.
    let dear_url = dev.state["dear_url"].as_str().unwrap().to_owned();
    let (code, stdout, _) = dev.pay(&ledger, &["--config", &config, "--json", &dear_url]).await;
    assert_eq!(code, 3, "{stdout}");
    let refused: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(refused["error"], "needs_approval", "{refused}");
    assert_eq!(
        (refused["approvals"].as_u64(), refused["required"].as_u64()),
        (Some(0), Some(2))
    );
    let id = refused["proposal_id"].as_u64().unwrap();
    let (code, shown) = treasury(&dev, &["proposal", &id.to_string(), "--treasury", &at.to_string()]).await;
    assert_eq!(
        (code, shown["state"].as_str()),
        (0, Some("pending_approval")),
        "{shown}"
    );
    assert_eq!(dev.balance(at).await, treasury_before - price);

    // Two owners approve its authorization; the agent's retry with the proposal id pays the dear route under
    // the approved authorization (no new proposal), once.
    let dear_price: U256 = dev.state["dear_price"].as_str().unwrap().parse().unwrap();
    approve_by(&dev, at, id, &[3, 4]).await;
    let proposals_before = contract.proposalCount().call().await.unwrap();
    let seller_mid = dev.balance(seller).await;
    let (code, stdout, stderr) = dev
        .pay(
            &ledger,
            &["--config", &config, "--json", "--proposal", &id.to_string(), &dear_url],
        )
        .await;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(dev.balance(seller).await, seller_mid + dear_price);
    assert_eq!(dev.balance(at).await, treasury_before - price - dear_price);
    assert_eq!(
        contract.proposalCount().call().await.unwrap(),
        proposals_before,
        "no new proposal"
    );
    let (code, stdout, _) = dev
        .pay(
            &ledger,
            &["--config", &config, "--json", "--proposal", &id.to_string(), &dear_url],
        )
        .await;
    assert_eq!(code, 5, "an approved authorization pays once: {stdout}");
    let again: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(again["error"], "unpayable", "{again}");
    assert!(
        again["message"].as_str().unwrap().contains("already been used"),
        "{again}"
    );
    assert_eq!(dev.balance(at).await, treasury_before - price - dear_price);

    // The approval that reaches M stands even when execution is refused (another payment took the day's
    // allowance meanwhile): exit 3 naming `daily_cap`, the proposal still waits with both approvals.
    let at_flag = at.to_string();
    let payee = account(&dev, 7).0.to_string();
    let propose = |amount: &'static str| {
        let (dev, at_flag, payee) = (&dev, at_flag.clone(), payee.clone());
        async move {
            treasury(
                dev,
                &["propose", "--treasury", &at_flag, "--to", &payee, "--amount", amount],
            )
            .await
        }
    };
    let (_, first) = propose("$0.5").await;
    let (_, second) = propose("$0.6").await;
    let (first, second) = (
        first["proposal_id"].as_u64().unwrap().to_string(),
        second["proposal_id"].as_u64().unwrap().to_string(),
    );
    let approve = |id: String, owner: usize| {
        let (dev, at_flag) = (&dev, at_flag.clone());
        async move {
            let key = key_file(dev, owner);
            treasury(dev, &["approve", &id, "--treasury", &at_flag, "--key-file", &key]).await
        }
    };
    assert_eq!(approve(first.clone(), 3).await.0, 0);
    assert_eq!(approve(second.clone(), 3).await.0, 0);
    let (code, paid) = approve(second, 4).await;
    assert_eq!((code, paid["state"].as_str()), (0, Some("executed")), "{paid}");
    let (code, refused) = approve(first.clone(), 4).await;
    assert_eq!((code, refused["error"].as_str()), (3, Some("daily_cap")), "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("approved (2 of 2)"),
        "{refused}"
    );
    let (_, waiting) = treasury(&dev, &["proposal", &first, "--treasury", &at_flag]).await;
    assert_eq!(
        (waiting["state"].as_str(), waiting["approvals"].as_u64()),
        (Some("pending_approval"), Some(2)),
        "{waiting}"
    );
    assert_eq!(
        dev.balance(at).await,
        treasury_before - price - dear_price - U256::from(600_000u64)
    );
}

#[tokio::test]
async fn a_two_of_three_treasury_pays_small_at_once_large_after_two_approvals_and_stops_at_its_daily_cap() {
    let dev = Dev::start().await;
    let owners: Vec<Address> = (3..=5).map(|i| account(&dev, i).0).collect();
    let owners_flag = owners.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    // The spender is the dev stack's buyer: `propose` signs with its key, as `pay` would.
    let spender = dev.address("buyer");
    let payee = account(&dev, 7).0;
    let (code, created) = treasury(
        &dev,
        &[
            "create",
            "--owners",
            &owners_flag,
            "--threshold",
            "2",
            "--spenders",
            &spender.to_string(),
            "--daily",
            "$12",
            "--per-tx",
            "$10",
            "--approval-above",
            "$5",
        ],
    )
    .await;
    assert_eq!(code, 0, "{created}");
    let at: Address = created["address"].as_str().unwrap().parse().unwrap();
    let at_flag = at.to_string();
    fund(&dev, 6, at, usd(50)).await;
    let (treasury_before, payee_before) = (dev.balance(at).await, dev.balance(payee).await);

    let (code, status) = treasury(&dev, &["status", "--treasury", &at_flag]).await;
    assert_eq!(code, 0, "{status}");
    assert_eq!(status["threshold"], 2);
    assert_eq!(status["balance"], usd(50).to_string());
    assert_eq!(
        status["spenders"][0].as_str().unwrap().parse::<Address>().unwrap(),
        spender
    );

    let propose = |amount: &'static str, memo: &'static str| {
        let at_flag = at_flag.clone();
        let payee = payee.to_string();
        let dev = &dev;
        async move {
            treasury(
                dev,
                &[
                    "propose",
                    "--treasury",
                    &at_flag,
                    "--to",
                    &payee,
                    "--amount",
                    amount,
                    "--memo",
                    memo,
                ],
            )
            .await
        }
    };

    // Below the approval amount: executed at once.
    let (code, small) = propose("$2", "invoice 1").await;
    assert_eq!(code, 0, "{small}");
    assert_eq!(small["state"], "executed", "{small}");
    assert!(small["transaction"].as_str().unwrap().starts_with("0x"), "{small}");
    assert_eq!(dev.balance(payee).await, payee_before + usd(2));

    // Above it: waits (exit 0), one owner is not enough, the second executes it.
    let (code, large) = propose("$8", "invoice 2").await;
    assert_eq!(code, 0, "{large}");
    assert_eq!(large["state"], "pending_approval", "{large}");
    assert_eq!(
        (large["approvals"].as_u64(), large["required"].as_u64()),
        (Some(0), Some(2))
    );
    assert!(large["transaction"].is_null());
    let id = large["proposal_id"].as_u64().unwrap().to_string();
    assert_eq!(
        dev.balance(payee).await,
        payee_before + usd(2),
        "nothing left before approval"
    );

    let (first_key, second_key) = (key_file(&dev, 3), key_file(&dev, 4));
    let (code, first) = treasury(
        &dev,
        &["approve", &id, "--treasury", &at_flag, "--key-file", &first_key],
    )
    .await;
    assert_eq!(code, 0, "{first}");
    assert_eq!(first["state"], "pending_approval", "{first}");
    assert_eq!(
        (first["approvals"].as_u64(), first["required"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(dev.balance(payee).await, payee_before + usd(2));

    let (code, second) = treasury(
        &dev,
        &["approve", &id, "--treasury", &at_flag, "--key-file", &second_key],
    )
    .await;
    assert_eq!(code, 0, "{second}");
    assert_eq!(second["state"], "executed", "{second}");
    assert_eq!(second["approvals"].as_u64(), Some(2));
    let executed_in = second["transaction"].as_str().unwrap().to_owned();
    assert!(executed_in.starts_with("0x"), "{second}");

    // The proposal read back later names the same executing transaction.
    let (code, shown) = treasury(&dev, &["proposal", &id, "--treasury", &at_flag]).await;
    assert_eq!(code, 0, "{shown}");
    assert_eq!(shown["transaction"].as_str(), Some(executed_in.as_str()));

    // $10 of $12 left today: $3 more is refused by the daily cap, before anything is sent.
    let (code, refused) = propose("$3", "invoice 3").await;
    assert_eq!(code, 3, "{refused}");
    assert_eq!(refused["error"], "daily_cap", "{refused}");

    // An owner's key cannot approve twice, and a stranger's cannot approve at all.
    let (code, again) = treasury(
        &dev,
        &["approve", &id, "--treasury", &at_flag, "--key-file", &second_key],
    )
    .await;
    assert_eq!((code, again["error"].as_str()), (2, Some("wrong_state")), "{again}");
    let stranger_key = key_file(&dev, 8);
    let (code, stranger) = treasury(
        &dev,
        &["approve", &id, "--treasury", &at_flag, "--key-file", &stranger_key],
    )
    .await;
    assert_eq!(
        (code, stranger["error"].as_str()),
        (2, Some("not_allowed")),
        "{stranger}"
    );

    assert_eq!(dev.balance(payee).await, payee_before + usd(10));
    assert_eq!(dev.balance(at).await, treasury_before - usd(10));
    let remaining = Treasury::new(at, dev.provider.clone())
        .remainingDailyAllowance()
        .call()
        .await
        .unwrap();
    assert_eq!(remaining, usd(2));
    let (code, policy) = treasury(&dev, &["policy", "--treasury", &at_flag]).await;
    assert_eq!(code, 0, "{policy}");
    assert_eq!(policy["remaining_today"], usd(2).to_string());
    assert_eq!(policy["approval_threshold"], (usd(5) + U256::from(1u8)).to_string());
}

async fn call_tool(
    client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    tool: &str,
    arguments: Value,
) -> CallToolResult {
    let params =
        CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments.as_object().cloned().unwrap_or_default());
    client
        .call_tool(params)
        .await
        .expect("a tool result, not a protocol error")
}

#[tokio::test]
async fn mcp_proposes_from_the_treasury_and_reports_needs_approval_until_two_owners_approve() {
    let dev = Dev::start().await;
    let at = create_treasury(&dev, "$100", "$10", "$5").await;
    fund(&dev, 6, at, usd(50)).await;
    let config = dev.dir.join("buyer.toml");
    std::fs::write(&config, format!("[wallet]\ntreasury = \"{at}\"\n")).unwrap();
    let config = config.display().to_string();
    let payee = account(&dev, 7).0;
    let payee_before = dev.balance(payee).await;
    let client = dev.mcp_stdio(&dev.ledger("spend"), &["--config", &config]).await;

    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for want in ["treasury_status", "propose_payment", "proposal_status", "x402_fetch"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.contains("approve")),
        "no tool approves: {names:?}"
    );

    let status = call_tool(&client, "treasury_status", json!({})).await;
    assert_ne!(status.is_error, Some(true), "{status:?}");
    let status = status.structured_content.unwrap();
    assert_eq!(status["balance"], usd(50).to_string(), "{status}");
    assert_eq!(status["address"].as_str().unwrap().parse::<Address>().unwrap(), at);

    // x402_fetch pays from the treasury too (the price is below the approval amount).
    let treasury_before = dev.balance(at).await;
    let fetched = call_tool(&client, "x402_fetch", json!({"url": dev.state["paid_url"]})).await;
    assert_ne!(fetched.is_error, Some(true), "{fetched:?}");
    assert_eq!(dev.balance(at).await, treasury_before - dev.price());

    let small = call_tool(
        &client,
        "propose_payment",
        json!({"to": payee, "amount": "$2", "memo": "a"}),
    )
    .await;
    assert_ne!(small.is_error, Some(true), "{small:?}");
    assert_eq!(small.structured_content.unwrap()["state"], "executed");

    let large = call_tool(
        &client,
        "propose_payment",
        json!({"to": payee, "amount": "$8", "memo": "b"}),
    )
    .await;
    assert_eq!(large.is_error, Some(true), "{large:?}");
    let large = large.structured_content.unwrap();
    assert_eq!(large["error"], "needs_approval", "{large}");
    assert_eq!(large["missing"], 2, "{large}");
    let id = large["proposal_id"].as_u64().unwrap();

    let over = call_tool(&client, "propose_payment", json!({"to": payee, "amount": "$11"})).await;
    assert_eq!(over.is_error, Some(true));
    assert_eq!(over.structured_content.unwrap()["error"], "per_tx_cap");

    approve_by(&dev, at, id, &[3, 5]).await;
    let shown = call_tool(&client, "proposal_status", json!({"proposal_id": id})).await;
    assert_ne!(shown.is_error, Some(true), "{shown:?}");
    let shown = shown.structured_content.unwrap();
    assert_eq!(shown["state"], "executed", "{shown}");
    assert!(shown["transaction"].as_str().unwrap().starts_with("0x"), "{shown}");
    assert_eq!(dev.balance(payee).await, payee_before + usd(10));

    // An owner's approval can be withdrawn; without M approvals `execute` is refused and nothing moves.
    let (code, waiting) = treasury(
        &dev,
        &[
            "propose",
            "--treasury",
            &at.to_string(),
            "--to",
            &payee.to_string(),
            "--amount",
            "$7",
        ],
    )
    .await;
    assert_eq!(
        (code, waiting["state"].as_str()),
        (0, Some("pending_approval")),
        "{waiting}"
    );
    let id = waiting["proposal_id"].as_u64().unwrap().to_string();
    let owner = key_file(&dev, 4);
    let (_, approved) = treasury(
        &dev,
        &["approve", &id, "--treasury", &at.to_string(), "--key-file", &owner],
    )
    .await;
    assert_eq!(approved["approvals"].as_u64(), Some(1), "{approved}");
    let (code, revoked) = treasury(
        &dev,
        &["revoke", &id, "--treasury", &at.to_string(), "--key-file", &owner],
    )
    .await;
    assert_eq!(code, 0, "{revoked}");
    assert_eq!(
        (revoked["state"].as_str(), revoked["approvals"].as_u64()),
        (Some("pending_approval"), Some(0))
    );
    let (code, early) = treasury(&dev, &["execute", &id, "--treasury", &at.to_string()]).await;
    assert_eq!((code, early["error"].as_str()), (2, Some("wrong_state")), "{early}");
    assert_eq!(dev.balance(payee).await, payee_before + usd(10));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn without_a_treasury_address_the_same_cli_scenario_runs_in_local_custody_against_the_spend_ledger() {
    let dev = Dev::start().await;
    let owners = (3..=5)
        .map(|i| format!("\"{}\"", account(&dev, i).0))
        .collect::<Vec<_>>()
        .join(", ");
    let config = dev.dir.join("local.toml");
    std::fs::write(
        &config,
        format!(
            "[policy]\nmax_per_request = \"$20\"\ndaily_budget = \"$50\"\n\
             [treasury]\nper_tx_cap = \"$10\"\ndaily_cap = \"$12\"\napproval_above = \"$5\"\n\
             owners = [{owners}]\nthreshold = 2\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let ledger = dev.ledger("local");
    let (buyer, payee) = (dev.address("buyer"), account(&dev, 7).0);
    let (buyer_before, payee_before) = (dev.balance(buyer).await, dev.balance(payee).await);
    let local = |args: Vec<String>| {
        let dev = &dev;
        let (config, ledger) = (config.clone(), ledger.clone());
        async move {
            let mut all: Vec<String> = args;
            all.extend(["--config".to_owned(), config, "--ledger".to_owned(), ledger]);
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            treasury(dev, &refs).await
        }
    };
    let propose = |amount: &str| {
        vec![
            "propose".to_owned(),
            "--to".to_owned(),
            payee.to_string(),
            "--amount".to_owned(),
            amount.to_owned(),
        ]
    };

    let (code, small) = local(propose("$2")).await;
    assert_eq!((code, small["state"].as_str()), (0, Some("executed")), "{small}");
    let (code, large) = local(propose("$8")).await;
    assert_eq!(
        (code, large["state"].as_str()),
        (0, Some("pending_approval")),
        "{large}"
    );
    let id = large["proposal_id"].as_u64().unwrap().to_string();
    let approve = |owner: usize| {
        vec![
            "approve".to_owned(),
            id.clone(),
            "--key-file".to_owned(),
            key_file(&dev, owner),
        ]
    };
    let (code, first) = local(approve(3)).await;
    assert_eq!(code, 0, "{first}");
    assert_eq!(
        (
            first["state"].as_str(),
            first["approvals"].as_u64(),
            first["required"].as_u64()
        ),
        (Some("pending_approval"), Some(1), Some(2))
    );
    let (code, second) = local(approve(4)).await;
    assert_eq!((code, second["state"].as_str()), (0, Some("executed")), "{second}");
    assert!(second["transaction"].as_str().unwrap().starts_with("0x"), "{second}");
    let (code, refused) = local(propose("$3")).await;
    assert_eq!((code, refused["error"].as_str()), (3, Some("daily_cap")), "{refused}");
    assert_eq!(dev.balance(payee).await, payee_before + usd(10));
    assert_eq!(dev.balance(buyer).await, buyer_before - usd(10));

    // The MCP server over the same configuration sees the same local treasury and proposals.
    let client = dev.mcp_stdio(&ledger, &["--config", &config]).await;
    let status = call_tool(&client, "treasury_status", json!({})).await;
    assert_eq!(status.structured_content.unwrap()["mode"], "local");
    let shown = call_tool(
        &client,
        "proposal_status",
        json!({"proposal_id": id.parse::<u64>().unwrap()}),
    )
    .await;
    let shown = shown.structured_content.unwrap();
    assert_eq!(shown["state"], "executed", "{shown}");
    assert_eq!(shown["transaction"], second["transaction"]);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_payee_blacklisted_on_the_devnet_usdc_is_refused_before_anything_is_proposed() {
    let dev = Dev::start().await;
    let at = create_treasury(&dev, "$100", "$10", "$5").await;
    fund(&dev, 6, at, usd(20)).await;
    let payee = account(&dev, 7).0;
    let admin: PrivateKeySigner = account(&dev, 0).1.parse().unwrap();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(admin))
        .connect(dev.state["rpc_url"].as_str().unwrap())
        .await
        .unwrap();
    let receipt = USDC::new(protocol::network::ARC_USDC, &provider)
        .blacklist(payee)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let (treasury_before, payee_before) = (dev.balance(at).await, dev.balance(payee).await);
    let ledger = format!("sqlite://{}", dev.dir.join("treasury-audit.db").display());
    let (code, refused) = treasury(
        &dev,
        &[
            "propose",
            "--treasury",
            &at.to_string(),
            "--to",
            &payee.to_string(),
            "--amount",
            "$1",
            "--memo",
            "to a listed payee",
            "--ledger",
            &ledger,
        ],
    )
    .await;
    assert_eq!(code, 8, "{refused}");
    assert_eq!(refused["error"], "compliance_blocked", "{refused}");
    let on_chain = Treasury::new(at, &provider);
    assert_eq!(
        on_chain.proposalCount().call().await.unwrap(),
        U256::ZERO,
        "nothing proposed"
    );
    assert_eq!(dev.balance(at).await, treasury_before);
    assert_eq!(dev.balance(payee).await, payee_before);
    // The decision is in the audit table of the ledger the command was given.
    let audit = agents::buyer::spend_ledger::SpendLedger::open(&ledger).await.unwrap();
    let rows = agents::compliance::audit::since(&audit, 0, 100).await.unwrap();
    let payee_text = payee.to_string().to_lowercase();
    assert!(
        rows.iter()
            .any(|row| row.address.to_lowercase() == payee_text && row.decision == "blocked"),
        "{rows:?}"
    );
}
