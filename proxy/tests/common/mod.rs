//! Test support for the proxy: a devnet, a real facilitator serving it over HTTP (or the engine embedded in
//! the proxy, or a scripted misbehaving facilitator), a small real upstream API that records what reached
//! it, and the proxy itself on free loopback ports. Buyers sign real EIP-3009 payments.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use contracts::{Devnet, DevnetConfig};
use facilitator::config::FacilitatorConfig;
use facilitator::service::Facilitator;
use protocol::network::ARC_USDC;
use protocol::wire::v2;
use protocol::{SettleResponse, header as codec};
use proxy::config::ProxyConfig;
use proxy::service::{Proxy, ProxyOptions};
use serde_json::{Value, json};
use tokio::sync::Notify;

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "nerdcabal-proxy-{name}-{}-{}",
        std::process::id(),
        alloy::primitives::B64::random()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn serve(router: Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await;
    });
    (url, task)
}

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// The upstream API behind the proxy.
#[derive(Clone, Default)]
pub struct UpstreamLog {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Releases the second half of `/stream`.
    pub release: Arc<Notify>,
    /// `/hold` has been reached.
    pub held: Arc<Notify>,
    /// Lets `/hold` answer.
    pub unhold: Arc<Notify>,
}

impl UpstreamLog {
    pub fn calls(&self, path: &str) -> usize {
        self.seen.lock().unwrap().iter().filter(|s| s.path == path).count()
    }

    pub fn last(&self, path: &str) -> Option<Seen> {
        self.seen.lock().unwrap().iter().rev().find(|s| s.path == path).cloned()
    }
}

async fn record(State(log): State<UpstreamLog>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default().to_vec();
    log.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: path.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    match path.as_str() {
        "/fail" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        "/created" => (
            StatusCode::CREATED,
            [(header::LOCATION, "/things/1")],
            axum::Json(json!({"id": 1})),
        )
            .into_response(),
        "/echo" => (StatusCode::OK, body).into_response(),
        "/hold" => {
            log.held.notify_one();
            log.unhold.notified().await;
            axum::Json(json!({"data": "the held content", "call": log.calls("/hold")})).into_response()
        }
        "/large" => (StatusCode::OK, vec![b'x'; 4096]).into_response(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late".into_response()
        }
        "/stream" => {
            let release = log.release.clone();
            let chunks = futures_stream(release);
            Response::new(Body::from_stream(chunks))
        }
        _ => axum::Json(json!({"data": "the paid content", "path": path, "query": parts.uri.query()})).into_response(),
    }
}

/// `first;` at once, `second;` after [`UpstreamLog::release`] is notified.
fn futures_stream(release: Arc<Notify>) -> impl tokio_stream::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        let _ = tx.send(Ok(b"first;".to_vec())).await;
        release.notified().await;
        let _ = tx.send(Ok(b"second;".to_vec())).await;
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

pub async fn start_upstream() -> (String, UpstreamLog, tokio::task::JoinHandle<()>) {
    let log = UpstreamLog::default();
    let router = Router::new().fallback(any(record)).with_state(log.clone());
    let (url, task) = serve(router).await;
    (url, log, task)
}

/// How a scripted facilitator misbehaves.
#[derive(Clone, Copy, Debug)]
pub enum Misbehaviour {
    /// Verify says valid; settle answers an HTML error page.
    SettleHtml,
    /// Verify says valid; settle never answers in time.
    SettleSlow,
    /// Verify says valid; settle says `settlement_pending`.
    SettlePending,
    /// Verify answers HTML.
    VerifyHtml,
    /// Verify says valid; settle succeeds without touching the chain (counts calls only).
    CountOnly,
    /// Like `SettlePending` on the first settle, `CountOnly` after.
    PendingOnce,
}

#[derive(Clone)]
pub struct Scripted {
    pub mode: Misbehaviour,
    pub verify_calls: Arc<AtomicUsize>,
    pub settle_calls: Arc<AtomicUsize>,
}

async fn scripted_verify(State(s): State<Scripted>, body: axum::body::Bytes) -> Response {
    s.verify_calls.fetch_add(1, Ordering::SeqCst);
    if let Misbehaviour::VerifyHtml = s.mode {
        return ([(header::CONTENT_TYPE, "text/html")], "<html>oops</html>").into_response();
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let payer = request["paymentPayload"]["payload"]["authorization"]["from"].clone();
    axum::Json(json!({"isValid": true, "payer": payer})).into_response()
}

async fn scripted_settle(State(s): State<Scripted>) -> Response {
    let earlier = s.settle_calls.fetch_add(1, Ordering::SeqCst);
    let mode = match (s.mode, earlier) {
        (Misbehaviour::PendingOnce, 0) => Misbehaviour::SettlePending,
        (Misbehaviour::PendingOnce, _) => Misbehaviour::CountOnly,
        (mode, _) => mode,
    };
    match mode {
        Misbehaviour::SettleHtml | Misbehaviour::VerifyHtml => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>Bad gateway</body></html>",
        )
            .into_response(),
        Misbehaviour::SettleSlow => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "{}".into_response()
        }
        Misbehaviour::SettlePending => axum::Json(json!({
            "success": false, "errorReason": "settlement_pending",
            "transaction": format!("{:#x}", B256::repeat_byte(0xab)), "network": "eip155:31337"
        }))
        .into_response(),
        Misbehaviour::CountOnly | Misbehaviour::PendingOnce => axum::Json(json!({
            "success": true, "transaction": format!("{:#x}", B256::repeat_byte(0xcd)), "network": "eip155:31337"
        }))
        .into_response(),
    }
}

