//! Interoperability with the official x402 SDKs (npm `@x402/express` and `@x402/fetch`, PyPI `x402` with its
//! FastAPI middleware and httpx client), pinned in `tests/interop/` and installed by `tests/interop/setup.sh`
//! into a cache outside the clone (`scripts/test.sh` runs it first). Both directions, on a real devnet: the
//! official clients pay our proxy; our `nerdcabal pay` and our MCP `x402_fetch` pay the official servers, which
//! settle through our facilitator, as do the official clients; offers name `payTo` in lower case and
//! checksummed. Every payment is checked on chain, and each client's own payment header is replayed to show it
//! is not charged twice.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use alloy::primitives::{Address, U256};
use common::KillOnDrop;
use common::dev::Dev;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

/// What the official servers charge for `GET /paid`, atomic USDC ($0.0015).
const OFFICIAL_PRICE: u64 = 1_500;

fn cache() -> PathBuf {
    let dir = std::env::var_os("NERDCABAL_INTEROP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/nerdcabal/interop"));
    assert!(
        dir.join("venv/bin/python").exists() && dir.join("node/node_modules").exists(),
        "the official x402 SDKs are not installed in {}: run `bash tests/interop/setup.sh` (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// A number not handed out before in this process (for file names).
fn unique() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

#[derive(Clone, Copy, Debug)]
enum Sdk {
    /// TypeScript: `@x402/express`, `@x402/fetch`.
    TypeScript,
    /// Python: the FastAPI middleware and the httpx client.
    Python,
}

impl Sdk {
    fn command(self, script: &str) -> Command {
        let cache = cache();
        match self {
            Sdk::TypeScript => {
                let mut command = Command::new("node");
                command.arg(cache.join("node").join(script));
                command
            }
            Sdk::Python => {
                let mut command = Command::new(cache.join("venv/bin/python"));
                command.arg(interop_dir().join(script));
                command
            }
        }
    }

    fn server_script(self) -> &'static str {
        match self {
            Sdk::TypeScript => "express_server.mjs",
            Sdk::Python => "fastapi_server.py",
        }
    }

    fn client_script(self) -> &'static str {
        match self {
            Sdk::TypeScript => "fetch_client.mjs",
            Sdk::Python => "httpx_client.py",
        }
    }
}

/// An official seller middleware on a free port, settling through `dev`'s facilitator.
struct OfficialServer {
    _child: KillOnDrop,
    url: String,
}

impl OfficialServer {
    async fn start(sdk: Sdk, dev: &Dev, pay_to: &str) -> OfficialServer {
        // Port 0: the server binds a free port and names it in its one line.
        let stderr = dev.dir.join(format!("{}-{}.stderr", sdk.server_script(), unique()));
        let mut child = KillOnDrop(
            sdk.command(sdk.server_script())
                .args(["--port", "0"])
                .args(["--facilitator", dev.state["facilitator_url"].as_str().unwrap()])
                .args(["--network", dev.state["network"].as_str().unwrap()])
                .args(["--asset", dev.state["usdc"].as_str().unwrap()])
                .args(["--amount", &OFFICIAL_PRICE.to_string()])
                .args(["--pay-to", pay_to, "--name", "USDC", "--version", "2"])
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&stderr).unwrap())
                .spawn()
                .expect("start an official server"),
        );
        // The one line it prints once it listens (or nothing, if it dies).
        let stdout = child.stdout.take().unwrap();
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            line
        });
        let line = tokio::time::timeout(Duration::from_secs(60), line)
            .await
            .expect("the official server started within 60 s")
            .unwrap();
        let port: u16 = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "{sdk:?} server did not start ({line:?}): {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                )
            });
        OfficialServer {
            _child: child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    fn paid_url(&self) -> String {
        format!("{}/paid", self.url)
    }
}

/// What an official client reports of its one paid request.
#[derive(Debug)]
struct ClientRun {
    status: u16,
    body: String,
    payment_response: Value,
    payment_signature: String,
}

async fn official_client(sdk: Sdk, url: &str, private_key: &str) -> ClientRun {
    let output = tokio::process::Command::from(sdk.command(sdk.client_script()))
        .args(["--url", url, "--private-key", private_key])
        .output()
        .await
        .expect("run an official client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{sdk:?} client against {url}: {}\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{sdk:?} client printed no JSON ({e}): {stdout}\nstderr: {stderr}"));
    ClientRun {
        status: report["status"].as_u64().unwrap() as u16,
        body: report["body"].as_str().unwrap().to_owned(),
        payment_response: report["paymentResponse"].clone(),
        payment_signature: report["paymentSignature"]
            .as_str()
            .unwrap_or_else(|| panic!("{sdk:?} client sent no PAYMENT-SIGNATURE: {report}"))
            .to_owned(),
    }
}

