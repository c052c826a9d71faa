//! The facilitator as separate processes: a crash after a settlement was submitted (and even lost by the
//! node) ends confirmed, once, after a restart — for a lone payment and for a whole batch reserved in one
//! commit; two replicas on one PostgreSQL database settling the same
//! payments concurrently settle each exactly once; and a public listener with no API key is refused unless
//! started with `--allow-unauthenticated`.

mod common;

use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::providers::ext::AnvilApi;
use common::{FacilitatorProcess, payment, usdc_balance};
use serde_json::Value;

async fn post(client: &reqwest::Client, url: &str, body: &impl serde::Serialize) -> Value {
    client.post(url).json(body).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn a_crash_after_submission_ends_confirmed_once_after_restart() {
    let dir = common::temp_dir("crash");
    let (devnet, state_file) = common::devnet(&dir).await;
    let database_url = format!("sqlite://{}", dir.join("ledger.db").display());
    let settlement_key = devnet.state().accounts[9].private_key;
    let toml = "[settlement]\nreceipt_timeout_ms = 300\n";
    let client = reqwest::Client::new();
    let buyer = devnet.signer(1).unwrap().clone();
    let seller = devnet.signer(2).unwrap().address();
    let (buyer0, seller0) = (
        usdc_balance(&devnet, buyer.address()).await,
        usdc_balance(&devnet, seller).await,
    );

    let mut first = FacilitatorProcess::start(&state_file, &database_url, settlement_key, toml, &dir).await;
    // The chain stops mining: the settlement is submitted but no receipt can come.
    devnet.admin_provider().anvil_set_auto_mine(false).await.unwrap();
    let request = payment(&devnet, &buyer, seller, 10_000).await;
    let pending = post(&client, &format!("{}/settle", first.url), &request).await;
    assert_eq!(pending["success"], false, "{pending}");
    assert_eq!(pending["errorReason"], "settlement_pending", "{pending}");
    let tx: alloy::primitives::B256 = pending["transaction"].as_str().unwrap().parse().unwrap();
    let nonce = match &request {
        protocol::VerifyRequest::V2(r) => r.payment_payload.payload.exact_evm().unwrap().authorization.nonce,
        _ => unreachable!(),
    };
    let status_url = |base: &str| format!("{base}/settlements/{}/{nonce}", buyer.address());
    let status: Value = client
        .get(status_url(&first.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["settlements"][0]["state"], "submitted");

    // Crash hard, and let the node lose the transaction too: only the ledger remembers it.
    first.kill_hard();
    assert_eq!(
        devnet.admin_provider().anvil_drop_transaction(tx).await.unwrap(),
        Some(tx)
    );
    devnet.admin_provider().anvil_set_auto_mine(true).await.unwrap();
    assert_eq!(usdc_balance(&devnet, seller).await, seller0, "nothing settled yet");

    let second = FacilitatorProcess::start(&state_file, &database_url, settlement_key, toml, &dir).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status: Value = client
            .get(status_url(&second.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["settlements"][0]["state"] == "confirmed" {
            assert_eq!(
                status["settlements"][0]["transaction"],
                tx.to_string(),
                "the same transaction, rebroadcast"
            );
            break;
        }
        assert!(Instant::now() < deadline, "not confirmed after restart: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(usdc_balance(&devnet, seller).await, seller0 + U256::from(10_000u64));
    assert_eq!(
        usdc_balance(&devnet, buyer.address()).await,
        buyer0 - U256::from(10_000u64)
    );
    let again = post(&client, &format!("{}/settle", second.url), &request).await;
    assert_eq!(
        (again["success"].clone(), again["transaction"].as_str()),
        (true.into(), Some(tx.to_string().as_str()))
    );
    assert_eq!(
        usdc_balance(&devnet, seller).await,
        seller0 + U256::from(10_000u64),
        "paid once"
    );
    drop(second);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_crash_with_a_whole_batch_in_flight_settles_each_payment_once_after_restart() {
    let dir = common::temp_dir("crash-batch");
    let (devnet, state_file) = common::devnet(&dir).await;
    let database_url = format!("sqlite://{}", dir.join("ledger.db").display());
    let settlement_key = devnet.state().accounts[9].private_key;
    // A window long enough that the three payments below share one batch, whatever the scheduling.
    let toml = "[settlement]\nreceipt_timeout_ms = 300\n[batch]\nenabled = true\nmax_wait_ms = 1000\nmax_items = 3\n";
    let client = reqwest::Client::new();
    let seller = devnet.signer(2).unwrap().address();
    let seller0 = usdc_balance(&devnet, seller).await;
    let first = FacilitatorProcess::start(&state_file, &database_url, settlement_key, toml, &dir).await;
    devnet.admin_provider().anvil_set_auto_mine(false).await.unwrap();
    let mut requests = Vec::new();
    for (i, buyer) in [3usize, 4, 5].into_iter().enumerate() {
        let buyer = devnet.signer(buyer).unwrap().clone();
        requests.push(payment(&devnet, &buyer, seller, 1_000 * (i as u64 + 1)).await);
    }
    let url = format!("{}/settle", first.url);
    let answers = futures_util::future::join_all(requests.iter().map(|r| post(&client, &url, r))).await;
    let mut txs: Vec<&str> = answers.iter().map(|a| a["transaction"].as_str().unwrap()).collect();
    for answer in &answers {
        assert_eq!(answer["errorReason"], "settlement_pending", "{answer}");
    }
    txs.dedup();
    assert_eq!(txs.len(), 1, "one batch transaction for all three: {answers:?}");
    let tx: alloy::primitives::B256 = txs[0].parse().unwrap();

    let mut first = first;
    first.kill_hard();
    assert_eq!(
        devnet.admin_provider().anvil_drop_transaction(tx).await.unwrap(),
        Some(tx)
    );
    devnet.admin_provider().anvil_set_auto_mine(true).await.unwrap();
    assert_eq!(usdc_balance(&devnet, seller).await, seller0, "nothing settled yet");

    let second = FacilitatorProcess::start(&state_file, &database_url, settlement_key, toml, &dir).await;
    let total = U256::from(1_000u64 + 2_000 + 3_000);
    let deadline = Instant::now() + Duration::from_secs(20);
    while usdc_balance(&devnet, seller).await != seller0 + total {
        assert!(Instant::now() < deadline, "the batch was not settled after restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = format!("{}/settle", second.url);
    for request in &requests {
        let again = post(&client, &url, request).await;
        assert_eq!(again["success"], true, "{again}");
        assert_eq!(
            again["transaction"],
            tx.to_string(),
            "the same batch transaction, rebroadcast"
        );
    }
    assert_eq!(usdc_balance(&devnet, seller).await, seller0 + total, "each paid once");
    drop(second);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn two_replicas_on_one_postgres_settle_each_payment_once() {
    let dir = common::temp_dir("replicas");
    let (devnet, state_file) = common::devnet(&dir).await;
    let (db, database_url) = common::postgres_database("replicas").await;
    let toml = "";
    // Each replica has its own settlement key, as a real deployment would.
    let a = FacilitatorProcess::start(
        &state_file,
        &database_url,
        devnet.state().accounts[8].private_key,
        toml,
        &dir,
    )
    .await;
    let b = FacilitatorProcess::start(
        &state_file,
        &database_url,
        devnet.state().accounts[9].private_key,
        toml,
        &dir,
    )
    .await;
    let client = reqwest::Client::new();
    let seller = devnet.signer(2).unwrap().address();
    let seller0 = usdc_balance(&devnet, seller).await;

    let mut requests = Vec::new();
    for i in 0..12 {
        // Buyers are accounts 3..=7: never the seller (2) nor a settlement key (8, 9).
        let buyer = devnet.signer(3 + i % 5).unwrap().clone();
        requests.push(payment(&devnet, &buyer, seller, 1_000 + i as u64).await);
    }
    let mut tasks = Vec::new();
    for request in &requests {
        for url in [&a.url, &b.url, &a.url, &b.url] {
            let (client, url, request) = (client.clone(), format!("{url}/settle"), request.clone());
            tasks.push(tokio::spawn(async move { post(&client, &url, &request).await }));
        }
    }
    let mut by_payment: std::collections::HashMap<String, std::collections::HashSet<String>> = Default::default();
    for (i, task) in tasks.into_iter().enumerate() {
        let answer = task.await.unwrap();
        assert_eq!(answer["success"], true, "{answer}");
        by_payment
            .entry((i / 4).to_string())
            .or_default()
            .insert(answer["transaction"].as_str().unwrap().to_owned());
    }
    assert!(
        by_payment.values().all(|hashes| hashes.len() == 1),
        "one transaction per payment: {by_payment:?}"
    );
    let expected: u64 = (0..12).map(|i| 1_000 + i as u64).sum();
    assert_eq!(
        usdc_balance(&devnet, seller).await,
        seller0 + U256::from(expected),
        "each payment settled once"
    );
    drop((a, b));
    common::drop_postgres(&db).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_public_listener_without_api_keys_needs_allow_unauthenticated() {
    let dir = common::temp_dir("exposed");
    let (devnet, state_file) = common::devnet(&dir).await;
    let port = common::free_port();
    let command = |extra: &[&str]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_nerdcabal"));
        command
            .args(["facilitator", "--devnet"])
            .arg(&state_file)
            .args(extra)
            .env("NERDCABAL_FACILITATOR_LISTEN", format!("0.0.0.0:{port}"))
            .env("DATABASE_URL", format!("sqlite://{}", dir.join("ledger.db").display()))
            .env_remove("NERDCABAL_FACILITATOR_API_KEYS")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        command
    };

    // Refused: it exits at once, saying why and how to opt out; nothing ever listened.
    let refused = tokio::time::timeout(
        Duration::from_secs(30),
        command(&[]).stderr(std::process::Stdio::piped()).output(),
    )
    .await
    .expect("the refused facilitator exits")
    .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--allow-unauthenticated"), "{stderr}");

    // With the flag it serves (on every interface, loopback included).
    let mut allowed = command(&["--allow-unauthenticated"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("http://127.0.0.1:{port}/health")).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(allowed.try_wait().unwrap().is_none(), "exited although allowed");
        assert!(Instant::now() < deadline, "did not answer /health");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = allowed.kill().await;
    drop(devnet);
    let _ = std::fs::remove_dir_all(dir);
}
