//! The chain as the facilitator sees it: one client per configured network, holding the JSON-RPC provider,
//! the token metadata cache (EIP-712 name and version, read once per asset), and the reads a verify needs,
//! gathered in a single round trip (one Multicall3 `aggregate3` plus `eth_getCode` and the settlement
//! simulation, all concurrently).

pub mod mirror;
mod reads;
pub mod redact;
mod snapshot;
pub mod token;
mod transport;

pub use reads::NonceCounts;
pub use snapshot::{ChainSnapshot, SnapshotRequest};

use std::sync::Arc;
use std::time::Duration;

use alloy::eips::eip1559::Eip1559Estimation;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use moka::future::Cache;
use protocol::network::{MULTICALL3, Network};

/// Why the chain could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChainError {
    #[error("RPC request failed: {0}")]
    Rpc(String),
    /// The URL itself is not quoted: it may hold credentials.
    #[error("the RPC URL of network `{0}` is not a valid URL")]
    BadUrl(String),
    #[error("the chain answered something unreadable: {0}")]
    Decode(String),
}

/// How RPC requests are bounded and retried.
#[derive(Debug, Clone, Copy)]
pub struct RpcOptions {
    pub timeout: Duration,
    pub retries: u32,
}

impl Default for RpcOptions {
    fn default() -> Self {
        RpcOptions {
            timeout: Duration::from_secs(5),
            retries: 3,
        }
    }
}

/// EIP-712 name and version a token reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDomain {
    pub name: String,
    pub version: String,
}

/// Per asset: the EIP-712 name, version and the domain separator under them.
type Separators = std::collections::HashMap<Address, (String, String, B256)>;

/// One network's chain access.
#[derive(Clone)]
pub struct ChainClient {
    pub network: Arc<Network>,
    pub caip2: Arc<str>,
    provider: DynProvider,
    multicall3: Address,
    domains: Cache<Address, TokenDomain>,
    fees: Cache<(), Eip1559Estimation>,
    has_code: Cache<Address, bool>,
    /// The credentials in the RPC URL, masked in every error the transport yields.
    secrets: Arc<redact::RpcSecrets>,
    /// The queue of the task that coalesces snapshots (started by the first snapshot).
    snapshot_queue: Arc<std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<snapshot::Pending>>>,
    /// The live chain-state mirror verify reads first, when configured.
    mirror: Option<mirror::Mirror>,
    /// Per configured asset, the EIP-712 domain separator of the first name and version seen for it.
    separators: Arc<std::sync::RwLock<Separators>>,
}

