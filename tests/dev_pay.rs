//! The whole loop with the real binary as separate processes: `nerdcabal dev --state-file` brings up devnet,
//! facilitator, proxy and demo API; `nerdcabal pay` pays the priced route (balances asserted on chain); a
//! `--max` below the price is refused before anything is signed; a daily budget runs out mid-sequence; a
//! v1-only server is paid with `X-PAYMENT`; a paid retry whose first answer is lost resends the same payment
//! and is charged once. SIGTERM leaves nothing running.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use common::dev::Dev;
use serde_json::Value;

async fn spend_rows(ledger: &str) -> Vec<agents::buyer::spend_ledger::SpendRecord> {
    let ledger = agents::buyer::spend_ledger::SpendLedger::open(ledger).await.unwrap();
    ledger.recent(100).await.unwrap()
}

#[tokio::test]
async fn dev_then_pay_moves_the_price_on_chain_and_sigterm_stops_everything() {
    let mut dev = Dev::start().await;
    let (buyer, seller, price) = (dev.address("buyer"), dev.address("seller"), dev.price());
    let (buyer_before, seller_before) = (dev.balance(buyer).await, dev.balance(seller).await);
    let ledger = dev.ledger("spend");
    let paid_url = dev.state["paid_url"].as_str().unwrap().to_owned();

    let (code, stdout, stderr) = dev.pay(&ledger, &[&paid_url]).await;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    let body: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(body["city"], "paris");
    assert!(stderr.contains("transaction 0x"), "{stderr}");
    assert_eq!(dev.balance(buyer).await, buyer_before - price);
    assert_eq!(dev.balance(seller).await, seller_before + price);

    // --json: one object with the body and the receipt.
    let (code, stdout, _) = dev.pay(&ledger, &["--json", &paid_url]).await;
    assert_eq!(code, 0);
    let document: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(document["status"], 200);
    assert_eq!(document["body"]["city"], "paris");
    let tx = document["receipt"]["transaction"].as_str().unwrap().to_owned();
    assert_eq!(dev.balance(seller).await, seller_before + price * U256::from(2));
    let rows = spend_rows(&ledger).await;
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.state == "settled"));
    assert!(rows.iter().any(|r| r.tx_hash.as_deref() == Some(tx.as_str())));

    // The free route costs nothing.
    let free_url = dev.state["free_url"].as_str().unwrap().to_owned();
    let (code, stdout, stderr) = dev.pay(&ledger, &[&free_url]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\"ok\""), "{stdout}");
    assert!(stderr.contains("nothing paid"), "{stderr}");

    // SIGTERM: exit 0, state file gone, the chain gone.
    let _ = Command::new("kill")
        .args(["-TERM", &dev.child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = dev.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "nerdcabal dev did not stop within 20 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    assert!(!dev.state_file.exists(), "the state file is removed");
    assert!(dev.provider.get_block_number().await.is_err(), "anvil stopped");
    let proxy_url = dev.state["proxy_url"].as_str().unwrap();
    assert!(reqwest::get(proxy_url).await.is_err(), "the proxy stopped");
}

#[tokio::test]
async fn a_max_below_the_price_is_refused_before_anything_is_signed() {
    let dev = Dev::start().await;
    let buyer = dev.address("buyer");
    let before = dev.balance(buyer).await;
    let ledger = dev.ledger("max");
    let paid_url = dev.state["paid_url"].as_str().unwrap().to_owned();
    let (code, _, stderr) = dev.pay(&ledger, &["--max", "$0.0005", &paid_url]).await;
    assert_eq!(code, agents::buyer::pay_command::exit::OVER_BUDGET, "{stderr}");
    assert!(stderr.contains("over_budget"), "{stderr}");
    assert!(spend_rows(&ledger).await.is_empty(), "nothing was signed or recorded");
    assert_eq!(dev.balance(buyer).await, before);
    // The proxy saw no payment at all, only the unpaid request.
    let metrics = reqwest::get(format!("{}/metrics", dev.state["admin_url"].as_str().unwrap()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("outcome=\"payment_required\"} 1"), "{metrics}");
    assert!(!metrics.contains("outcome=\"paid\""), "{metrics}");
}

#[tokio::test]
async fn a_daily_budget_runs_out_mid_sequence() {
    let dev = Dev::start().await;
    let seller = dev.address("seller");
    let before = dev.balance(seller).await;
    let ledger = dev.ledger("daily");
    let paid_url = dev.state["paid_url"].as_str().unwrap().to_owned();
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(dev.pay(&ledger, &["--daily-budget", "$0.0025", &paid_url]).await.0);
    }
    assert_eq!(codes, [0, 0, agents::buyer::pay_command::exit::OVER_BUDGET]);
    assert_eq!(dev.balance(seller).await, before + dev.price() * U256::from(2));
    let (_, stdout, _) = dev
        .pay(&ledger, &["--daily-budget", "$0.0025", "--json", &paid_url])
        .await;
    let refusal: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(refusal["error"], "over_budget");
    assert_eq!(refusal["scope"], "daily");
    assert_eq!(refusal["spent"], "$0.002");
    assert_eq!(refusal["limit"], "$0.0025");
}

/// A seller that speaks only v1: the JSON 402 body, `X-PAYMENT`, `X-PAYMENT-RESPONSE`; it verifies and settles
/// through the stack's facilitator.
async fn v1_only_server(facilitator: String, pay_to: Address) -> String {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let resource = format!("{url}/v1data");
    let requirement = serde_json::json!({
        "scheme": "exact", "network": "arc-devnet", "maxAmountRequired": "2000", "resource": resource,
        "description": "v1 data", "mimeType": "application/json", "payTo": pay_to.to_checksum(None),
        "maxTimeoutSeconds": 60, "asset": protocol::network::ARC_USDC.to_checksum(None),
        "extra": {"name": "USDC", "version": "2"}
    });
    let handler = move |headers: HeaderMap| {
        let (facilitator, requirement) = (facilitator.clone(), requirement.clone());
        async move {
            let Some(payment) = headers.get("x-payment") else {
                let body = serde_json::json!({"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": [requirement]});
                return (StatusCode::PAYMENT_REQUIRED, axum::Json(body)).into_response();
            };
            let payload: Value =
                serde_json::from_slice(&protocol::header::decode_base64(payment.as_bytes()).unwrap()).unwrap();
            let request =
                serde_json::json!({"x402Version": 1, "paymentPayload": payload, "paymentRequirements": requirement});
            let http = reqwest::Client::new();
            let verdict: Value = http
                .post(format!("{facilitator}/verify"))
                .json(&request)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if verdict["isValid"] != true {
                return (StatusCode::PAYMENT_REQUIRED, axum::Json(verdict)).into_response();
            }
            let settled: protocol::SettleResponse = http
                .post(format!("{facilitator}/settle"))
                .json(&request)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let receipt = protocol::header::encode(&settled);
            (
                [("x-payment-response", receipt)],
                axum::Json(serde_json::json!({"v1": "content"})),
            )
                .into_response()
        }
    };
    let app = axum::Router::new().route("/v1data", axum::routing::get(handler));
    tokio::spawn(async move { axum::serve(listener, app).await });
    resource
}

#[tokio::test]
async fn a_v1_only_server_is_paid_with_x_payment() {
    let dev = Dev::start().await;
    let seller = dev.address("seller");
    let before = dev.balance(seller).await;
    let url = v1_only_server(dev.state["facilitator_url"].as_str().unwrap().to_owned(), seller).await;
    let ledger = dev.ledger("v1");
    let (code, stdout, stderr) = dev.pay(&ledger, &["--json", &url]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let document: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(document["body"]["v1"], "content");
    assert!(document["receipt"]["transaction"].as_str().unwrap().starts_with("0x"));
    assert_eq!(dev.balance(seller).await, before + U256::from(2_000));
}

/// A relay in front of the proxy that forwards the first paid request and then drops the connection without
/// an answer; later requests pass through. Records every payment header it saw.
async fn lossy_relay(target: String) -> (String, Arc<Mutex<Vec<String>>>) {
    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen_in = seen.clone();
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (http, target, seen, dropped) = (http.clone(), target.clone(), seen_in.clone(), dropped.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<Incoming>| {
                    let (http, target, seen, dropped) = (http.clone(), target.clone(), seen.clone(), dropped.clone());
                    async move {
                        let payment = request
                            .headers()
                            .get("payment-signature")
                            .map(|v| v.to_str().unwrap().to_owned());
                        let mut forward = http.get(format!("{target}{}", request.uri().path()));
                        if let Some(payment) = &payment {
                            seen.lock().unwrap().push(payment.clone());
                            forward = forward.header("payment-signature", payment);
                        }
                        let answer = forward.send().await.map_err(|e| e.to_string())?;
                        if payment.is_some() && !dropped.swap(true, std::sync::atomic::Ordering::SeqCst) {
                            let _ = answer.bytes().await;
                            return Err("the answer is lost on the way back".to_owned());
                        }
                        let mut response = hyper::Response::builder().status(answer.status().as_u16());
                        for (name, value) in answer.headers() {
                            response = response.header(name.as_str(), value.as_bytes());
                        }
                        let body = answer.bytes().await.map_err(|e| e.to_string())?;
                        response
                            .body(http_body_util::Full::new(body))
                            .map_err(|e| e.to_string())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, seen)
}

#[tokio::test]
async fn a_paid_retry_whose_answer_is_lost_resends_the_same_payment_gets_the_content_and_is_charged_once() {
    let dev = Dev::start().await;
    let (buyer, seller, price) = (dev.address("buyer"), dev.address("seller"), dev.price());
    let (buyer_before, seller_before) = (dev.balance(buyer).await, dev.balance(seller).await);
    let (relay, seen) = lossy_relay(dev.state["proxy_url"].as_str().unwrap().to_owned()).await;
    let ledger = dev.ledger("lost");
    let url = format!("{relay}/weather/paris");
    let (code, stdout, stderr) = dev.pay(&ledger, &["--json", &url]).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one paid attempt and one resend: {stderr}");
    assert_eq!(seen[0], seen[1], "the resend carries the same signed payment");
    assert_eq!(dev.balance(seller).await, seller_before + price, "charged once");
    assert_eq!(dev.balance(buyer).await, buyer_before - price);
    // The proxy kept the one answer the payment bought and sends it again to the resend.
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let document: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(document["status"], 200, "{document}");
    assert!(
        document["receipt"]["transaction"].as_str().unwrap().starts_with("0x"),
        "{document}"
    );
    assert_eq!(document["body"]["city"], "paris", "{document}");
    let rows = spend_rows(&ledger).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, "settled");
}

#[tokio::test]
async fn the_dev_state_file_is_a_devnet_state_file_the_facilitator_command_serves() {
    let dev = Dev::start().await;
    // What `nerdcabal proxy --devnet` and `nerdcabal facilitator --devnet` read.
    let devnet = contracts::DevnetState::read(&dev.state_file).unwrap();
    assert_eq!(devnet.rpc_url, dev.state["rpc_url"].as_str().unwrap());
    assert_eq!(devnet.network, dev.state["network"].as_str().unwrap());
    assert_eq!(devnet.network, format!("eip155:{}", devnet.chain_id));
    assert_eq!(devnet.accounts[1].address, dev.address("buyer"));
    assert_eq!(devnet.accounts[2].address, dev.address("seller"));

    let dir = common::temp_dir("dev-facilitator");
    let database_url = format!("sqlite://{}", dir.join("ledger.db").display());
    let settlement_key = devnet.accounts.last().unwrap().private_key;
    let facilitator = common::FacilitatorProcess::start(&dev.state_file, &database_url, settlement_key, "", &dir).await;
    let supported: Value = reqwest::get(format!("{}/supported", facilitator.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds = supported["kinds"].as_array().unwrap();
    assert!(
        kinds.iter().any(|k| k["network"] == devnet.network.as_str()),
        "{supported}"
    );
    drop(facilitator);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `nerdcabal spend reconcile --devnet <state> --ledger <ledger> --json`: exit code and the report.
async fn reconcile(dev: &Dev, ledger: &str) -> (i32, Value) {
    reconcile_on(&dev.state_file, ledger).await
}

async fn reconcile_on(state_file: &std::path::Path, ledger: &str) -> (i32, Value) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_nerdcabal"))
        .args(["spend", "reconcile", "--json", "--ledger", ledger, "--devnet"])
        .arg(state_file)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("JSON report: {stdout}"));
    (output.status.code().unwrap_or(-1), report)
}

/// A seller on the devnet's terms ($0.001 to `pay_to`) that misbehaves after taking the signature:
/// `/taken` settles it through the stack's facilitator and answers 502 without a receipt; `/lost` never
/// settles it and answers 500; `/timeout` answers 402 with `facilitator_timeout`; `/long` asks for an
/// authorization valid for an hour.
async fn unreliable_seller(dev: &Dev, pay_to: Address) -> String {
    use axum::http::{HeaderMap, StatusCode, Uri};
    use axum::response::IntoResponse;
    use protocol::header as codec;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let facilitator = dev.state["facilitator_url"].as_str().unwrap().to_owned();
    let network = dev.state["network"].as_str().unwrap().to_owned();
    let handler = move |uri: Uri, headers: HeaderMap| {
        let (facilitator, network) = (facilitator.clone(), network.clone());
        async move {
            let requirement = protocol::v2::PaymentRequirements {
                scheme: "exact".into(),
                network: network.clone(),
                amount: U256::from(1_000),
                asset: protocol::network::ARC_USDC,
                pay_to,
                max_timeout_seconds: if uri.path() == "/long" { 3_600 } else { 60 },
                extra: Some(protocol::Extra::eip712("USDC", "2")),
            };
            let Some(payment) = headers.get(codec::PAYMENT_SIGNATURE) else {
                let required = protocol::v2::PaymentRequired {
                    x402_version: protocol::version::Version,
                    error: None,
                    resource: protocol::ResourceInfo {
                        url: uri.path().to_owned(),
                        description: None,
                        mime_type: None,
                    },
                    accepts: vec![requirement],
                    extensions: None,
                };
                return (
                    StatusCode::PAYMENT_REQUIRED,
                    [(codec::PAYMENT_REQUIRED, codec::encode(&required))],
                )
                    .into_response();
            };
            match uri.path() {
                "/taken" => {
                    let payload = codec::decode_payment(payment.as_bytes()).unwrap();
                    let request = serde_json::json!({
                        "x402Version": 2, "paymentPayload": payload, "paymentRequirements": requirement
                    });
                    let settled: protocol::SettleResponse = reqwest::Client::new()
                        .post(format!("{facilitator}/settle"))
                        .json(&request)
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    assert!(settled.success, "{settled:?}");
                    (StatusCode::BAD_GATEWAY, "settled, but the answer is lost").into_response()
                }
                "/timeout" => {
                    let failed = protocol::SettleResponse {
                        success: false,
                        error_reason: Some("facilitator_timeout".into()),
                        error_message: None,
                        payer: None,
                        transaction: String::new(),
                        network,
                        amount: None,
                    };
                    (
                        StatusCode::PAYMENT_REQUIRED,
                        [(codec::PAYMENT_RESPONSE, codec::encode(&failed))],
                        axum::Json(serde_json::json!({"error": "the facilitator did not answer in time"})),
                    )
                        .into_response()
                }
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "upstream failed").into_response(),
            }
        }
    };
    let app = axum::Router::new().fallback(handler);
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn unproven_payments_stay_counted_until_the_chain_proves_them_and_spend_reconcile_asks_it() {
    use alloy::providers::ext::AnvilApi;
    let dev = Dev::start().await;
    let (buyer, seller) = (dev.address("buyer"), dev.address("seller"));
    let seller_before = dev.balance(seller).await;
    let shop = unreliable_seller(&dev, seller).await;
    let ledger = dev.ledger("unproven");
    let budget = ["--daily-budget", "$0.0035"];
    let pay = |path: &'static str| {
        let url = format!("{shop}{path}");
        let (dev, ledger) = (&dev, &ledger);
        async move { dev.pay(ledger, &[budget[0], budget[1], "--json", &url]).await }
    };

    // Three payments nobody can call settled or unsettled from the answers: all three stay counted.
    let (code, stdout, _) = pay("/taken").await;
    assert_eq!(code, agents::buyer::pay_command::exit::HTTP_ERROR, "{stdout}");
    assert_eq!(
        dev.balance(seller).await,
        seller_before + U256::from(1_000),
        "the seller did settle it"
    );
    let (code, stdout, _) = pay("/lost").await;
    assert_eq!(code, agents::buyer::pay_command::exit::HTTP_ERROR, "{stdout}");
    let (code, stdout, _) = pay("/timeout").await;
    assert_eq!(code, agents::buyer::pay_command::exit::REFUSED, "{stdout}");
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap()["reason"],
        "facilitator_timeout"
    );
    let rows = spend_rows(&ledger).await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.state == "pending"), "{rows:?}");
    let paid_url = dev.state["paid_url"].as_str().unwrap().to_owned();
    let (code, stdout, _) = dev.pay(&ledger, &[budget[0], budget[1], "--json", &paid_url]).await;
    assert_eq!(code, agents::buyer::pay_command::exit::OVER_BUDGET, "{stdout}");
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap()["spent"], "$0.003");
    // An authorization valid longer than the policy's 300 s is not signed at all.
    let (code, stdout, _) = pay("/long").await;
    assert_eq!(code, agents::buyer::pay_command::exit::UNPAYABLE, "{stdout}");
    assert_eq!(spend_rows(&ledger).await.len(), 3);

    // A chain that does not answer decides nothing: exit 6, and the rows stay as they are.
    let mut dead = dev.state.clone();
    dead["rpc_url"] = Value::from(format!("http://127.0.0.1:{}", common::free_port()));
    let dead_file = dev.dir.join("dead-rpc.json");
    std::fs::write(&dead_file, dead.to_string()).unwrap();
    let (code, error) = reconcile_on(&dead_file, &ledger).await;
    assert_eq!(
        (code, &error["error"]),
        (agents::buyer::pay_command::exit::NETWORK, &Value::from("network_error")),
        "{error}"
    );
    assert!(spend_rows(&ledger).await.iter().all(|r| r.state == "pending"));

    // The chain knows the authorization `/taken` used; the other two are unused but still valid.
    let (code, report) = reconcile(&dev, &ledger).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        (
            &report["checked"],
            &report["settled"],
            &report["unsettled"],
            &report["pending"]
        ),
        (&Value::from(3), &Value::from(1), &Value::from(0), &Value::from(2)),
        "{report}"
    );
    let state_of = |rows: &[agents::buyer::spend_ledger::SpendRecord], path: &str| {
        let row = rows.iter().find(|r| r.url.ends_with(path)).unwrap();
        (row.state.clone(), row.reason.clone().unwrap_or_default())
    };
    let rows = spend_rows(&ledger).await;
    assert_eq!(
        state_of(&rows, "/taken"),
        ("settled".into(), "authorization_used".into())
    );
    assert_eq!(state_of(&rows, "/lost").0, "pending");

    // Past their validBefore on the chain's clock, they can never settle: the cheap pass `pay` makes as it
    // starts finds them, and their amounts stop counting.
    dev.provider.anvil_increase_time(3_600).await.unwrap();
    dev.provider.evm_mine(None).await.unwrap();
    let free_url = dev.state["free_url"].as_str().unwrap().to_owned();
    let (code, _, stderr) = dev.pay(&ledger, &[&free_url]).await;
    assert_eq!(code, 0, "{stderr}");
    let rows = spend_rows(&ledger).await;
    assert_eq!(
        state_of(&rows, "/lost"),
        ("unsettled".into(), "authorization_expired_unused".into())
    );
    assert_eq!(
        state_of(&rows, "/timeout"),
        ("unsettled".into(), "authorization_expired_unused".into())
    );
    let spent = agents::buyer::spend_ledger::SpendLedger::open(&ledger)
        .await
        .unwrap()
        .spent_since(
            buyer,
            agents::buyer::spend_ledger::day_start(agents::buyer::spend_ledger::unix_now()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(spent, 1_000, "only the settled payment counts");
    let (code, report) = reconcile(&dev, &ledger).await;
    assert_eq!((code, &report["checked"]), (0, &Value::from(0)), "{report}");
}

/// A JSON-RPC relay in front of anvil that loses `eth_sendRawTransaction`: `forward` decides whether the
/// transaction still reaches the node; the answer never comes back. Everything else passes through.
async fn rpc_losing_broadcasts(target: String, forward: Arc<std::sync::atomic::AtomicBool>) -> String {
    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (http, target, forward) = (http.clone(), target.clone(), forward.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<Incoming>| {
                    let (http, target, forward) = (http.clone(), target.clone(), forward.clone());
                    async move {
                        use http_body_util::BodyExt;
                        let body = request
                            .into_body()
                            .collect()
                            .await
                            .map_err(|e| e.to_string())?
                            .to_bytes();
                        let broadcast = String::from_utf8_lossy(&body).contains("eth_sendRawTransaction");
                        if broadcast && !forward.load(std::sync::atomic::Ordering::SeqCst) {
                            return Err("the broadcast is lost on the way".to_owned());
                        }
                        let answer = http
                            .post(&target)
                            .header("content-type", "application/json")
                            .body(body)
                            .send()
                            .await
                            .map_err(|e| e.to_string())?;
                        let bytes = answer.bytes().await.map_err(|e| e.to_string())?;
                        if broadcast {
                            return Err("the node's answer is lost on the way back".to_owned());
                        }
                        hyper::Response::builder()
                            .header("content-type", "application/json")
                            .body(http_body_util::Full::new(bytes))
                            .map_err(|e| e.to_string())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    url
}

#[tokio::test]
async fn a_transfer_whose_broadcast_got_no_answer_is_pending_until_found_by_its_hash_or_its_nonce_is_taken() {
    use agents::buyer::direct_transfer::{TransferRequest, send};
    use agents::buyer::spend_ledger::{OpenScope, SpendLedger};
    use agents::buyer::spend_reconcile::reconcile;
    let dir = common::temp_dir("transfer-lost");
    let (devnet, _) = common::devnet(&dir).await;
    let key = devnet.signer(1).unwrap().clone();
    let to = devnet.signer(2).unwrap().address();
    let forward = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let relay = rpc_losing_broadcasts(devnet.rpc_url().to_owned(), forward.clone()).await;
    let ledger = SpendLedger::open(&format!("sqlite://{}", dir.join("spend.db").display()))
        .await
        .unwrap();
    let policy = agents::buyer::spending_policy::SpendingPolicy::default();
    let network = devnet.state().network.clone();
    let request = |rpc_url| TransferRequest {
        rpc_url,
        network: &network,
        asset: protocol::network::ARC_USDC,
        to,
        amount: U256::from(5_000),
        memo: None,
        screen: None,
    };
    let before = common::usdc_balance(&devnet, to).await;

    // The node took the transaction, but its answer was lost: pending, with the hash known before broadcast.
    let error = send(&key, &policy, &ledger, request(&relay)).await.unwrap_err();
    assert!(error.to_string().contains("it may still be mined"), "{error}");
    let rows = ledger.recent(10).await.unwrap();
    assert_eq!(
        (rows[0].state.as_str(), rows[0].reason.as_deref()),
        ("pending", Some("broadcast_unknown"))
    );
    let mined = rows[0].tx_hash.clone().unwrap();
    assert_eq!(common::usdc_balance(&devnet, to).await, before + U256::from(5_000));
    assert_eq!(
        ledger.spent_since(key.address(), 0, None).await.unwrap(),
        5_000,
        "counted meanwhile"
    );
    let report = reconcile(&ledger, devnet.rpc_url(), &network, OpenScope::All)
        .await
        .unwrap();
    assert_eq!((report.checked, report.settled), (1, 1), "{report:?}");
    let row = ledger.recent(10).await.unwrap().remove(0);
    assert_eq!(
        (row.state.as_str(), row.reason.as_deref(), row.tx_hash.as_deref()),
        ("settled", Some("transaction_mined"), Some(mined.as_str()))
    );

    // Lost before it reached the node: pending until another transaction takes its nonce.
    forward.store(false, std::sync::atomic::Ordering::SeqCst);
    send(&key, &policy, &ledger, request(&relay)).await.unwrap_err();
    let report = reconcile(&ledger, devnet.rpc_url(), &network, OpenScope::All)
        .await
        .unwrap();
    assert_eq!((report.checked, report.pending), (1, 1), "not decided yet: {report:?}");
    // (Another amount: the same transfer again would be the very same signed bytes, hash and all.)
    let mut other = request(devnet.rpc_url());
    other.amount = U256::from(7_000);
    let replacement = send(&key, &policy, &ledger, other).await.unwrap();
    let report = reconcile(&ledger, devnet.rpc_url(), &network, OpenScope::All)
        .await
        .unwrap();
    assert_eq!((report.checked, report.unsettled), (1, 1), "{report:?}");
    assert_eq!(report.payments[0].reason, "nonce_used_by_another_transaction");
    assert_eq!(common::usdc_balance(&devnet, to).await, before + U256::from(12_000));
    assert_eq!(
        ledger.spent_since(key.address(), 0, None).await.unwrap(),
        12_000,
        "the mined transfer and {} count; the replaced one does not",
        replacement.transaction
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn concurrent_pay_processes_on_one_postgresql_ledger_never_overspend() {
    let dev = Dev::start().await;
    let seller = dev.address("seller");
    let before = dev.balance(seller).await;
    let (db, ledger) = common::postgres_database("concurrent_pay").await;
    // Create the schema once, so the processes race on payments and not on migrations.
    drop(agents::buyer::spend_ledger::SpendLedger::open(&ledger).await.unwrap());
    let paid_url = dev.state["paid_url"].as_str().unwrap().to_owned();
    let args = ["--daily-budget", "$0.0025", paid_url.as_str()];
    let pays: Vec<_> = (0..8).map(|_| dev.pay(&ledger, &args)).collect();
    let mut codes: Vec<i32> = futures_util::future::join_all(pays)
        .await
        .into_iter()
        .map(|(c, _, _)| c)
        .collect();
    codes.sort();
    let rows = spend_rows(&ledger).await;
    common::drop_postgres(&db).await;
    assert_eq!(codes, [0, 0, 3, 3, 3, 3, 3, 3], "two fit the budget");
    assert_eq!(dev.balance(seller).await, before + dev.price() * U256::from(2));
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.state == "settled"), "{rows:?}");
}
