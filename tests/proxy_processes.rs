//! The paywall proxy as separate `nerdcabal proxy` processes: two replicas on one PostgreSQL state database
//! given the same payment sixteen times at once run the upstream once, settle once, and answer every copy
//! with the same 200; a proxy SIGKILLed after the upstream answered and before settling delivers the
//! kept answer, settled once, to a resend after it restarts; and a proxy SIGKILLed while its background
//! settler's settles of deferred payments are in flight settles each of them once after it restarts.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use common::{FacilitatorProcess, KillOnDrop, free_port, usdc_balance};
use contracts::Devnet;
use protocol::header as codec;
use protocol::wire::v2;
use tokio::sync::Notify;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await;
    });
    url
}

/// An upstream that counts its calls and answers with a body unique to each call.
async fn counting_upstream() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .fallback(any(|State(calls): State<Arc<AtomicUsize>>| async move {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            axum::Json(serde_json::json!({"data": "the paid content", "call": n, "salt": B256::random()}))
        }))
        .with_state(calls.clone());
    (serve(router).await, calls)
}

/// A running `nerdcabal proxy`, killed when dropped.
struct ProxyProcess {
    _child: KillOnDrop,
    url: String,
    admin: String,
}

impl ProxyProcess {
    async fn start(dir: &Path, devnet_state: &Path, body: &str) -> (Self, u32) {
        let (port, admin_port) = (free_port(), free_port());
        let config = dir.join(format!("proxy-{port}.toml"));
        std::fs::write(
            &config,
            format!("listen = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{admin_port}\"\n{body}"),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_nerdcabal"))
            .args(["proxy", "--config"])
            .arg(&config)
            .arg("--devnet")
            .arg(devnet_state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn proxy");
        let pid = child.id();
        let mut process = ProxyProcess {
            _child: KillOnDrop(child),
            url: format!("http://127.0.0.1:{port}"),
            admin: format!("http://127.0.0.1:{admin_port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{}/health", process.admin)).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(
                process._child.try_wait().unwrap().is_none(),
                "proxy exited during start-up"
            );
            assert!(Instant::now() < deadline, "proxy did not answer /health within 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (process, pid)
    }
}

fn proxy_body(state_database: &str, facilitator: &str, network: &str, seller: Address, upstream: &str) -> String {
    format!(
        "state_database = \"{state_database}\"\nupstream_timeout_ms = 2000\n\
         [facilitator]\nurl = \"{facilitator}\"\ntimeout_ms = 2000\n\
         [defaults]\nnetwork = \"{network}\"\npay_to = \"{seller}\"\n\
         [[route]]\nname = \"data\"\npath = \"/data\"\nupstream = \"{upstream}\"\nprice = \"$0.01\"\n"
    )
}

async fn offer(client: &reqwest::Client, url: &str) -> v2::PaymentRequired {
    let unpaid = client.get(url).send().await.unwrap();
    assert_eq!(unpaid.status(), 402);
    codec::decode_payment_required_v2(unpaid.headers()[codec::PAYMENT_REQUIRED].as_bytes()).unwrap()
}

async fn sign(devnet: &Devnet, offer: &v2::PaymentRequired) -> String {
    let buyer = devnet.signer(1).unwrap().clone();
    let payload = protocol::eip3009::pay(
        &buyer,
        &offer.accepts[0],
        Some(offer.resource.clone()),
        common::now(),
        B256::random(),
    )
    .await
    .unwrap();
    codec::encode(&payload)
}

async fn facilitator(dir: &Path, state_file: &Path, devnet: &Devnet) -> FacilitatorProcess {
    let ledger = format!("sqlite://{}", dir.join("ledger.db").display());
    FacilitatorProcess::start(state_file, &ledger, devnet.state().accounts[9].private_key, "", dir).await
}

#[tokio::test]
async fn two_replicas_on_postgres_serve_sixteen_copies_of_one_payment_with_one_upstream_run() {
    let dir = common::temp_dir("proxy-replicas");
    let (devnet, state_file) = common::devnet(&dir).await;
    let facilitator = facilitator(&dir, &state_file, &devnet).await;
    let (upstream, calls) = counting_upstream().await;
    let (db, state_url) = common::postgres_database("proxy_state").await;
    let seller = devnet.signer(2).unwrap().address();
    let body = proxy_body(&state_url, &facilitator.url, &devnet.state().network, seller, &upstream);
    let (a, _) = ProxyProcess::start(&dir, &state_file, &body).await;
    let (b, _) = ProxyProcess::start(&dir, &state_file, &body).await;
    let client = reqwest::Client::new();
    let seller_before = usdc_balance(&devnet, seller).await;

    let offer = offer(&client, &format!("{}/data", a.url)).await;
    let payment = sign(&devnet, &offer).await;
    let copies = (0..16).map(|i| {
        let url = format!("{}/data", if i % 2 == 0 { &a.url } else { &b.url });
        let request = client.get(url).header(codec::PAYMENT_SIGNATURE, &payment);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let receipt = response
                .headers()
                .get(codec::PAYMENT_RESPONSE)
                .map(|v| codec::decode_payment_response(v.as_bytes()).unwrap());
            (status, receipt, response.bytes().await.unwrap())
        }
    });
    let answers = futures_util::future::join_all(copies).await;
    for (status, receipt, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{}", String::from_utf8_lossy(body));
        assert!(receipt.as_ref().is_some_and(|r| r.success), "{receipt:?}");
    }
    let bodies: std::collections::HashSet<&Bytes> = answers.iter().map(|(_, _, b)| b).collect();
    assert_eq!(bodies.len(), 1, "every copy gets the same body");
    let transactions: std::collections::HashSet<String> = answers
        .iter()
        .map(|(_, r, _)| r.as_ref().unwrap().transaction.clone())
        .collect();
    assert_eq!(transactions.len(), 1, "one transaction for every copy");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the upstream ran once");
    assert_eq!(usdc_balance(&devnet, seller).await, seller_before + U256::from(10_000));
    drop((a, b));
    common::drop_postgres(&db).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A facilitator in front of the real one that, while `hold` is set, takes `/settle` and never answers.
#[derive(Clone)]
struct Relay {
    target: String,
    hold: Arc<AtomicBool>,
    held: Arc<Notify>,
    /// Settles taken and never answered while `hold` was set.
    held_calls: Arc<AtomicUsize>,
    settles: Arc<AtomicUsize>,
    http: reqwest::Client,
}

async fn relay_settle(State(relay): State<Relay>, body: Bytes) -> Response {
    if relay.hold.load(Ordering::SeqCst) {
        relay.held_calls.fetch_add(1, Ordering::SeqCst);
        relay.held.notify_one();
        return std::future::pending().await;
    }
    relay.settles.fetch_add(1, Ordering::SeqCst);
    relay.forward("settle", body).await
}

async fn relay_verify(State(relay): State<Relay>, body: Bytes) -> Response {
    relay.forward("verify", body).await
}

impl Relay {
    async fn forward(&self, endpoint: &str, body: Bytes) -> Response {
        let answer = self
            .http
            .post(format!("{}/{endpoint}", self.target))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
        (
            status,
            [("content-type", "application/json")],
            answer.bytes().await.unwrap(),
        )
            .into_response()
    }
}

/// A [`Relay`] to `target`, holding settles, served on loopback: (its URL, the relay).
async fn holding_relay(target: &str) -> (String, Relay) {
    let relay = Relay {
        target: target.to_owned(),
        hold: Arc::new(AtomicBool::new(true)),
        held: Arc::new(Notify::new()),
        held_calls: Arc::default(),
        settles: Arc::default(),
        http: reqwest::Client::new(),
    };
    let supported_from = target.to_owned();
    let router = Router::new()
        .route("/verify", post(relay_verify))
        .route("/settle", post(relay_settle))
        .fallback(any(move || {
            let target = supported_from.clone();
            async move {
                let supported = reqwest::get(format!("{target}/supported")).await.unwrap();
                ([("content-type", "application/json")], supported.bytes().await.unwrap()).into_response()
            }
        }))
        .with_state(relay.clone());
    (serve(router).await, relay)
}

fn kill_hard(pid: u32) {
    let status = Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
    assert!(status.success());
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join("proxy-state.db")
}

#[tokio::test]
async fn a_proxy_killed_between_the_answer_and_the_settlement_delivers_the_kept_answer_once_after_restart() {
    let dir = common::temp_dir("proxy-crash");
    let (devnet, state_file) = common::devnet(&dir).await;
    let facilitator = facilitator(&dir, &state_file, &devnet).await;
    let (relay_url, relay) = holding_relay(&facilitator.url).await;
    let (upstream, calls) = counting_upstream().await;
    let seller = devnet.signer(2).unwrap().address();
    let state_db = format!("sqlite://{}", state_path(&dir).display());
    let body = proxy_body(&state_db, &relay_url, &devnet.state().network, seller, &upstream);
    let (first, pid) = ProxyProcess::start(&dir, &state_file, &body).await;
    let client = reqwest::Client::new();
    let seller_before = usdc_balance(&devnet, seller).await;
    let offer = offer(&client, &format!("{}/data", first.url)).await;
    let payment = sign(&devnet, &offer).await;

    // The upstream answers; the settlement is on its way when the proxy dies.
    let lost = tokio::spawn(
        client
            .get(format!("{}/data", first.url))
            .header(codec::PAYMENT_SIGNATURE, &payment)
            .send(),
    );
    relay.held.notified().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    kill_hard(pid);
    assert!(
        lost.await.unwrap().is_err(),
        "the buyer's connection died with the proxy"
    );
    drop(first);
    assert_eq!(
        usdc_balance(&devnet, seller).await,
        seller_before,
        "nothing settled yet"
    );

    // Restarted on the same state file, the resend settles once and gets the answer kept before the crash.
    relay.hold.store(false, Ordering::SeqCst);
    let (second, _) = ProxyProcess::start(&dir, &state_file, &body).await;
    let resent = client
        .get(format!("{}/data", second.url))
        .header(codec::PAYMENT_SIGNATURE, &payment)
        .send()
        .await
        .unwrap();
    assert_eq!(resent.status(), 200);
    let receipt = codec::decode_payment_response(resent.headers()[codec::PAYMENT_RESPONSE].as_bytes()).unwrap();
    assert!(receipt.success, "{receipt:?}");
    let body: serde_json::Value = resent.json().await.unwrap();
    assert_eq!(body["call"], 1, "the answer of the one upstream run: {body}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the upstream did not run again");
    assert_eq!(relay.settles.load(Ordering::SeqCst), 1);
    assert_eq!(usdc_balance(&devnet, seller).await, seller_before + U256::from(10_000));

    // And again: the same answer, no settle call.
    let again = client
        .get(format!("{}/data", second.url))
        .header(codec::PAYMENT_SIGNATURE, &payment)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again, body);
    assert_eq!(relay.settles.load(Ordering::SeqCst), 1);
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

/// How many payments `/payments?state=…` lists on a proxy's admin listener.
async fn listed(client: &reqwest::Client, admin: &str, state: &str) -> usize {
    let listing: serde_json::Value = client
        .get(format!("{admin}/payments?state={state}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    listing["payments"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn a_proxy_killed_while_settling_deferred_payments_settles_each_once_after_restart() {
    let dir = common::temp_dir("proxy-deferred-crash");
    let (devnet, state_file) = common::devnet(&dir).await;
    let facilitator = facilitator(&dir, &state_file, &devnet).await;
    let (relay_url, relay) = holding_relay(&facilitator.url).await;
    let (upstream, calls) = counting_upstream().await;
    let seller = devnet.signer(2).unwrap().address();
    let state_db = format!("sqlite://{}", state_path(&dir).display());
    let body = proxy_body(&state_db, &relay_url, &devnet.state().network, seller, &upstream)
        .replace("[facilitator]", "[deferred]\nflush_interval_ms = 100\n[facilitator]")
        + "settle = \"deferred\"\n";
    let (first, pid) = ProxyProcess::start(&dir, &state_file, &body).await;
    let client = reqwest::Client::new();
    let seller_before = usdc_balance(&devnet, seller).await;
    let offer = offer(&client, &format!("{}/data", first.url)).await;
    let mut payments = Vec::new();
    for _ in 0..3 {
        let payment = sign(&devnet, &offer).await;
        let served = client
            .get(format!("{}/data", first.url))
            .header(codec::PAYMENT_SIGNATURE, &payment)
            .send()
            .await
            .unwrap();
        assert_eq!(served.status(), 200);
        assert_eq!(served.headers()["payment-settlement"], "deferred");
        assert!(
            !served.headers().contains_key(codec::PAYMENT_RESPONSE),
            "nothing settled yet"
        );
        payments.push(payment);
    }
    // The settler has sent all three settles (the relay holds them) when the proxy dies.
    let deadline = Instant::now() + Duration::from_secs(30);
    while relay.held_calls.load(Ordering::SeqCst) < 3 {
        assert!(Instant::now() < deadline, "the settler did not send its settles");
        let _ = tokio::time::timeout(Duration::from_millis(200), relay.held.notified()).await;
    }
    kill_hard(pid);
    drop(first);
    assert_eq!(
        usdc_balance(&devnet, seller).await,
        seller_before,
        "nothing settled yet"
    );

    // Restarted on the same state file, the settler takes them again once the dead one's leases ran out.
    relay.hold.store(false, Ordering::SeqCst);
    let (second, _) = ProxyProcess::start(&dir, &state_file, &body).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while listed(&client, &second.admin, "settled").await < 3 {
        assert!(
            Instant::now() < deadline,
            "the deferred payments did not settle after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed(&client, &second.admin, "deferred").await, 0);
    assert_eq!(relay.settles.load(Ordering::SeqCst), 3, "each settled once");
    assert_eq!(usdc_balance(&devnet, seller).await, seller_before + U256::from(30_000));
    for payment in &payments {
        let resent = client
            .get(format!("{}/data", second.url))
            .header(codec::PAYMENT_SIGNATURE, payment)
            .send()
            .await
            .unwrap();
        assert_eq!(resent.status(), 200);
        let receipt = codec::decode_payment_response(resent.headers()[codec::PAYMENT_RESPONSE].as_bytes()).unwrap();
        assert!(receipt.success, "{receipt:?}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3, "the upstream ran once per payment");
    assert_eq!(relay.settles.load(Ordering::SeqCst), 3);
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}
