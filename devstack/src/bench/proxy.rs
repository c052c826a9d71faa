//! `nerdcabal bench proxy`: on a fresh devnet, in one run — a free route through the proxy against the same
//! upstream called directly (the ratio is the proxy's overhead), unpaid requests answered 402 per second, and
//! paid requests end to end (offer matched, verified, upstream run, settled in batches by the embedded
//! facilitator) per second, each with p50/p99.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::facilitator::{Limit, Series, measure};
use alloy::primitives::{B256, U256};
use alloy::signers::local::PrivateKeySigner;
use contracts::{Devnet, DevnetConfig};
use facilitator::config::FacilitatorConfig;
use protocol::header as codec;
use protocol::wire::v2;

use proxy::config::ProxyConfig;
use proxy::service::{Proxy, ProxyOptions};

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub clients: usize,
    /// How long each read benchmark runs.
    pub duration: Duration,
    /// Paid requests, each with its own payment.
    pub paid_requests: usize,
    /// The proxy's state database; `None`: a SQLite file in the run's temporary directory.
    pub state_database: Option<String>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            clients: 32,
            duration: Duration::from_secs(5),
            paid_requests: 2_000,
            state_database: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BenchReport {
    pub direct: Series,
    pub free: Series,
    pub offers: Series,
    pub paid: Series,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.direct)?;
        writeln!(f, "{}", self.free)?;
        writeln!(
            f,
            "  free via proxy / direct     {:.2}x throughput, p50 {:.2}x",
            self.free.per_second() / self.direct.per_second().max(1e-9),
            self.free.p50.as_secs_f64() / self.direct.p50.as_secs_f64().max(1e-9)
        )?;
        writeln!(f, "{}", self.offers)?;
        write!(f, "{}", self.paid)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("devnet: {0}")]
    Devnet(#[from] contracts::DevnetError),
    #[error("proxy: {0}")]
    Proxy(#[from] proxy::service::ProxyError),
    #[error("set-up: {0}")]
    Setup(String),
}

fn setup<E: std::fmt::Display>(e: E) -> BenchError {
    BenchError::Setup(e.to_string())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn status_is(request: reqwest::RequestBuilder, want: u16) -> bool {
    match request.send().await {
        Ok(response) => response.status().as_u16() == want && response.bytes().await.is_ok(),
        Err(_) => false,
    }
}

pub async fn run(config: BenchConfig) -> Result<BenchReport, BenchError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let devnet = Devnet::start(DevnetConfig::default()).await?;
    let dir = std::env::temp_dir().join(format!(
        "nerdcabal-proxy-bench-{}-{}",
        std::process::id(),
        B256::random()
    ));
    std::fs::create_dir_all(&dir).map_err(setup)?;
    let _cleanup = RemoveOnDrop(dir.clone());

    // The upstream: a small JSON answer, as an API would give.
    let upstream = axum::Router::new()
        .fallback(|| async { axum::Json(serde_json::json!({"temperature": 21.5, "city": "Paris"})) });
    let upstream_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(setup)?;
    let upstream_url = format!("http://{}", upstream_listener.local_addr().map_err(setup)?);
    tokio::spawn(async move { axum::serve(upstream_listener, upstream).await });

    // The proxy, with the facilitator engine inside settling in batches.
    let state = devnet.state();
    let seller = state.accounts.get(2).map(|a| a.address).unwrap_or_default();
    let text = format!(
        "state_database = \"{}\"\n[facilitator]\nembedded = true\n[defaults]\nnetwork = \"{}\"\npay_to = \"{seller}\"\nmax_timeout_seconds = 300\n\
         [[route]]\npath = \"/free\"\nupstream = \"{upstream_url}\"\nfree = true\n\
         [[route]]\npath = \"/paid\"\nupstream = \"{upstream_url}\"\nprice = \"$0.001\"\n",
        config
            .state_database
            .clone()
            .unwrap_or_else(|| dir.join("proxy-state.db").display().to_string()),
        state.network
    );
    let proxy_config = ProxyConfig::from_toml(&text, |_| None).map_err(setup)?;
    let database_url = format!("sqlite://{}", dir.join("ledger.db").display());
    let env = move |name: &str| (name == facilitator::config::ENV_DATABASE_URL).then(|| database_url.clone());
    // The proxy adds the devnet (and its settlement key) to the engine's configuration.
    let engine = FacilitatorConfig::from_toml("[batch]\nenabled = true\nmax_wait_ms = 25\nmax_items = 200\n", env)
        .map_err(setup)?;
    let proxy = Proxy::build(
        proxy_config,
        ProxyOptions {
            config_path: None,
            devnet: Some(state.clone()),
            facilitator_config: Some(engine),
        },
    )
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(setup)?;
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(setup)?;
    let proxy_url = format!("http://{}", listener.local_addr().map_err(setup)?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(Arc::new(proxy).serve(listener, admin, async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(config.clients.max(256) * 2)
        .tcp_nodelay(true)
        .build()
        .map_err(setup)?;
    let timed = Limit::Duration(config.duration);
    let get = |url: String, want: u16| {
        let client = client.clone();
        move |_| {
            let (client, url) = (client.clone(), url.clone());
            async move { status_is(client.get(&url), want).await }
        }
    };
    let direct = measure(
        "free route, upstream direct",
        config.clients,
        timed,
        get(format!("{upstream_url}/free"), 200),
    )
    .await;
    let free = measure(
        "free route, via the proxy",
        config.clients,
        timed,
        get(format!("{proxy_url}/free"), 200),
    )
    .await;
    let offers = measure(
        "unpaid → 402 offer",
        config.clients,
        timed,
        get(format!("{proxy_url}/paid"), 402),
    )
    .await;

    // Paid: every request carries its own payment, signed before the clock starts, by 64 funded buyers.
    let offer_response = client.get(format!("{proxy_url}/paid")).send().await.map_err(setup)?;
    let offer = offer_response
        .headers()
        .get(codec::PAYMENT_REQUIRED)
        .ok_or_else(|| setup("no PAYMENT-REQUIRED header"))
        .and_then(|h| codec::decode_payment_required_v2(h.as_bytes()).map_err(setup))?;
    let payments = Arc::new(sign(&devnet, &offer, config.paid_requests).await?);
    let paid = {
        let (client, url, payments) = (client.clone(), format!("{proxy_url}/paid"), payments.clone());
        measure(
            "paid end to end (batched)",
            config.clients.max(256),
            Limit::Count(payments.len()),
            move |i| {
                let (client, url, payments) = (client.clone(), url.clone(), payments.clone());
                async move {
                    let request = client.get(&url).header(codec::PAYMENT_SIGNATURE, &payments[i]);
                    status_is(request, 200).await
                }
            },
        )
        .await
    };
    let _ = stop.send(());
    let _ = serving.await;
    Ok(BenchReport {
        direct,
        free,
        offers,
        paid,
    })
}

async fn sign(devnet: &Devnet, offer: &v2::PaymentRequired, count: usize) -> Result<Vec<String>, BenchError> {
    let buyers: Vec<PrivateKeySigner> = (0..64).map(|_| PrivateKeySigner::random()).collect();
    for buyer in &buyers {
        devnet.mint(buyer.address(), U256::from(1_000_000_000u64)).await?;
    }
    let requirement = offer
        .accepts
        .first()
        .ok_or_else(|| setup("the offer accepts nothing"))?;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let payload = protocol::eip3009::pay(
            &buyers[i % buyers.len()],
            requirement,
            Some(offer.resource.clone()),
            now(),
            B256::random(),
        )
        .await
        .map_err(setup)?;
        out.push(codec::encode(&payload));
    }
    Ok(out)
}

struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