impl ChainClient {
    /// A client for `network` at `rpc_url`: every request bounded by `rpc.timeout`, and retried with back-off
    /// (up to `rpc.retries` times) when the node is rate-limiting or the transport failed. Every error the
    /// transport yields has the URL's credentials masked (see [`redact`]), and nothing logs the URL.
    pub fn connect(
        network: Network,
        rpc_url: &str,
        multicall3: Option<Address>,
        rpc: RpcOptions,
    ) -> Result<Self, ChainError> {
        // HTTP clients use ring-only rustls; installing the provider twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url: url::Url = rpc_url.parse().map_err(|_| ChainError::BadUrl(network.name.clone()))?;
        let secrets = Arc::new(redact::RpcSecrets::of(rpc_url));
        let http = alloy::transports::http::reqwest::Client::builder()
            .timeout(rpc.timeout)
            .connect_timeout(rpc.timeout)
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| ChainError::Rpc(format!("building the HTTP client: {e}")))?;
        // The redacting layer sits right on the HTTP transport, so the retry layer above it (which logs the
        // errors it retries) and everything else only ever see redacted errors.
        let transport = transport::RpcHttp::new(http, url, &network.name);
        let is_local = transport.is_local();
        let client = alloy::rpc::client::ClientBuilder::default()
            .layer(alloy::transports::layers::RetryBackoffLayer::new(
                rpc.retries,
                100,
                u64::MAX,
            ))
            .layer(redact::RedactLayer::new(secrets.clone()))
            .transport(transport, is_local);
        let provider = ProviderBuilder::new().connect_client(client).erased();
        let mut chain = Self::with_provider(network, provider, multicall3);
        chain.secrets = secrets;
        Ok(chain)
    }

    pub fn with_provider(network: Network, provider: DynProvider, multicall3: Option<Address>) -> Self {
        ChainClient {
            secrets: Arc::new(redact::RpcSecrets::default()),
            caip2: network.caip2().into(),
            network: Arc::new(network),
            provider,
            multicall3: multicall3.unwrap_or(MULTICALL3),
            domains: Cache::builder()
                .max_capacity(1_024)
                .time_to_live(Duration::from_secs(3_600))
                .build(),
            fees: Cache::builder()
                .max_capacity(1)
                .time_to_live(Duration::from_secs(2))
                .build(),
            has_code: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
            snapshot_queue: Arc::new(std::sync::OnceLock::new()),
            mirror: None,
            separators: Arc::default(),
        }
    }

    /// The EIP-712 domain separator of `asset` under `name` and `version` on this chain — kept for the first
    /// pair seen per asset (the token's own, in practice: any other fails the domain check), computed for
    /// any other. `asset` must be a configured asset, so the map stays as small as the configuration.
    pub fn domain_separator(&self, name: &str, version: &str, asset: Address) -> B256 {
        let known = self.separators.read().unwrap_or_else(|p| p.into_inner());
        if let Some((n, v, separator)) = known.get(&asset)
            && n == name
            && v == version
        {
            return *separator;
        }
        let first_for_asset = !known.contains_key(&asset);
        drop(known);
        let separator = protocol::eip3009::domain(name, version, self.chain_id(), asset).separator();
        if first_for_asset {
            self.separators
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .entry(asset)
                .or_insert_with(|| (name.to_owned(), version.to_owned(), separator));
        }
        separator
    }

    /// This client with a chain-state mirror (see [`mirror`]); its followers start on first use.
    pub fn with_mirror(mut self, config: mirror::MirrorConfig, events: mirror::MirrorEvents) -> Self {
        self.mirror = Some(mirror::Mirror::new(
            self.provider.clone(),
            self.multicall3,
            self.caip2.clone(),
            config,
            events,
        ));
        self
    }

    pub fn mirror(&self) -> Option<&mirror::Mirror> {
        self.mirror.as_ref()
    }

    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    pub fn chain_id(&self) -> u64 {
        self.network.chain_id
    }

    /// `text` with the RPC URL's credentials masked (for messages built from errors of other layers).
    pub fn redact(&self, text: &str) -> String {
        self.secrets.redact(text)
    }

    /// The token's EIP-712 name and version, read once and cached.
    pub async fn token_domain(&self, asset: Address) -> Result<TokenDomain, ChainError> {
        let provider = self.provider.clone();
        self.domains
            .try_get_with(asset, async move {
                let token = token::IFiatToken::new(asset, provider);
                let (name_call, version_call) = (token.name(), token.version());
                let (name, version) = tokio::join!(name_call.call(), version_call.call());
                Ok(TokenDomain {
                    name: name.map_err(|e| ChainError::Rpc(e.to_string()))?,
                    version: version.map_err(|e| ChainError::Rpc(e.to_string()))?,
                })
            })
            .await
            .map_err(|e: Arc<ChainError>| (*e).clone())
    }

    /// Whether `address` has code (a contract wallet), cached for 30 s: code appears when a wallet is
    /// deployed, which is rare, and a stale "no code" only makes a contract wallet's payment fail verify.
    pub async fn has_code(&self, address: Address) -> Result<bool, ChainError> {
        let provider = self.provider.clone();
        self.has_code
            .try_get_with(address, async move {
                provider
                    .get_code_at(address)
                    .await
                    .map(|code| !code.is_empty())
                    .map_err(|e| ChainError::Rpc(e.to_string()))
            })
            .await
            .map_err(|e: Arc<ChainError>| (*e).clone())
    }

    /// Current EIP-1559 fees, read from the chain at most every two seconds.
    pub async fn fees(&self) -> Result<Eip1559Estimation, ChainError> {
        let provider = self.provider.clone();
        self.fees
            .try_get_with((), async move {
                provider
                    .estimate_eip1559_fees()
                    .await
                    .map_err(|e| ChainError::Rpc(e.to_string()))
            })
            .await
            .map_err(|e: Arc<ChainError>| (*e).clone())
    }

    /// Whether the chain answers, and with the chain id we expect.
    pub async fn ready(&self) -> Result<(), ChainError> {
        let id = self
            .provider
            .get_chain_id()
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))?;
        if id != self.network.chain_id {
            return Err(ChainError::Rpc(format!(
                "RPC reports chain id {id}, configured {}",
                self.network.chain_id
            )));
        }
        Ok(())
    }

    /// The Multicall3 address used for batched reads and batched settlement.
    pub fn multicall3(&self) -> Address {
        self.multicall3
    }

    /// A transaction's receipt status, if mined: `Some(true)` succeeded, `Some(false)` reverted.
    pub async fn receipt_status(&self, tx_hash: B256) -> Result<Option<bool>, ChainError> {
        let receipt = self
            .provider
            .get_transaction_receipt(tx_hash)
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))?;
        Ok(receipt.map(|r| r.status()))
    }
}