pub async fn start_scripted(mode: Misbehaviour) -> (String, Scripted) {
    let scripted = Scripted {
        mode,
        verify_calls: Arc::default(),
        settle_calls: Arc::default(),
    };
    let router = Router::new()
        .route("/verify", post(scripted_verify))
        .route("/settle", post(scripted_settle))
        .route("/supported", get(|| async { axum::Json(json!({"kinds": []})) }))
        .with_state(scripted.clone());
    let (url, _task) = serve(router).await;
    (url, scripted)
}

pub enum Link {
    /// A real facilitator over HTTP.
    Real,
    /// The facilitator engine inside the proxy.
    Embedded,
    /// Whatever answers at this URL.
    Url(String),
}

pub struct Harness {
    pub devnet: Devnet,
    pub upstream: UpstreamLog,
    pub upstream_url: String,
    pub proxy_url: String,
    pub admin_url: String,
    pub facilitator_url: Option<String>,
    pub proxy: Arc<Proxy>,
    pub buyer: PrivateKeySigner,
    pub seller: Address,
    pub http: reqwest::Client,
    pub dir: std::path::PathBuf,
    pub config_path: std::path::PathBuf,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The running proxy's `serve`, and what stops it cleanly.
    proxy_task: Option<tokio::task::JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    embedded_config: Option<FacilitatorConfig>,
}

pub const SECRET: &str = "an access token secret of enough bytes";

/// The proxy file for `routes` (with `{upstream}` replaced), defaults on the devnet paying `seller`.
pub fn proxy_toml(devnet: &Devnet, seller: Address, upstream: &str, link: &str, routes: &str) -> String {
    format!(
        "access_token_secret = \"{SECRET}\"\nupstream_timeout_ms = 2000\n{link}\n\
         [defaults]\nnetwork = \"{}\"\npay_to = \"{}\"\n\n{}",
        devnet.state().network,
        seller,
        routes.replace("{upstream}", upstream)
    )
}

/// The facilitator's configuration with its own ledger; the devnet (and its settlement key, the last dev
/// account) is added by whoever runs it.
fn facilitator_config(dir: &std::path::Path) -> FacilitatorConfig {
    let database_url = format!("sqlite://{}", dir.join("ledger.db").display());
    FacilitatorConfig::from_toml("", |name| {
        (name == facilitator::config::ENV_DATABASE_URL).then(|| database_url.clone())
    })
    .unwrap()
}

impl Harness {
    pub async fn start(routes: &str, link: Link) -> Harness {
        Self::start_with("", routes, link).await
    }

