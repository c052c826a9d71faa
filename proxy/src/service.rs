//! Assembling and running the proxy: the facilitator link (remote, or the engine in-process with its
//! reconciler), the upstream client, the route table, limits, tokens and metrics; the public listener and the
//! admin listener (`/metrics`, `/health`, `/payments?state=…`); the background settler of deferred payments;
//! pruning of expired payment records; route reload on SIGHUP (the new table replaces the old at once, an
//! invalid file is refused and the old routes stay; the TLS certificate, when `[tls]` is set, is re-read too);
//! graceful shutdown (which settles what was served deferred, for up to 5 s).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use facilitator::config::FacilitatorConfig;
use protocol::Networks;
use tokio::net::TcpListener;

use crate::access_token::AccessTokens;
use crate::call_counter::CallCounter;
use crate::client_ip::TrustedProxies;
use crate::config::{ConfigError, ProxyConfig};
use crate::deferred_ledger::DeferredLedger;
use crate::deferred_settler::DeferredQueue;
use crate::facilitator_link::{FacilitatorLink, LinkError};
use crate::metrics::Metrics;
use crate::payment_store::{PaymentStore, Stage, StoreError};
use crate::rate_limits::{RateLimits, RouteLimits};
use crate::route_table::RouteTable;
use crate::tls_listener::{TlsCerts, TlsError};
use crate::upstream::{Upstream, UpstreamError};

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the embedded facilitator: {0}")]
    FacilitatorConfig(#[from] facilitator::config::ConfigError),
    #[error("the embedded facilitator: {0}")]
    Facilitator(#[from] facilitator::service::ServiceError),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// The routes in force, with their per-route limiters.
pub struct LoadedRoutes {
    pub table: Arc<RouteTable>,
    pub limits: RouteLimits,
}

/// What every request handler shares.
pub struct ProxyState {
    routes: RwLock<Arc<LoadedRoutes>>,
    pub facilitator: FacilitatorLink,
    pub upstream: Upstream,
    /// Every payment's lifecycle, shared with replicas on the same database.
    pub store: PaymentStore,
    /// How long a request may own a payment before a copy may take it over: the upstream's time plus
    /// the facilitator's for verify and settle.
    pub lease: Duration,
    pub replay_body_limit: usize,
    pub merge_slashes: bool,
    pub tokens: Option<AccessTokens>,
    pub limits: RateLimits,
    /// Whose `X-Forwarded-For` names the client for the per-IP limits.
    pub trusted_proxies: TrustedProxies,
    pub metrics: Arc<Metrics>,
    pub body_limit: usize,
    /// Deferred settlement: the bounds, and the handle that wakes (or holds) the background settler.
    pub deferred: Arc<DeferredQueue>,
    /// Deferred payments' reservations, settler leases and refused payers, in the state database.
    pub deferred_ledger: DeferredLedger,
}

impl ProxyState {
    /// The routes in force now (a reload swaps them whole).
    pub fn routes(&self) -> Arc<LoadedRoutes> {
        match self.routes.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace_routes(&self, loaded: LoadedRoutes) {
        let loaded = Arc::new(loaded);
        match self.routes.write() {
            Ok(mut guard) => *guard = loaded,
            Err(poisoned) => *poisoned.into_inner() = loaded,
        }
    }
}

/// Where the proxy's configuration came from, for reloads, and the networks it prices in.
#[derive(Default)]
pub struct ProxyOptions {
    /// The file SIGHUP re-reads.
    pub config_path: Option<PathBuf>,
    /// A `nerdcabal devnet --state-file` to price and (embedded) settle on.
    pub devnet: Option<contracts::DevnetState>,
    /// The embedded facilitator's configuration, instead of reading `[facilitator] config` and the env.
    pub facilitator_config: Option<FacilitatorConfig>,
}

/// What SIGHUP reloads came to: for the log, `/metrics`, and whoever waits on one (a test, a supervisor).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadStatus {
    /// The SIGHUP handler is installed: a hang-up from now on is seen.
    pub listening: bool,
    /// Reloads attempted so far.
    pub attempts: u64,
    /// The last attempt's outcome: how many routes are in force, or why the file was refused.
    pub last: Option<Result<usize, String>>,
}

pub struct Proxy {
    pub state: Arc<ProxyState>,
    reloads: tokio::sync::watch::Sender<ReloadStatus>,
    config: ProxyConfig,
    config_path: Option<PathBuf>,
    networks: Networks,
    embedded: Option<facilitator::settle::Settler>,
    /// `[tls]`: the public listener serves HTTPS with these.
    tls: Option<Arc<TlsCerts>>,
}

impl Proxy {
    pub async fn build(config: ProxyConfig, options: ProxyOptions) -> Result<Self, ProxyError> {
        let mut networks = Networks::builtin();
        if let Some(devnet) = &options.devnet {
            networks.replace(devnet.network_definition());
        }
        let (link, embedded) = if config.facilitator.embedded {
            let mut engine_config = match options.facilitator_config {
                Some(given) => given,
                None => {
                    let path = config.facilitator.config.as_ref().map(PathBuf::from);
                    FacilitatorConfig::load(path.as_deref(), Vec::new())?
                }
            };
            if let Some(devnet) = &options.devnet {
                engine_config.add_devnet(devnet)?;
            }
            for network in engine_config.network_definitions() {
                networks.replace(network);
            }
            let engine = facilitator::service::Facilitator::build(engine_config).await?;
            let settler = engine.settler.clone();
            (FacilitatorLink::Embedded(settler.clone()), Some(settler))
        } else {
            let url = config.facilitator.url.clone().unwrap_or_default();
            let link = FacilitatorLink::remote(
                &url,
                config.facilitator.api_key.clone(),
                Duration::from_millis(config.facilitator.timeout_ms),
            )?;
            (link, None)
        };
        let table = RouteTable::build(&config, &networks)?;
        let store_url = crate::payment_store::database_url(config.state_database.as_deref())?;
        let store = PaymentStore::open(&store_url).await.map_err(|e| {
            ConfigError::invalid(
                "state_database",
                format!("{}: {e}", facilitator::config::redact_url(&store_url)),
            )
        })?;
        let deferred_ledger = DeferredLedger::open(store.pool().clone()).await?;
        let deferred_settings = config.deferred.settings()?;
        let margin = Duration::from_millis(config.upstream_timeout_ms.saturating_add(config.facilitator.timeout_ms))
            + deferred_settings.flush_interval
            + crate::deferred_settler::FACILITATOR_MIN_REMAINING;
        let deferred = Arc::new(DeferredQueue::new(deferred_settings, margin));
        let lease = Duration::from_millis(
            config
                .upstream_timeout_ms
                .saturating_add(config.upstream_read_timeout_ms.min(config.upstream_timeout_ms))
                .saturating_add(config.facilitator.timeout_ms.saturating_mul(2)),
        ) + Duration::from_secs(2);
        let state = ProxyState {
            routes: RwLock::new(Arc::new(LoadedRoutes {
                limits: RouteLimits::for_table(&table),
                table,
            })),
            facilitator: link,
            upstream: Upstream::new(
                Duration::from_millis(config.upstream_timeout_ms),
                Duration::from_millis(config.upstream_read_timeout_ms),
                config.body_limit_bytes,
            )?,
            tokens: AccessTokens::with_counter(
                &config.access_token_secrets,
                CallCounter::Database(store.pool().clone()),
            ),
            store,
            lease,
            replay_body_limit: config.replay_body_limit,
            merge_slashes: config.merge_slashes,
            limits: RateLimits::new(config.limits.per_ip_per_second, config.limits.per_payer_per_second),
            trusted_proxies: config.trusted_proxies.clone(),
            metrics: Arc::new(Metrics::default()),
            body_limit: config.body_limit_bytes,
            deferred,
            deferred_ledger,
        };
        let tls = config.tls.as_ref().map(TlsCerts::load).transpose()?.map(Arc::new);
        Ok(Proxy {
            state: Arc::new(state),
            reloads: tokio::sync::watch::Sender::new(ReloadStatus::default()),
            config,
            config_path: options.config_path,
            networks,
            embedded,
            tls,
        })
    }

    /// The public router: one handler behind every path.
    pub fn router(&self) -> Router {
        Router::new()
            .fallback(crate::pipeline::handle)
            .with_state(self.state.clone())
    }

    /// The admin router: `/metrics`, `/health` and `/payments`.
    pub fn admin_router(&self) -> Router {
        Router::new()
            .route("/metrics", get(metrics))
            .route("/health", get(health))
            .route("/payments", get(payments))
            .with_state(self.state.clone())
    }

    /// Follows SIGHUP reloads as they happen.
    pub fn reload_status(&self) -> tokio::sync::watch::Receiver<ReloadStatus> {
        self.reloads.subscribe()
    }

    /// Re-reads the configuration file and swaps in its routes. An invalid file changes nothing.
    pub fn reload(&self) -> Result<usize, ProxyError> {
        let Some(path) = &self.config_path else {
            return Ok(self.state.routes().table.routes().len());
        };
        let config = ProxyConfig::load(path)?;
        self.reload_from(&config)
    }

    /// Swaps in `config`'s routes (and unmatched policy). Listeners and the facilitator need a restart.
    pub fn reload_from(&self, config: &ProxyConfig) -> Result<usize, ProxyError> {
        let table = RouteTable::build(config, &self.networks)?;
        if config.listen != self.config.listen
            || config.admin_listen != self.config.admin_listen
            || config.facilitator.url != self.config.facilitator.url
            || config.facilitator.embedded != self.config.facilitator.embedded
            || config.tls.is_some() != self.config.tls.is_some()
        {
            tracing::warn!("listeners and the facilitator are not reloaded; restart to change them");
        }
        if config.deferred.settings().ok().as_ref() != Some(self.state.deferred.settings()) {
            tracing::warn!("[deferred] is not reloaded; restart to change its bounds and batching");
        }
        let count = table.routes().len();
        self.state.replace_routes(LoadedRoutes {
            limits: RouteLimits::for_table(&table),
            table,
        });
        Ok(count)
    }

    /// Serves on the given listeners until `shutdown` resolves, reloading routes on SIGHUP.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        admin: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ProxyError> {
        // Dropping this future (an abort, not a graceful stop) stops what it started too.
        let mut background = Background::default();
        if let Some(settler) = &self.embedded {
            let report = settler.reconcile_once(Duration::from_secs(2)).await;
            tracing::info!(?report, "embedded facilitator: start-up reconciliation done");
            background.push(settler.spawn_reconciler(Duration::from_secs(2)));
        }
        self.check_supported().await;
        background.push(spawn_pruning(self.state.clone()));
        background.push(crate::heap_release::spawn(crate::heap_release::TRIM_EVERY));
        background.push(crate::deferred_settler::spawn(self.state.clone()));
        let admin_app = self.admin_router();
        background.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(admin, admin_app).await {
                tracing::error!(error = %e, "admin listener stopped");
            }
        }));
        let app = self.router();
        background.push(spawn_reload_on_hangup(self.clone()));
        background.push(crate::rate_limits::spawn_pruner(
            self.state.clone(),
            crate::rate_limits::PRUNE_EVERY,
        ));
        let served = match &self.tls {
            Some(certs) => crate::tls_listener::serve(listener, app, certs.clone(), shutdown).await,
            None => {
                axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        };
        drop(background);
        // A clean stop settles what was served (bounded; whatever is left settles at the next start).
        let drained = tokio::time::timeout(Duration::from_secs(5), crate::deferred_settler::drain(&self.state)).await;
        if drained.is_err() {
            tracing::warn!("deferred payments still unsettled at shutdown; they settle at the next start");
        }
        if let Some(settler) = &self.embedded {
            // In-flight settlements have finished; record any receipt that arrived meanwhile.
            let _ = settler.reconcile_once(Duration::from_millis(500)).await;
            settler.verifier().ledger().close().await;
        }
        self.state.store.close().await;
        served.map_err(ProxyError::Serve)
    }

    /// Warns about priced routes whose network the facilitator does not list in `/supported` (cached), so a
    /// misconfiguration shows at start-up rather than as refused payments.
    async fn check_supported(&self) {
        let supported = match self.state.facilitator.supported().await {
            Ok(supported) => supported,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the facilitator's /supported; payments will fail until it answers");
                return;
            }
        };
        for route in self.state.routes().table.routes() {
            let Some(pricing) = &route.pricing else {
                continue;
            };
            let listed = supported.kinds.iter().any(|k| {
                k.x402_version == 2
                    && k.scheme == pricing.requirement.scheme
                    && k.network == pricing.requirement.network
            });
            if !listed {
                tracing::warn!(route = %route.name, network = %pricing.requirement.network, "the facilitator does not list this route's network");
            }
        }
    }

    /// Binds the configured listeners and serves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Result<(), ProxyError> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ProxyError::Listen { addr, source })
        };
        let listener = bind(self.config.listen).await?;
        let admin = bind(self.config.admin_listen).await?;
        tracing::info!(listen = %self.config.listen, admin = %self.config.admin_listen, "proxy listening");
        Arc::new(self).serve(listener, admin, shutdown).await
    }
}

