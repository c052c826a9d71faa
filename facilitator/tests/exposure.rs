//! Exposure: the facilitator refuses to listen on a non-loopback address with no API key unless told to; and
//! the credentials in an RPC URL (basic auth, a path key, a query key) never appear in an answer or a log
//! line — a secret is planted in the URL, every failure path is driven (the node refusing with its words
//! echoing the URL, JSON-RPC errors, HTTP errors, garbage, silence, the node gone, a bad URL), and every answer
//! and every captured log line is searched for it.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fake_node::{FakeNode, Mode};
use common::stack::{Options, Stack, payer_and_nonce};
use contracts::{Devnet, DevnetConfig};
use facilitator::config::{FacilitatorConfig, NetworkConfig};
use facilitator::service::{Facilitator, ServiceError};

const PASSWORD: &str = "PASSWORD-sec-1";
const PATH_KEY: &str = "PATHKEY-sec-2";
const QUERY_KEY: &str = "QUERYKEY-sec-3";
/// base64("rpcuser:PASSWORD-sec-1"): the Authorization header a node could echo.
const BASIC: &str = "cnBjdXNlcjpQQVNTV09SRC1zZWMtMQ==";

/// Everything logged in this test binary, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn capture_logs() -> Captured {
    let captured = Captured::default();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(captured.clone())
        .with_ansi(false)
        .try_init()
        .expect("the only subscriber of this test binary");
    captured
}

/// Every endpoint's answer (status, headers and body) right now.
async fn probe(stack: &Stack, seen: &mut String, label: &str) -> (u16, serde_json::Value, serde_json::Value) {
    let request = stack.payment(1_000).await;
    let (payer, nonce) = payer_and_nonce(&request);
    let mut ready_status = 0;
    for (method, path) in [
        ("GET", "/health".to_owned()),
        ("GET", "/ready".to_owned()),
        ("GET", "/supported".to_owned()),
        ("GET", "/metrics".to_owned()),
        ("GET", format!("/settlements/{payer}/{nonce}")),
    ] {
        let response = stack
            .http
            .request(method.parse().unwrap(), format!("{}{path}", stack.url))
            .send()
            .await
            .unwrap();
        if path == "/ready" {
            ready_status = response.status().as_u16();
        }
        seen.push_str(&format!(
            "{label} {path} {} {:?}\n",
            response.status(),
            response.headers()
        ));
        seen.push_str(&response.text().await.unwrap());
    }
    let (_, verify) = stack.post("/verify", &request).await;
    let (_, settle) = stack.post("/settle", &request).await;
    let (_, status) = stack.get(&format!("/settlements/{payer}/{nonce}")).await;
    seen.push_str(&format!(
        "{label} verify {verify}\n{label} settle {settle}\n{label} status {status}\n"
    ));
    (ready_status, verify, settle)
}