    /// With `top` (top-level keys such as `body_limit_bytes = 100`) at the head of the file.
    pub async fn start_with(top: &str, routes: &str, link: Link) -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let devnet = Devnet::start(DevnetConfig::default()).await.expect("devnet");
        let dir = temp_dir("harness");
        let (upstream_url, upstream, upstream_task) = start_upstream().await;
        let mut tasks = vec![upstream_task];
        let seller = devnet.signer(2).unwrap().address();
        let (link_toml, facilitator_url, embedded_config) = match link {
            Link::Real => {
                let mut config = facilitator_config(&dir);
                config.add_devnet(devnet.state()).unwrap();
                let app = Facilitator::build(config).await.unwrap();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let url = format!("http://{}", listener.local_addr().unwrap());
                tasks.push(tokio::spawn(async move {
                    let _ = app.serve(listener, std::future::pending()).await;
                }));
                // A real facilitator on a loaded CI machine: a generous timeout (the fault tests use Link::Url).
                (
                    format!("[facilitator]\nurl = \"{url}\"\ntimeout_ms = 5000"),
                    Some(url),
                    None,
                )
            }
            Link::Embedded => (
                "[facilitator]\nembedded = true".to_owned(),
                None,
                Some(facilitator_config(&dir)),
            ),
            Link::Url(url) => (
                format!("[facilitator]\nurl = \"{url}\"\ntimeout_ms = 1500"),
                Some(url),
                None,
            ),
        };
        // Each harness keeps its payments in its own state file unless the test names one.
        let state = if top.contains("state_database") {
            String::new()
        } else {
            format!("state_database = \"{}\"", dir.join("proxy-state.db").display())
        };
        let text = format!(
            "{top}\n{state}\n{}",
            proxy_toml(&devnet, seller, &upstream_url, &link_toml, routes)
        );
        let config_path = dir.join("proxy.toml");
        std::fs::write(&config_path, &text).unwrap();
        let (proxy, proxy_url, admin_url, proxy_task, stop) =
            start_proxy(&config_path, &devnet, embedded_config.clone()).await;
        Harness {
            buyer: devnet.signer(1).unwrap().clone(),
            seller,
            devnet,
            upstream,
            upstream_url,
            proxy_url,
            admin_url,
            facilitator_url,
            proxy,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            dir,
            config_path,
            tasks,
            proxy_task: Some(proxy_task),
            stop: Some(stop),
            embedded_config,
        }
    }

    /// Stops the proxy as a crash would: its tasks are dropped mid-flight, nothing is drained.
    pub fn crash_proxy(&mut self) {
        self.stop = None;
        if let Some(task) = self.proxy_task.take() {
            task.abort();
        }
    }

    /// Stops the proxy as SIGTERM would, and waits until it has finished.
    pub async fn stop_proxy(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.proxy_task.take() {
            task.await.unwrap();
        }
    }

    /// A new proxy from the same file (the same state database and facilitator) on new ports.
    pub async fn restart_proxy(&mut self) {
        self.crash_proxy();
        let (proxy, proxy_url, admin_url, task, stop) =
            start_proxy(&self.config_path, &self.devnet, self.embedded_config.clone()).await;
        self.proxy = proxy;
        self.proxy_url = proxy_url;
        self.admin_url = admin_url;
        self.proxy_task = Some(task);
        self.stop = Some(stop);
    }

    /// The admin listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.admin_url);
        self.http.get(url).send().await.unwrap().text().await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.proxy_url)
    }

    /// The v2 offer an unpaid GET of `path` gets.
    pub async fn offer(&self, path: &str) -> v2::PaymentRequired {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 402, "unpaid {path}");
        let header = response
            .headers()
            .get(codec::PAYMENT_REQUIRED)
            .expect("PAYMENT-REQUIRED");
        codec::decode_payment_required_v2(header.as_bytes()).unwrap()
    }

    /// A signed v2 payment for `offer`, as a header value.
    pub async fn pay(&self, offer: &v2::PaymentRequired) -> String {
        self.pay_from(&self.buyer, offer).await
    }

    pub async fn pay_from(&self, signer: &PrivateKeySigner, offer: &v2::PaymentRequired) -> String {
        let payload = protocol::eip3009::pay(
            signer,
            &offer.accepts[0],
            Some(offer.resource.clone()),
            now(),
            B256::random(),
        )
        .await
        .unwrap();
        codec::encode(&payload)
    }

    pub async fn balance(&self, who: Address) -> U256 {
        let token = contracts::bindings::IEip3009::new(ARC_USDC, self.devnet.admin_provider().clone());
        token.balanceOf(who).call().await.unwrap()
    }

    pub async fn get_paid(&self, path: &str, payment: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .header(codec::PAYMENT_SIGNATURE, payment)
            .send()
            .await
            .unwrap()
    }
}

/// Builds and serves a proxy from `config_path` on free loopback ports.
async fn start_proxy(
    config_path: &std::path::Path,
    devnet: &Devnet,
    embedded_config: Option<FacilitatorConfig>,
) -> (
    Arc<Proxy>,
    String,
    String,
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let text = std::fs::read_to_string(config_path).unwrap();
    let config = ProxyConfig::from_toml(&text, |_| None).expect("proxy config");
    let proxy = Proxy::build(
        config,
        ProxyOptions {
            config_path: Some(config_path.to_owned()),
            devnet: Some(devnet.state().clone()),
            facilitator_config: embedded_config,
        },
    )
    .await
    .expect("proxy");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let admin_url = format!("http://{}", admin.local_addr().unwrap());
    let proxy = Arc::new(proxy);
    let serving = proxy.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            // A dropped sender (a crash, or the harness going away) never stops it cleanly.
            if stopped.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let _ = serving.serve(listener, admin, shutdown).await;
    });
    (proxy, proxy_url, admin_url, task, stop)
}

/// The settlement receipt of a response, from `PAYMENT-RESPONSE` (or `X-PAYMENT-RESPONSE`).
pub fn receipt(headers: &reqwest::header::HeaderMap) -> Option<SettleResponse> {
    let value = headers
        .get(codec::PAYMENT_RESPONSE)
        .or_else(|| headers.get(codec::X_PAYMENT_RESPONSE))?;
    Some(codec::decode_payment_response(value.as_bytes()).unwrap())
}

impl Drop for Harness {
    fn drop(&mut self) {
        for task in self.tasks.iter().chain(&self.proxy_task) {
            task.abort();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
