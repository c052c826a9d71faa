//! `nerdcabal bench facilitator`: measures the facilitator over real HTTP against a fresh devnet — verify/s,
//! single settle/s and batched settle/s with p50/p99 latency — and, in the same run and at the same
//! concurrency, the bare chain calls one verify needs (`eth_getCode`, the Multicall3 read, the settlement
//! simulation) made straight to the node, so the ratio shows the facilitator's own overhead.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::primitives::{B256, U256};
use alloy::signers::local::PrivateKeySigner;
use contracts::{Devnet, DevnetConfig};
use protocol::network::ARC_USDC;
use protocol::version::Version;
use protocol::wire::{Extra, v2};
use protocol::{VerifyRequest, eip3009};

use facilitator::chain::SnapshotRequest;
use facilitator::config::FacilitatorConfig;
use facilitator::service::Facilitator;
use facilitator::verify::payment_from_request;

/// Benchmark settings.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Concurrent HTTP clients.
    pub clients: usize,
    /// How long each read benchmark (verify, bare chain calls) runs.
    pub duration: Duration,
    /// Payments settled one transaction each.
    pub single_payments: usize,
    /// Payments settled in batches.
    pub batch_payments: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            clients: 32,
            duration: Duration::from_secs(5),
            single_payments: 300,
            batch_payments: 2_000,
        }
    }
}

