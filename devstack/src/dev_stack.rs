//! `nerdcabal dev`: the whole payment loop on loopback from one command — the devnet, the facilitator (HTTP),
//! the paywall proxy with priced routes, and the demo API behind it. Prints a short summary with a ready
//! `nerdcabal pay` line, writes a state file for tools and tests, and on Ctrl-C or SIGTERM stops every part
//! (anvil included) and removes the state file. The state file is a devnet state file
//! ([`contracts::DevnetState`], read by `nerdcabal proxy --devnet` and `nerdcabal facilitator --devnet`) with
//! the stack's URLs, routes and accounts beside it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy::primitives::{Address, B256, U256};
use contracts::{Devnet, DevnetConfig};
use facilitator::config::FacilitatorConfig;
use protocol::money::format_usd;
use serde::Serialize;
use tokio::net::TcpListener;

use proxy::config::ProxyConfig;
use proxy::service::{Proxy, ProxyOptions};

/// The cheap route's price, atomic units ($0.001).
pub const WEATHER_PRICE: u64 = 1_000;
/// The dear route's price ($0.05).
pub const REPORT_PRICE: u64 = 50_000;

#[derive(Debug, Clone)]
pub struct DevOptions {
    pub state_file: Option<PathBuf>,
    pub rpc_port: u16,
    pub facilitator_port: u16,
    pub proxy_port: u16,
    pub admin_port: u16,
    pub api_port: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("devnet: {0}")]
    Devnet(#[from] contracts::DevnetError),
    #[error("facilitator: {0}")]
    Facilitator(#[from] facilitator::service::ServiceError),
    #[error("facilitator configuration: {0}")]
    FacilitatorConfig(#[from] facilitator::config::ConfigError),
    #[error("proxy: {0}")]
    Proxy(#[from] proxy::service::ProxyError),
    #[error("proxy configuration: {0}")]
    ProxyConfig(#[from] proxy::config::ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("{0}")]
    Setup(String),
}

#[derive(Debug, Serialize)]
pub struct DevAccount {
    pub address: Address,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<B256>,
}

/// What the state file holds: every field of the devnet's own state file at the top level, then the stack's.
#[derive(Debug, Serialize)]
pub struct DevState {
    /// `rpc_url`, `chain_id`, `network`, `usdc`, `multicall3`, `accounts`.
    #[serde(flatten)]
    pub devnet: contracts::DevnetState,
    pub facilitator_url: String,
    pub proxy_url: String,
    pub admin_url: String,
    pub api_url: String,
    /// The cheap priced route.
    pub paid_url: String,
    /// Its price, atomic units.
    pub price: String,
    /// The dearer priced route and its price.
    pub dear_url: String,
    pub dear_price: String,
    pub free_url: String,
    pub pay_to: Address,
    pub buyer: DevAccount,
    pub seller: DevAccount,
}

async fn bind(port: u16) -> Result<TcpListener, DevError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpListener::bind(addr)
        .await
        .map_err(|source| DevError::Listen { addr, source })
}

fn url_of(listener: &TcpListener) -> Result<String, DevError> {
    listener
        .local_addr()
        .map(|a| format!("http://{a}"))
        .map_err(|e| DevError::Setup(e.to_string()))
}

/// Runs the stack until `shutdown` resolves.
pub async fn run(options: DevOptions, shutdown: impl std::future::Future<Output = ()>) -> Result<(), DevError> {
    // Bind every port first, so a clash is reported before anything starts.
    let facilitator_listener = bind(options.facilitator_port).await?;
    let proxy_listener = bind(options.proxy_port).await?;
    let admin_listener = bind(options.admin_port).await?;
    let api_listener = bind(options.api_port).await?;
    let devnet = Devnet::start(DevnetConfig {
        port: (options.rpc_port != 0).then_some(options.rpc_port),
        ..DevnetConfig::default()
    })
    .await?;
    let work = std::env::temp_dir().join(format!("nerdcabal-dev-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| DevError::Setup(format!("{}: {e}", work.display())))?;
    let _cleanup = RemoveOnDrop(work.clone());
    let chain = devnet.state();
    let account = |i: usize| {
        chain
            .accounts
            .get(i)
            .ok_or_else(|| DevError::Setup(format!("the devnet has no account {i}")))
    };
    let (buyer, seller) = (account(1)?, account(2)?);

    // The facilitator, over HTTP like a remote one.
    let database_url = format!("sqlite://{}", work.join("facilitator.db").display());
    let mut facilitator_config = FacilitatorConfig::from_toml("", |name| {
        (name == facilitator::config::ENV_DATABASE_URL).then(|| database_url.clone())
    })?;
    facilitator_config.add_devnet(chain)?;
    let facilitator_url = url_of(&facilitator_listener)?;
    let facilitator = facilitator::service::Facilitator::build(facilitator_config).await?;
    let (stop_facilitator, facilitator_stopped) = tokio::sync::oneshot::channel::<()>();
    let facilitator_task = tokio::spawn(facilitator.serve(facilitator_listener, async move {
        let _ = facilitator_stopped.await;
    }));

    // The demo API.
    let api_url = url_of(&api_listener)?;
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api_task = tokio::spawn(async move {
        axum::serve(api_listener, crate::demo_api::router())
            .with_graceful_shutdown(async move {
                let _ = api_stopped.await;
            })
            .await
    });

    // The proxy in front of it.
    let proxy_url = url_of(&proxy_listener)?;
    let admin_url = url_of(&admin_listener)?;
    let text = format!(
        "state_database = \"{state_db}\"\n[facilitator]\nurl = \"{facilitator_url}\"\n\
         [defaults]\nnetwork = \"{network}\"\npay_to = \"{seller}\"\nmax_timeout_seconds = 120\n\
         [[route]]\nname = \"weather\"\npath = \"/weather/:city\"\nupstream = \"{api_url}\"\nprice_atomic = {WEATHER_PRICE}\n\
         description = \"Current weather for a city (demo)\"\n\
         [[route]]\nname = \"report\"\npath = \"/report\"\nupstream = \"{api_url}\"\nprice_atomic = {REPORT_PRICE}\n\
         description = \"A weekly report (demo)\"\n\
         [[route]]\nname = \"status\"\npath = \"/status\"\nupstream = \"{api_url}\"\nfree = true\n",
        network = chain.network,
        seller = seller.address,
        state_db = work.join("proxy-state.db").display(),
    );
    let proxy_config = ProxyConfig::from_toml(&text, |_| None)?;
    let proxy = Proxy::build(
        proxy_config,
        ProxyOptions {
            config_path: None,
            devnet: Some(chain.clone()),
            facilitator_config: None,
        },
    )
    .await?;
    let (stop_proxy, proxy_stopped) = tokio::sync::oneshot::channel::<()>();
    let proxy_task = tokio::spawn(Arc::new(proxy).serve(proxy_listener, admin_listener, async move {
        let _ = proxy_stopped.await;
    }));

    let state = DevState {
        devnet: chain.clone(),
        paid_url: format!("{proxy_url}/weather/paris"),
        price: WEATHER_PRICE.to_string(),
        dear_url: format!("{proxy_url}/report"),
        dear_price: REPORT_PRICE.to_string(),
        free_url: format!("{proxy_url}/status"),
        facilitator_url,
        proxy_url,
        admin_url,
        api_url,
        pay_to: seller.address,
        buyer: DevAccount {
            address: buyer.address,
            private_key: Some(buyer.private_key),
        },
        seller: DevAccount {
            address: seller.address,
            private_key: None,
        },
    };
    if let Some(path) = &options.state_file {
        write_state(path, &state)?;
    }
    println!("{}", summary(&state, options.state_file.as_deref()));

    shutdown.await;
    eprintln!("stopping the stack");
    let _ = stop_proxy.send(());
    let _ = proxy_task.await;
    let _ = stop_api.send(());
    let _ = api_task.await;
    let _ = stop_facilitator.send(());
    let _ = facilitator_task.await;
    if let Some(path) = &options.state_file {
        let _ = std::fs::remove_file(path);
    }
    drop(devnet);
    Ok(())
}

/// Written to a temporary file and renamed, so a reader never sees half of it.
fn write_state(path: &Path, state: &DevState) -> Result<(), DevError> {
    let text = serde_json::to_string_pretty(state).map_err(|e| DevError::Setup(e.to_string()))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| DevError::Setup(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| DevError::Setup(format!("{}: {e}", path.display())))
}

fn summary(state: &DevState, state_file: Option<&Path>) -> String {
    let price = |atomic: &str| format_usd(atomic.parse().unwrap_or(U256::ZERO), 6);
    let mut out = String::from("nerdcabal dev: the whole x402 loop on loopback\n");
    out.push_str(&format!(
        "  devnet       {} ({})\n",
        state.devnet.rpc_url, state.devnet.network
    ));
    out.push_str(&format!("  facilitator  {}\n", state.facilitator_url));
    out.push_str(&format!(
        "  proxy        {}   (metrics {}/metrics)\n",
        state.proxy_url, state.admin_url
    ));
    out.push_str(&format!("  demo API     {}   (behind the proxy)\n", state.api_url));
    out.push_str("  routes\n");
    out.push_str(&format!("    {}  {} USDC\n", state.paid_url, price(&state.price)));
    out.push_str(&format!("    {}  {} USDC\n", state.dear_url, price(&state.dear_price)));
    out.push_str(&format!("    {}  free\n", state.free_url));
    out.push_str(&format!("  seller (payTo) {}\n", state.seller.address));
    out.push_str(&format!(
        "  buyer          {}  key {}  (anvil's public test key, 1,000,000 USDC)\n",
        state.buyer.address,
        state.buyer.private_key.map(|k| k.to_string()).unwrap_or_default()
    ));
    if let Some(path) = state_file {
        out.push_str(&format!("  state file     {}\n", path.display()));
    }
    out.push_str("Try it:\n");
    out.push_str(&format!(
        "  NERDCABAL_BUYER_KEY={} cargo run --release -- pay --network {} {}\n",
        state.buyer.private_key.map(|k| k.to_string()).unwrap_or_default(),
        state.devnet.network,
        state.paid_url
    ));
    out.push_str("Press Ctrl-C to stop.");
    out
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