#[cfg(unix)]
fn spawn_reload_on_hangup(proxy: Arc<Proxy>) -> tokio::task::JoinHandle<()> {
    // Installed before `serve` goes on, so a hang-up once the proxy serves is never missed.
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    tokio::spawn(async move {
        let Ok(mut hangups) = hangups else {
            tracing::warn!("cannot listen for SIGHUP; routes will not reload");
            return;
        };
        proxy.reloads.send_modify(|status| status.listening = true);
        while hangups.recv().await.is_some() {
            // The certificate first, so new routes being in force means the certificate was read too.
            if let Some(certs) = &proxy.tls {
                certs.reload_logged();
            }
            let outcome = proxy.reload();
            match &outcome {
                Ok(count) => tracing::info!(routes = count, "routes reloaded"),
                Err(e) => tracing::error!(error = %e, "reload refused; the old routes stay"),
            }
            proxy
                .state
                .metrics
                .reloaded(if outcome.is_ok() { "applied" } else { "refused" });
            proxy.reloads.send_modify(|status| {
                status.attempts += 1;
                status.last = Some(outcome.map_err(|e| e.to_string()));
            });
        }
    })
}

#[cfg(not(unix))]
fn spawn_reload_on_hangup(_proxy: Arc<Proxy>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {})
}