/// One measured series.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: &'static str,
    pub operations: usize,
    pub failures: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl Series {
    pub fn per_second(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<28} {:>9.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} ok, {} failed, {:.2} s)",
            self.name,
            self.per_second(),
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.operations,
            self.failures,
            self.elapsed.as_secs_f64()
        )
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Runs `operation(i)` from `clients` workers, either for `duration` or until `count` operations were taken.
pub async fn measure<F, Fut>(name: &'static str, clients: usize, limit: Limit, operation: F) -> Series
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let operation = Arc::new(operation);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (operation, next) = (operation.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match limit {
                    Limit::Count(n) if i >= n => break,
                    Limit::Duration(d) if started.elapsed() >= d => break,
                    _ => {}
                }
                let t = Instant::now();
                if operation(i).await {
                    latencies.push(t.elapsed());
                } else {
                    failures += 1;
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for worker in workers {
        if let Ok((l, f)) = worker.await {
            latencies.extend(l);
            failures += f;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Series {
        name,
        operations: latencies.len(),
        failures,
        elapsed,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
    }
}

/// How long [`measure`] runs: a number of operations, or a time.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    Count(usize),
    Duration(Duration),
}

/// The benchmark's findings.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub bare_chain: Series,
    pub verify_engine: Series,
    pub verify: Series,
    pub settle_single: Series,
    pub settle_batch: Series,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.bare_chain)?;
        writeln!(f, "{}", self.verify_engine)?;
        writeln!(f, "{}", self.verify)?;
        writeln!(
            f,
            "  engine / bare chain calls  {:.2}x throughput, p50 {:.2}x",
            self.verify_engine.per_second() / self.bare_chain.per_second().max(1e-9),
            self.verify_engine.p50.as_secs_f64() / self.bare_chain.p50.as_secs_f64().max(1e-9)
        )?;
        writeln!(
            f,
            "  verify / bare chain calls  {:.2}x throughput, p50 {:.2}x",
            self.verify.per_second() / self.bare_chain.per_second().max(1e-9),
            self.verify.p50.as_secs_f64() / self.bare_chain.p50.as_secs_f64().max(1e-9)
        )?;
        writeln!(f, "{}", self.settle_single)?;
        writeln!(f, "{}", self.settle_batch)?;
        write!(
            f,
            "  batch / single settlement  {:.2}x throughput",
            self.settle_batch.per_second() / self.settle_single.per_second().max(1e-9)
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("devnet: {0}")]
    Devnet(#[from] contracts::DevnetError),
    #[error("facilitator: {0}")]
    Service(#[from] facilitator::service::ServiceError),
    #[error("configuration: {0}")]
    Config(#[from] facilitator::config::ConfigError),
    #[error("set-up: {0}")]
    Setup(String),
}

struct Running {
    url: String,
    app: Arc<Facilitator>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start_facilitator(devnet: &Devnet, toml: &str) -> Result<Running, BenchError> {
    let dir = std::env::temp_dir().join(format!("nerdcabal-bench-{}-{}", std::process::id(), B256::random()));
    std::fs::create_dir_all(&dir).map_err(|e| BenchError::Setup(e.to_string()))?;
    let database_url = format!("sqlite://{}", dir.join("ledger.db").display());
    let env = move |name: &str| (name == facilitator::config::ENV_DATABASE_URL).then(|| database_url.clone());
    let mut config = FacilitatorConfig::from_toml(toml, env)?;
    config.add_devnet(devnet.state())?;
    let app = Facilitator::build(config).await?;
    let router = app.router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let url = format!(
        "http://{}",
        listener.local_addr().map_err(|e| BenchError::Setup(e.to_string()))?
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        })
        .await;
    });
    Ok(Running {
        url,
        app: Arc::new(app),
        stop: Some(stop),
        _dir: TempDir(dir),
    })
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `count` signed payments from `buyers` (round-robin) to `pay_to`, each for `amount`.
async fn sign_payments(
    devnet: &Devnet,
    buyers: &[PrivateKeySigner],
    count: usize,
    amount: u64,
) -> Vec<Arc<VerifyRequest>> {
    let state = devnet.state();
    let pay_to = state.accounts.get(2).map(|a| a.address).unwrap_or_default();
    let requirement = v2::PaymentRequirements {
        scheme: protocol::SCHEME_EXACT.into(),
        network: state.network.clone(),
        amount: U256::from(amount),
        asset: ARC_USDC,
        pay_to,
        max_timeout_seconds: 300,
        extra: Some(Extra::eip712("USDC", "2")),
    };
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let buyer = &buyers[i % buyers.len()];
        if let Ok(payload) = eip3009::pay(buyer, &requirement, None, now(), B256::random()).await {
            out.push(Arc::new(VerifyRequest::V2(v2::VerifyRequest {
                x402_version: Version,
                payment_payload: payload,
                payment_requirements: requirement.clone(),
            })));
        }
    }
    out
}

async fn post_ok(client: &reqwest::Client, url: &str, body: &VerifyRequest, field: &str) -> bool {
    match client.post(url).json(body).send().await {
        Ok(response) => match response.json::<serde_json::Value>().await {
            Ok(answer) => answer[field] == serde_json::Value::Bool(true),
            Err(_) => false,
        },
        Err(_) => false,
    }
}

/// Runs every measurement and returns the report.
pub async fn run(config: BenchConfig) -> Result<BenchReport, BenchError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let devnet = Devnet::start(DevnetConfig {
        accounts: 10,
        ..DevnetConfig::default()
    })
    .await?;
    // Fresh buyers, funded by the devnet faucet.
    let buyers: Vec<PrivateKeySigner> = (0..64).map(|_| PrivateKeySigner::random()).collect();
    for buyer in &buyers {
        devnet.mint(buyer.address(), U256::from(1_000_000_000u64)).await?;
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(config.clients * 2)
        .build()
        .map_err(|e| BenchError::Setup(e.to_string()))?;

    // Reads: the same pool of payments is verified again and again (verify writes nothing).
    // The benchmark client is one IP: lift the per-IP limit so it measures the engine, not the limiter.
    const LIMITS: &str = "[limits]\nper_ip_per_second = 100000000\nper_key_per_second = 100000000\n";
    let single = start_facilitator(&devnet, LIMITS).await?;
    let verify_pool = Arc::new(sign_payments(&devnet, &buyers, 256, 1_000).await);

    let chain = single
        .app
        .settler
        .verifier()
        .chain(&devnet.state().network)
        .cloned()
        .ok_or_else(|| BenchError::Setup("the devnet chain is not configured".into()))?;
    let simulate_from = single.app.settler.verifier().settlement_address();
    let bare_payments: Arc<Vec<facilitator::verify::Payment>> = Arc::new(
        verify_pool
            .iter()
            .filter_map(|r| payment_from_request(r, |_| Some(chain.clone())).ok())
            .collect(),
    );
    let bare_chain = {
        let (chain, payments) = (chain.clone(), bare_payments.clone());
        measure(
            "bare chain calls of a verify",
            config.clients,
            Limit::Duration(config.duration),
            move |i| {
                let (chain, payments) = (chain.clone(), payments.clone());
                async move {
                    let p = &payments[i % payments.len()];
                    chain
                        .snapshot(SnapshotRequest {
                            asset: p.asset.address,
                            authorization: &p.authorization,
                            signature: &p.signature,
                            signing_hash: p.signing_hash,
                            simulate_from,
                        })
                        .await
                        .is_ok()
                }
            },
        )
        .await
    };
    let verify_engine = {
        let (verifier, pool) = (single.app.settler.verifier().clone(), verify_pool.clone());
        measure(
            "verify (engine, in-process)",
            config.clients,
            Limit::Duration(config.duration),
            move |i| {
                let (verifier, pool) = (verifier.clone(), pool.clone());
                async move {
                    verifier
                        .verify(
                            &pool[i % pool.len()],
                            now(),
                            facilitator::verify::LedgerCheck::RefuseReserved,
                        )
                        .await
                        .is_ok()
                }
            },
        )
        .await
    };
    let verify = {
        let (client, url, pool) = (client.clone(), format!("{}/verify", single.url), verify_pool.clone());
        measure(
            "verify (HTTP)",
            config.clients,
            Limit::Duration(config.duration),
            move |i| {
                let (client, url, pool) = (client.clone(), url.clone(), pool.clone());
                async move { post_ok(&client, &url, &pool[i % pool.len()], "isValid").await }
            },
        )
        .await
    };

    let singles = Arc::new(sign_payments(&devnet, &buyers, config.single_payments, 1_000).await);
    let settle_single = {
        let (client, url, pool) = (client.clone(), format!("{}/settle", single.url), singles.clone());
        measure(
            "settle, one tx each (HTTP)",
            config.clients,
            Limit::Count(pool.len()),
            move |i| {
                let (client, url, pool) = (client.clone(), url.clone(), pool.clone());
                async move { post_ok(&client, &url, &pool[i], "success").await }
            },
        )
        .await
    };
    drop(single);

    let batched = start_facilitator(
        &devnet,
        &format!("{LIMITS}[batch]\nenabled = true\nmax_wait_ms = 25\nmax_items = 200\n"),
    )
    .await?;
    let batch_pool = Arc::new(sign_payments(&devnet, &buyers, config.batch_payments, 1_000).await);
    let settle_batch = {
        let (client, url, pool) = (client.clone(), format!("{}/settle", batched.url), batch_pool.clone());
        measure(
            "settle, batched (HTTP)",
            config.clients.max(256),
            Limit::Count(pool.len()),
            move |i| {
                let (client, url, pool) = (client.clone(), url.clone(), pool.clone());
                async move { post_ok(&client, &url, &pool[i], "success").await }
            },
        )
        .await
    };
    drop(batched);
    Ok(BenchReport {
        bare_chain,
        verify_engine,
        verify,
        settle_single,
        settle_batch,
    })
}
