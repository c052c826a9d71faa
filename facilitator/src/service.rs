//! Assembling and running the facilitator: ledger, chain clients, settlement signers, engines; reconciliation
//! of unfinished payments before the first request is taken; the periodic reconciler and gas-balance watch;
//! then the HTTP service until a shutdown signal, finishing in-flight requests before it exits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use tokio::net::TcpListener;

use crate::chain::{ChainClient, ChainError, RpcOptions};
use crate::config::FacilitatorConfig;
use crate::http::{AppState, guard::Guard, router};
use crate::ledger::{Ledger, LedgerError};
use crate::metrics::{Metrics, SignerLabels};
use crate::settle::signer::SignerPool;
use crate::settle::{SettleConfig, Settler};
use crate::verify::{Verifier, VerifyConfig};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("no networks are configured (add [[networks]] or --devnet)")]
    NoNetworks,
    #[error(transparent)]
    Unauthenticated(#[from] crate::exposure::Unauthenticated),
    /// Screening is fail-closed: a `[compliance]` section nobody turned into a screen stops the start.
    #[error("the configuration has a [compliance] section but no screener was built from it")]
    ComplianceUnwired,
}

/// A facilitator ready to serve.
pub struct Facilitator {
    pub settler: Settler,
    pub metrics: Arc<Metrics>,
    config: FacilitatorConfig,
}

impl Facilitator {
    /// Connects everything the configuration names.
    pub async fn build(config: FacilitatorConfig) -> Result<Self, ServiceError> {
        if config.compliance.is_some() && config.screen.is_none() {
            return Err(ServiceError::ComplianceUnwired);
        }
        if config.networks.is_empty() {
            return Err(ServiceError::NoNetworks);
        }
        let ledger = Ledger::connect(&config.database_url).await?;
        let metrics = Arc::new(Metrics::default());
        let mut chains = Vec::new();
        let mut pools = HashMap::new();
        for (network, settings) in config.network_definitions().into_iter().zip(&config.networks) {
            let rpc = RpcOptions {
                timeout: Duration::from_millis(settings.rpc_timeout_ms),
                retries: settings.rpc_retries,
            };
            let mut chain = ChainClient::connect(network, &settings.rpc_url, settings.multicall3, rpc)?;
            if let Some(mirror) = config.mirror {
                chain = chain.with_mirror(mirror, metrics.mirror_events.clone());
            }
            let keys = config.settlement_keys.clone();
            if let Some(pool) = SignerPool::spawn(keys, chain.clone(), ledger.clone(), config.signer) {
                pools.insert(chain.caip2.to_string(), pool);
            }
            chains.push(chain);
        }
        let simulate_from = config
            .settlement_keys
            .first()
            .map(|k| k.address())
            .unwrap_or(Address::ZERO);
        let verifier = Verifier::new(
            chains,
            ledger,
            simulate_from,
            VerifyConfig {
                clock_skew_secs: config.clock_skew_secs,
                erc6492_factories: config.erc6492_factories.clone(),
                reuse_secs: config.verify_reuse_secs,
            },
        )
        .counting_into(metrics.verify_sources.clone());
        let verifier = match &config.screen {
            Some(screen) => verifier.screening_with(screen.clone()),
            None => verifier,
        };
        let settler = Settler::new(
            verifier,
            pools,
            SettleConfig {
                receipt_timeout: config.receipt_timeout,
                batch: config.batch,
                ..SettleConfig::default()
            },
        );
        Ok(Facilitator {
            settler,
            metrics,
            config,
        })
    }

    /// The axum router of this facilitator.
    pub fn router(&self) -> axum::Router {
        let guard = Guard::new(
            self.config.api_keys.clone(),
            self.config.require_key_for_verify,
            self.config.per_ip_per_second,
            self.config.per_key_per_second,
        );
        router(
            AppState {
                settler: self.settler.clone(),
                metrics: self.metrics.clone(),
            },
            guard,
            self.config.body_limit_bytes,
        )
    }

    /// Reconciles, then serves on `listener` until `shutdown` resolves. A non-loopback listener with no API
    /// key is refused unless the configuration allows it (see [`crate::exposure`]).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServiceError> {
        let addr = listener.local_addr().map_err(|source| ServiceError::Listen {
            addr: self.config.listen,
            source,
        })?;
        crate::exposure::check(
            addr,
            !self.config.api_keys.is_empty(),
            self.config.allow_unauthenticated,
        )?;
        let report = self.settler.reconcile_once(Duration::from_secs(2)).await;
        tracing::info!(?report, "start-up reconciliation done");
        let reconciler = self.settler.spawn_reconciler(self.config.reconcile_interval);
        let gas_watch = spawn_gas_watch(
            self.settler.clone(),
            self.metrics.clone(),
            self.config.low_gas_warning_wei,
        );
        let app = self.router();
        let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await;
        reconciler.abort();
        gas_watch.abort();
        // In-flight requests have finished; one more pass records any receipt that arrived meanwhile.
        let _ = self.settler.reconcile_once(Duration::from_millis(500)).await;
        self.settler.verifier().ledger().close().await;
        served.map_err(ServiceError::Serve)
    }

    /// Binds the configured address and serves.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServiceError> {
        let addr = self.config.listen;
        // Refused before binding, so nothing ever listens exposed.
        crate::exposure::check(
            addr,
            !self.config.api_keys.is_empty(),
            self.config.allow_unauthenticated,
        )?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServiceError::Listen { addr, source })?;
        tracing::info!(%addr, "facilitator listening");
        self.serve(listener, shutdown).await
    }
}

/// Every 30 s: each signer's native balance into the metric, and a warning when it runs low.
fn spawn_gas_watch(settler: Settler, metrics: Arc<Metrics>, low: U256) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tick.tick().await;
            for chain in settler.verifier().chains() {
                let Some(pool) = settler.pool(&chain.caip2) else {
                    continue;
                };
                for address in pool.addresses() {
                    let Ok(balance) = chain.provider().get_balance(address).await else {
                        continue;
                    };
                    let gwei = balance / U256::from(1_000_000_000u64);
                    metrics
                        .signer_gas_gwei
                        .get_or_create(&SignerLabels {
                            network: chain.caip2.to_string(),
                            signer: address.to_string(),
                        })
                        .set(i64::try_from(gwei).unwrap_or(i64::MAX));
                    if balance < low {
                        tracing::warn!(network = %chain.caip2, signer = %address, %balance, "settlement signer is low on gas");
                    }
                }
            }
        }
    })
}