#[tokio::test]
async fn rpc_url_credentials_never_reach_an_answer_or_a_log_line() {
    let logs = capture_logs();
    let devnet = Devnet::start(DevnetConfig::default()).await.expect("devnet");
    let fake = FakeNode::start(devnet.rpc_url()).await;
    let host = fake.base.trim_start_matches("http://").to_owned();
    let secret_url = format!("http://rpcuser:{PASSWORD}@{host}/v3/{PATH_KEY}?apikey={QUERY_KEY}");
    let stack = Stack::start_with(Options {
        toml: "[settlement]\nreceipt_timeout_ms = 2000\nreconcile_interval_ms = 200\n".into(),
        devnet: Some(devnet),
        rpc_url: Some(secret_url.clone()),
        rpc_timeout_ms: Some(400),
        ..Default::default()
    })
    .await;
    let mut seen = String::new();

    // The node works: settlement works through the secret URL.
    let (ready, verify, settle) = probe(&stack, &mut seen, "healthy").await;
    assert_eq!(
        (ready, &verify["isValid"], &settle["success"]),
        (200, &true.into(), &true.into()),
        "{settle}"
    );

    // The node refuses the broadcast, quoting the URL (and the Authorization header) in its words.
    for _ in 0..4 {
        fake.refuse_next(
            -32000,
            &format!("rejected for /v3/{PATH_KEY}?apikey={QUERY_KEY} (Basic {BASIC}, rpcuser:{PASSWORD})"),
            false,
        );
    }
    let (_, _, settle) = probe(&stack, &mut seen, "refusing").await;
    let message = settle["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("rejected for") && message.contains("***"), "{settle}");

    // Every request fails, each way a node or gateway can fail.
    for mode in [
        Mode::EchoError,
        Mode::HttpError(401),
        Mode::HttpError(503),
        Mode::Garbage,
        Mode::Hang(Duration::from_secs(2)),
    ] {
        fake.set_mode(mode.clone());
        let (ready, verify, settle) = probe(&stack, &mut seen, &format!("{mode:?}")).await;
        assert_eq!(ready, 503, "{mode:?}");
        assert_eq!(verify["isValid"], false, "{mode:?}: {verify}");
        assert_eq!(settle["success"], false, "{mode:?}: {settle}");
    }
    // The node is gone altogether.
    fake.stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (ready, verify, _) = probe(&stack, &mut seen, "gone").await;
    assert_eq!((ready, &verify["isValid"]), (503, &false.into()), "{verify}");
    // Let the reconciler and the nonce owner meet the dead node too, and log about it.
    stack.settler.reconcile_once(Duration::from_millis(100)).await;
    for pool in stack.settler.pools().values() {
        pool.check_nonces().await;
    }

    // A URL that does not parse, and the configuration's own debug output.
    let bad = format!(
        "[[networks]]\nname = \"x\"\nchain_id = 7\nrpc_url = \"http://rpcuser:{PASSWORD}@[::1/v3/{PATH_KEY}?apikey={QUERY_KEY}\"\n"
    );
    match FacilitatorConfig::from_toml(&bad, |_| None) {
        Err(e) => seen.push_str(&format!("{e}\n{e:?}\n")),
        Ok(config) => seen.push_str(&format!("{config:?}\n")),
    }
    let mut network = NetworkConfig::from_devnet(stack.devnet.state());
    network.rpc_url = secret_url.clone();
    seen.push_str(&format!("{network:?}\n"));
    let chain = facilitator::chain::ChainClient::connect(
        protocol::network::Network {
            name: "x".into(),
            chain_id: 7,
            assets: Vec::new(),
        },
        &format!("not a url {PATH_KEY}"),
        None,
        Default::default(),
    );
    if let Err(e) = chain {
        seen.push_str(&format!("{e}\n{e:?}\n"));
    }

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("broadcast refused"), "the log capture works");
    for secret in [PASSWORD, PATH_KEY, QUERY_KEY, BASIC] {
        assert!(
            !seen.contains(secret),
            "`{secret}` in an answer:\n{}",
            excerpt(&seen, secret)
        );
        assert!(
            !logs.contains(secret),
            "`{secret}` in a log line:\n{}",
            excerpt(&logs, secret)
        );
    }
    assert!(seen.contains("***"), "the secrets were there to mask");
}

fn excerpt(text: &str, secret: &str) -> String {
    text.lines()
        .filter(|l| l.contains(secret))
        .take(5)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A facilitator for the devnet, not yet serving.
async fn facilitator(devnet: &Devnet, toml: &str) -> Facilitator {
    let key = alloy::primitives::hex::encode_prefixed(devnet.signer(9).unwrap().to_bytes());
    let (database_url, _dir) = common::sqlite_url("exposure");
    let env = move |name: &str| match name {
        facilitator::config::ENV_SETTLEMENT_KEYS => Some(key.clone()),
        facilitator::config::ENV_DATABASE_URL => Some(database_url.clone()),
        _ => None,
    };
    let mut config = FacilitatorConfig::from_toml(toml, env).unwrap();
    config.networks.push(NetworkConfig::from_devnet(devnet.state()));
    Facilitator::build(config).await.unwrap()
}

#[tokio::test]
async fn a_public_listener_needs_an_api_key_or_an_explicit_opt_out() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let devnet = Devnet::start(DevnetConfig::default()).await.expect("devnet");
    let public = || async { tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap() };

    let refused = facilitator(&devnet, "").await.serve(public().await, async {}).await;
    assert!(matches!(refused, Err(ServiceError::Unauthenticated(_))), "{refused:?}");
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("--allow-unauthenticated"), "{message}");
    let run = facilitator(&devnet, "listen = \"0.0.0.0:0\"\n")
        .await
        .run(async {})
        .await;
    assert!(matches!(run, Err(ServiceError::Unauthenticated(_))), "{run:?}");

    for toml in [
        "[security]\nallow_unauthenticated = true\n",
        "[security]\napi_keys = [\"k\"]\n",
    ] {
        let listener = public().await;
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = facilitator(&devnet, toml).await;
        let server = tokio::spawn(app.serve(listener, async {
            let _ = stopped.await;
        }));
        let health = reqwest::get(format!("http://127.0.0.1:{port}/health")).await.unwrap();
        assert_eq!(health.status(), 200, "{toml}");
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