/// The tasks [`Proxy::serve`] started, aborted when it ends or is dropped.
#[derive(Default)]
struct Background(Vec<tokio::task::JoinHandle<()>>);

impl Background {
    fn push(&mut self, task: tokio::task::JoinHandle<()>) {
        self.0.push(task);
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Deletes expired payment records (and the reservations of pruned deferred payments) once a minute.
fn spawn_pruning(state: Arc<ProxyState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            match state.store.prune(now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, "expired payment records pruned"),
                Err(e) => tracing::warn!(error = %e, "cannot prune payment records"),
            }
            if let Err(e) = state.deferred_ledger.prune().await {
                tracing::warn!(error = %e, "cannot prune deferred reservations");
            }
        }
    })
}

#[derive(serde::Deserialize)]
struct PaymentsQuery {
    state: String,
    #[serde(default = "default_listing_limit")]
    limit: u32,
}

fn default_listing_limit() -> u32 {
    100
}

/// `GET /payments?state=paid_undelivered[&limit=N]`: the payments in that stage, newest first.
async fn payments(
    State(state): State<Arc<ProxyState>>,
    query: Result<axum::extract::Query<PaymentsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    use crate::error_response::json_error;
    use axum::http::StatusCode;
    let Ok(axum::extract::Query(query)) = query else {
        return json_error(StatusCode::BAD_REQUEST, "bad_query", "use ?state=<stage>[&limit=N]");
    };
    let Some(stage) = Stage::parse(&query.state) else {
        let stages: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("state must be one of {}", stages.join(", ")),
        );
    };
    match state.store.list(stage, query.limit.min(10_000)).await {
        Ok(records) => {
            let payments: Vec<serde_json::Value> = records
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "state": r.stage.as_str(),
                        "route": r.route,
                        "network": r.network,
                        "payer": r.payer,
                        "amount": r.amount,
                        "transaction": r.settlement.as_ref().map(|s| s.transaction.clone()),
                        "updatedAt": r.updated_at,
                    })
                })
                .collect();
            axum::Json(serde_json::json!({"state": stage.as_str(), "payments": payments})).into_response()
        }
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, "state_unavailable", e),
    }
}

async fn metrics(State(state): State<Arc<ProxyState>>) -> Response {
    match state.store.count(Stage::PaidUndelivered).await {
        Ok(n) => {
            state.metrics.paid_undelivered.set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        Err(e) => tracing::warn!(error = %e, "cannot count paid, undelivered payments"),
    }
    match state.deferred_ledger.exposure().await {
        Ok(exposure) => {
            let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            state.metrics.deferred_unsettled_payments.set(gauge(exposure.payments));
            state
                .metrics
                .deferred_unsettled_atomic_units
                .set(gauge(exposure.atomic_units));
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the deferred exposure"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn health() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}
