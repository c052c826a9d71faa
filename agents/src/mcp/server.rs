//! `nerdcabal mcp`: the buyer tools served over MCP — stdio by default, or streamable HTTP at `/mcp` behind a
//! bearer token and Origin validation (`http_auth`; rmcp builds a handler per session; all state is in the
//! shared spend ledger). Stops on Ctrl-C/SIGTERM or when the stdio client goes away.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::buyer::buyer_config::{BuyerConfig, BuyerFlags};
use crate::buyer::fetch_guard::FetchGuard;
use crate::buyer::spend_ledger::SpendLedger;
use crate::buyer::x402_client::X402Client;
use crate::compliance::payment_check::PaymentScreen;
use crate::mcp::buyer_tools::{BuyerTools, BuyerToolsConfig};
use crate::mcp::http_auth::{self, HttpAccess, HttpAuthError};
use crate::treasury::local_custody::LocalCustody;
use crate::treasury::onchain_custody::OnChainCustody;

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error(transparent)]
    Config(#[from] crate::buyer::buyer_config::BuyerConfigError),
    #[error(transparent)]
    Ledger(#[from] crate::buyer::spend_ledger::SpendLedgerError),
    #[error(transparent)]
    Client(#[from] crate::buyer::x402_client::PayError),
    #[error(transparent)]
    Auth(#[from] HttpAuthError),
    #[error(transparent)]
    Treasury(#[from] crate::treasury::custody::CustodyError),
    #[error(transparent)]
    Compliance(#[from] crate::compliance::compliance_config::ComplianceConfigError),
    #[error("fetch policy: {0}")]
    FetchPolicy(String),
    #[error("MCP over stdio: {0}")]
    Stdio(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("the MCP HTTP server failed: {0}")]
    Serve(std::io::Error),
}

#[derive(Clone, Default)]
pub struct McpOptions {
    /// Serve streamable HTTP here instead of stdio.
    pub http: Option<SocketAddr>,
    /// The bearer token HTTP clients must present (else one is generated, for a loopback bind).
    pub http_token: Option<String>,
    /// Where a generated token is written (default `~/.nerdcabal/mcp-token`).
    pub http_token_file: Option<PathBuf>,
    /// Browser origins allowed besides the server's own (`scheme://host[:port]`).
    pub http_allowed_origins: Vec<String>,
    pub buyer: BuyerFlags,
    pub timeout: Duration,
}

/// What the tools may fetch: public addresses, `[fetch] allow_hosts`, and under `--devnet` the dev stack's
/// proxy (its host and port only: not its admin, facilitator or RPC ports).
pub fn fetch_policy(config: &BuyerConfig) -> Result<FetchGuard, McpError> {
    let mut guard = FetchGuard::new(&config.allow_hosts).map_err(McpError::FetchPolicy)?;
    if let Some(proxy) = config.devnet.as_ref().and_then(|d| d.proxy_url.as_deref()) {
        let url = url::Url::parse(proxy).map_err(|e| McpError::FetchPolicy(format!("devnet proxy_url: {e}")))?;
        guard.allow_origin_of(&url);
    }
    Ok(guard)
}

/// The tools for a resolved buyer configuration.
pub async fn build_tools(config: BuyerConfig, timeout: Duration) -> Result<BuyerTools, McpError> {
    let ledger = SpendLedger::open(&config.ledger_url).await?;
    crate::buyer::spend_reconcile::at_start(&ledger, &config.rpc_url, &config.network).await;
    let networks = config.networks();
    let guard = fetch_policy(&config)?;
    let screen = PaymentScreen::for_buyer(&config, ledger.clone(), &|name| std::env::var(name).ok()).await?;
    let treasury = config
        .treasury
        .clone()
        .map(|rules| crate::treasury::ledger_policy::TreasuryGuard::new(rules, ledger.clone()));
    let mut client = X402Client::new(config.signer.clone(), config.policy.clone(), ledger, networks, timeout)?
        .with_max_response_bytes(config.max_response_bytes)
        .with_fetch_guard(guard)?
        .with_compliance(screen.clone());
    if let Some(treasury) = treasury {
        client = client.with_treasury(treasury);
    }
    let client = match crate::treasury::treasury_payer::for_config(&config).await? {
        Some(payer) => client.with_treasury_payer(payer),
        None => client,
    };
    // The treasury tools' custody: the on-chain Treasury, else local custody under `[treasury]`.
    let custody: Option<Arc<dyn crate::treasury::custody::Custody>> = match (config.onchain_treasury, &config.local_key)
    {
        (Some(at), Some(key)) => Some(Arc::new(
            OnChainCustody::new(&config.rpc_url, at, Some(key.clone()))?.with_compliance(screen),
        )),
        (None, Some(_)) if config.treasury.is_some() => Some(Arc::new(
            LocalCustody::open(&config, client.ledger().clone())?.with_compliance(screen),
        )),
        _ => None,
    };
    Ok(BuyerTools::new(BuyerToolsConfig {
        client,
        approval_threshold: config.approval_threshold,
        local_key: config.local_key,
        rpc_url: config.rpc_url,
        network: config.network,
        usdc: config.usdc,
        treasury: custody,
    }))
}

pub async fn run(
    options: McpOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), McpError> {
    let config = BuyerConfig::resolve(&options.buyer, |name| std::env::var(name).ok())?;
    tracing::info!(?config, "nerdcabal mcp");
    // Before anything else: a bind that needs a token and has none does not start.
    let access = match options.http {
        Some(addr) => {
            let token = http_auth::resolve_token(options.http_token.clone(), options.http_token_file.clone(), addr)?;
            if let Some(path) = &token.generated_in {
                let _ = writeln!(
                    std::io::stderr(),
                    "nerdcabal mcp: clients of http://{addr}/mcp send `Authorization: Bearer {}` (also in {}, mode 0600)",
                    token.value,
                    path.display()
                );
            }
            Some(HttpAccess::new(&token, addr, &options.http_allowed_origins)?)
        }
        None => None,
    };
    let tools = build_tools(config, options.timeout).await?;
    match options.http.zip(access) {
        None => {
            let running = tools
                .serve(rmcp::transport::stdio())
                .await
                .map_err(|e| McpError::Stdio(e.to_string()))?;
            tokio::select! {
                finished = running.waiting() => { finished.map_err(|e| McpError::Stdio(e.to_string()))?; }
                () = shutdown => {}
            }
            Ok(())
        }
        Some((addr, access)) => {
            let cancel = tokio_util::sync::CancellationToken::new();
            let mut server_config = StreamableHttpServerConfig::default().with_cancellation_token(cancel.child_token());
            if !addr.ip().is_loopback() {
                // rmcp accepts only loopback `Host`s; past loopback the token (required there) is the guard.
                server_config = server_config.disable_allowed_hosts();
            }
            let service = StreamableHttpService::new(
                move || Ok(tools.clone()),
                Arc::new(LocalSessionManager::default()),
                server_config,
            );
            let app = axum::Router::new()
                .nest_service("/mcp", service)
                .layer(axum::middleware::from_fn_with_state(access, http_auth::require));
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| McpError::Listen { addr, source })?;
            tracing::info!(%addr, "MCP over streamable HTTP at /mcp");
            let stop = cancel.clone();
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    shutdown.await;
                    stop.cancel();
                })
                .await
                .map_err(McpError::Serve)
        }
    }
}