/// The same request again with a payment header already used: (status, body).
async fn replay(url: &str, payment_signature: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(url)
        .header("PAYMENT-SIGNATURE", payment_signature)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn buyer_key(dev: &Dev) -> String {
    dev.state["buyer"]["private_key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn official_clients_pay_our_proxy_once_each() {
    let dev = Dev::start().await;
    let (buyer, seller, price) = (dev.address("buyer"), dev.address("seller"), dev.price());
    let paid_url = dev.state["paid_url"].as_str().unwrap().to_owned();
    for sdk in [Sdk::TypeScript, Sdk::Python] {
        let (buyer0, seller0) = (dev.balance(buyer).await, dev.balance(seller).await);
        let run = official_client(sdk, &paid_url, &buyer_key(&dev)).await;
        assert_eq!(run.status, 200, "{sdk:?}: {run:?}");
        let body: Value = serde_json::from_str(&run.body).unwrap();
        assert_eq!(body["city"], "paris", "{sdk:?}");
        assert_eq!(run.payment_response["success"], true, "{sdk:?}: {run:?}");
        let tx = run.payment_response["transaction"].as_str().unwrap().to_owned();
        assert_eq!(dev.balance(buyer).await, buyer0 - price, "{sdk:?}");
        assert_eq!(dev.balance(seller).await, seller0 + price, "{sdk:?}");

        // The same payment again: the paid answer is delivered again, and nothing more is charged.
        let (status, again) = replay(&paid_url, &run.payment_signature).await;
        assert_eq!(status, 200, "{sdk:?}: {again}");
        assert_eq!(serde_json::from_str::<Value>(&again).unwrap(), body, "{sdk:?}");
        assert_eq!(dev.balance(buyer).await, buyer0 - price, "{sdk:?} replay");
        assert_eq!(dev.balance(seller).await, seller0 + price, "{sdk:?} replay");
        assert!(tx.starts_with("0x"), "{tx}");
    }
}

/// Our MCP server's `x402_fetch`, allowed to reach the official server on loopback.
async fn mcp_fetch(dev: &Dev, url: &str, ledger: &str) -> Value {
    let config = dev.dir.join(format!("buyer-{}.toml", unique()));
    let authority = url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
    std::fs::write(&config, format!("[fetch]\nallow_hosts = [\"{authority}\"]\n")).unwrap();
    let client = dev.mcp_stdio(ledger, &["--config", config.to_str().unwrap()]).await;
    let arguments = json!({"url": url, "max_price": "$0.01"});
    let result = client
        .call_tool(CallToolRequestParams::new("x402_fetch").with_arguments(arguments.as_object().cloned().unwrap()))
        .await
        .expect("a tool result");
    let _ = client.cancel().await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    result.structured_content.unwrap_or(Value::Null)
}

#[tokio::test]
async fn our_buyer_and_the_official_clients_pay_each_official_server_through_our_facilitator() {
    let dev = Dev::start().await;
    let buyer = dev.address("buyer");
    let ledger = dev.ledger("interop");
    let price = U256::from(OFFICIAL_PRICE);
    for sdk in [Sdk::TypeScript, Sdk::Python] {
        // A payee of its own per server, named in the offer in lower case, then checksummed.
        let payee = Address::random();
        for pay_to in [format!("{payee:#x}"), payee.to_checksum(None)] {
            let server = OfficialServer::start(sdk, &dev, &pay_to).await;
            let url = server.paid_url();
            let context = format!("{sdk:?} server, payTo {pay_to}");
            let mut paid = dev.balance(payee).await;

            // Our CLI.
            let buyer0 = dev.balance(buyer).await;
            let (code, stdout, stderr) = dev.pay(&ledger, &["--json", "--max", "$0.01", &url]).await;
            assert_eq!(code, 0, "{context}: our pay\nstdout: {stdout}\nstderr: {stderr}");
            let document: Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(document["status"], 200, "{context}: {document}");
            assert_eq!(document["body"]["paid"], true, "{context}: {document}");
            assert!(
                document["receipt"]["transaction"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("0x")),
                "{context}: {document}"
            );
            assert_eq!(
                document["receipt"]["pay_to"],
                format!("{payee:#x}"),
                "{context}: {document}"
            );
            paid += price;
            assert_eq!(dev.balance(payee).await, paid, "{context}: our pay settled on chain");
            assert_eq!(dev.balance(buyer).await, buyer0 - price, "{context}");

            // Our MCP server.
            let fetched = mcp_fetch(&dev, &url, &ledger).await;
            assert_eq!(fetched["status"], 200, "{context}: {fetched}");
            paid += price;
            assert_eq!(dev.balance(payee).await, paid, "{context}: x402_fetch settled on chain");

            // Each official client, and its payment replayed.
            for client in [Sdk::TypeScript, Sdk::Python] {
                let run = official_client(client, &url, &buyer_key(&dev)).await;
                assert_eq!(run.status, 200, "{context}, {client:?} client: {run:?}");
                let body: Value = serde_json::from_str(&run.body).unwrap();
                assert_eq!(body["paid"], true, "{context}, {client:?} client");
                assert_eq!(run.payment_response["success"], true, "{context}, {client:?}: {run:?}");
                paid += price;
                assert_eq!(
                    dev.balance(payee).await,
                    paid,
                    "{context}, {client:?} client settled on chain"
                );

                let (status, again) = replay(&url, &run.payment_signature).await;
                assert_eq!(status, 402, "{context}, {client:?} replay: {again}");
                assert_eq!(
                    dev.balance(payee).await,
                    paid,
                    "{context}, {client:?} replay charged nothing"
                );
            }
        }
    }
    let rows = agents::buyer::spend_ledger::SpendLedger::open(&ledger)
        .await
        .unwrap()
        .recent(100)
        .await
        .unwrap();
    assert_eq!(rows.len(), 8, "our CLI and MCP paid four servers each: {rows:#?}");
    assert!(rows.iter().all(|r| r.state == "settled"), "{rows:#?}");
}
