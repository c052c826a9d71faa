//! Facilitator configuration: a TOML file, then environment overrides, then validation that names the bad key.
//! Networks are Arc testnet and mainnet (built in; they need an `rpc_url` to be served) plus custom ones, such
//! as the devnet read from its state file. Settlement keys come from the environment or a file and are never
//! printed: `Debug` of the config redacts them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use protocol::network::{Asset, Network};
use serde::Deserialize;

/// Environment variable with comma-separated settlement private keys.
pub const ENV_SETTLEMENT_KEYS: &str = "NERDCABAL_SETTLEMENT_KEYS";
/// Environment variable with the ledger database URL.
pub const ENV_DATABASE_URL: &str = "DATABASE_URL";
/// Environment variable with comma-separated API keys.
pub const ENV_API_KEYS: &str = "NERDCABAL_FACILITATOR_API_KEYS";
/// Environment variable with the listen address.
pub const ENV_LISTEN: &str = "NERDCABAL_FACILITATOR_LISTEN";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid configuration: {0}")]
    Parse(String),
    #[error("invalid configuration key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// One network to serve.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    pub name: String,
    pub chain_id: u64,
    pub rpc_url: String,
    /// Tokens settled on this network; defaults to USDC at Arc's address.
    #[serde(default)]
    pub assets: Vec<Asset>,
    /// Multicall3 address (the canonical one by default).
    #[serde(default)]
    pub multicall3: Option<Address>,
    /// Per-request RPC timeout.
    #[serde(default = "default_rpc_timeout_ms")]
    pub rpc_timeout_ms: u64,
    /// Retries (with back-off) of a rate-limited or failed RPC request.
    #[serde(default = "default_rpc_retries")]
    pub rpc_retries: u32,
}

impl std::fmt::Debug for NetworkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rpc_url = crate::chain::redact::RpcSecrets::of(&self.rpc_url).redact(&self.rpc_url);
        f.debug_struct("NetworkConfig")
            .field("name", &self.name)
            .field("chain_id", &self.chain_id)
            .field("rpc_url", &rpc_url)
            .field("multicall3", &self.multicall3)
            .finish_non_exhaustive()
    }
}

fn default_rpc_timeout_ms() -> u64 {
    5_000
}

fn default_rpc_retries() -> u32 {
    3
}

/// The file's shape; every section is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    database_url: Option<String>,
    #[serde(default)]
    networks: Vec<NetworkConfig>,
    settlement: Option<SettlementSection>,
    security: Option<SecuritySection>,
    limits: Option<LimitsSection>,
    verify: Option<VerifySection>,
    batch: Option<BatchSection>,
    mirror: Option<MirrorSection>,
    /// Read by the counterparty screen the binary plugs in (`crate::compliance`), not by the facilitator.
    compliance: Option<toml::Table>,
}

/// `[mirror]`: the live chain-state mirror verify reads first (off unless `enabled`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MirrorSection {
    enabled: Option<bool>,
    poll_interval_ms: Option<u64>,
    max_entry_age_secs: Option<u64>,
    max_balance_age_blocks: Option<u64>,
    max_gap_blocks: Option<u64>,
    nonce_lookback_blocks: Option<u64>,
    max_entries: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchSection {
    enabled: Option<bool>,
    max_wait_ms: Option<u64>,
    max_items: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettlementSection {
    key_file: Option<PathBuf>,
    receipt_timeout_ms: Option<u64>,
    low_gas_warning_wei: Option<String>,
    /// A nonce gap older than this is re-sent by the signer's nonce owner.
    nonce_resync_after_ms: Option<u64>,
    /// How often the nonce owner compares its sequence with the chain.
    nonce_check_ms: Option<u64>,
    /// How often the reconciler looks at unfinished payments.
    reconcile_interval_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecuritySection {
    #[serde(default)]
    api_keys: Vec<String>,
    require_key_for_verify: Option<bool>,
    /// Serve a non-loopback address without API keys (also `--allow-unauthenticated`).
    allow_unauthenticated: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    body_bytes: Option<usize>,
    per_ip_per_second: Option<u32>,
    per_key_per_second: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifySection {
    clock_skew_secs: Option<u64>,
    #[serde(default)]
    erc6492_factories: Vec<Address>,
    /// How long a settle reuses the verify of the same payload (0: never).
    reuse_secs: Option<u64>,
}

/// The mirror's settings when `[mirror] enabled = true`, every bound checked.
fn mirror_config(section: MirrorSection) -> Result<Option<crate::chain::mirror::MirrorConfig>, ConfigError> {
    if !section.enabled.unwrap_or(false) {
        return Ok(None);
    }
    let defaults = crate::chain::mirror::MirrorConfig::default();
    let positive = |value: Option<u64>, default: u64, key: &str| match value {
        Some(0) => Err(invalid(format!("mirror.{key}"), "must be positive")),
        Some(v) => Ok(v),
        None => Ok(default),
    };
    let max_entries = section.max_entries.unwrap_or(defaults.max_entries);
    if max_entries == 0 {
        return Err(invalid("mirror.max_entries", "must be positive"));
    }
    Ok(Some(crate::chain::mirror::MirrorConfig {
        poll_interval: Duration::from_millis(positive(
            section.poll_interval_ms,
            defaults.poll_interval.as_millis() as u64,
            "poll_interval_ms",
        )?),
        max_entry_age: Duration::from_secs(positive(
            section.max_entry_age_secs,
            defaults.max_entry_age.as_secs(),
            "max_entry_age_secs",
        )?),
        max_balance_age_blocks: section
            .max_balance_age_blocks
            .unwrap_or(defaults.max_balance_age_blocks),
        max_gap_blocks: positive(section.max_gap_blocks, defaults.max_gap_blocks, "max_gap_blocks")?,
        nonce_lookback_blocks: section.nonce_lookback_blocks.unwrap_or(defaults.nonce_lookback_blocks),
        max_entries,
    }))
}

/// The validated configuration.
#[derive(Clone)]
pub struct FacilitatorConfig {
    pub listen: SocketAddr,
    pub database_url: String,
    pub networks: Vec<NetworkConfig>,
    pub settlement_keys: Vec<PrivateKeySigner>,
    pub receipt_timeout: Duration,
    pub low_gas_warning_wei: alloy::primitives::U256,
    pub api_keys: Vec<String>,
    pub require_key_for_verify: bool,
    /// Whether a non-loopback listen address may be served with no API key (refused otherwise).
    pub allow_unauthenticated: bool,
    /// How each signer's nonce owner watches for gaps.
    pub signer: crate::settle::signer::SignerOptions,
    /// How often the reconciler runs.
    pub reconcile_interval: Duration,
    pub body_limit_bytes: usize,
    pub per_ip_per_second: u32,
    pub per_key_per_second: u32,
    pub clock_skew_secs: u64,
    pub erc6492_factories: Vec<Address>,
    /// Batch settlement settings, when batching is on.
    pub batch: Option<crate::settle::batch::BatchConfig>,
    pub verify_reuse_secs: u64,
    /// The chain-state mirror's settings, when it is on.
    pub mirror: Option<crate::chain::mirror::MirrorConfig>,
    /// The `[compliance]` section as written: whoever builds the facilitator turns it into [`Self::screen`]
    /// (a facilitator with the section and no screen refuses to start: screening is fail-closed).
    pub compliance: Option<toml::Table>,
    /// The counterparty screen asked before every verify and settle.
    pub screen: Option<std::sync::Arc<dyn crate::compliance::CounterpartyScreen>>,
}

impl std::fmt::Debug for FacilitatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FacilitatorConfig")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("networks", &self.networks.iter().map(|n| &n.name).collect::<Vec<_>>())
            .field(
                "settlement_signers",
                &self.settlement_keys.iter().map(|k| k.address()).collect::<Vec<_>>(),
            )
            .field("api_keys", &format_args!("[{} redacted]", self.api_keys.len()))
            .field("allow_unauthenticated", &self.allow_unauthenticated)
            .field("screen", &self.screen.as_ref().map(|s| s.sources()))
            .finish_non_exhaustive()
    }
}

/// A database URL without its password (the one helper, shared with the buyer).
pub use protocol::redact::redact_url;

impl FacilitatorConfig {
    /// Every `(rpc_url, token)` this facilitator settles: what a counterparty screen asks the token's own
    /// blocklist about.
    pub fn screened_tokens(&self) -> Vec<(String, Address)> {
        self.networks
            .iter()
            .flat_map(|n| {
                let tokens: Vec<Address> = if n.assets.is_empty() {
                    vec![protocol::network::ARC_USDC]
                } else {
                    n.assets.iter().map(|a| a.address).collect()
                };
                tokens.into_iter().map(|token| (n.rpc_url.clone(), token))
            })
            .collect()
    }

    /// Reads `path` (if given), applies the environment, adds `extra_networks`, and validates.
    pub fn load(path: Option<&Path>, extra_networks: Vec<NetworkConfig>) -> Result<Self, ConfigError> {
        let file = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Parse(e.to_string()))?
            }
            None => FileConfig::default(),
        };
        Self::from_parts(file, extra_networks, |name| std::env::var(name).ok())
    }

    /// Builds the configuration from TOML text and an environment lookup (for tests).
    pub fn from_toml(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let file = toml::from_str::<FileConfig>(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        Self::from_parts(file, Vec::new(), env)
    }

    fn from_parts(
        file: FileConfig,
        extra_networks: Vec<NetworkConfig>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let listen = match env(ENV_LISTEN) {
            Some(text) => text
                .parse()
                .map_err(|_| invalid(ENV_LISTEN, format!("`{text}` is not host:port")))?,
            None => file.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 4020))),
        };
        let database_url = env(ENV_DATABASE_URL)
            .or(file.database_url)
            .unwrap_or_else(|| "sqlite://facilitator.db".to_owned());
        if !(database_url.starts_with("sqlite:") || database_url.starts_with("postgres")) {
            return Err(invalid("database_url", "must start with sqlite: or postgres://"));
        }

        let settlement = file.settlement.unwrap_or_default();
        let mut key_texts: Vec<(String, String)> = Vec::new();
        if let Some(keys) = env(ENV_SETTLEMENT_KEYS) {
            key_texts.extend(
                keys.split(',')
                    .map(|k| (ENV_SETTLEMENT_KEYS.to_owned(), k.trim().to_owned())),
            );
        }
        if let Some(path) = &settlement.key_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| invalid("settlement.key_file", format!("cannot read {}: {e}", path.display())))?;
            key_texts.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(|k| ("settlement.key_file".to_owned(), k.to_owned())),
            );
        }
        let mut settlement_keys = Vec::new();
        for (i, (source, text)) in key_texts.iter().enumerate() {
            let key: B256 = text.parse().map_err(|_| {
                invalid(
                    source.clone(),
                    format!("key #{} is not a 32-byte hex private key", i + 1),
                )
            })?;
            let signer = PrivateKeySigner::from_bytes(&key)
                .map_err(|_| invalid(source.clone(), format!("key #{} is not a valid secp256k1 key", i + 1)))?;
            settlement_keys.push(signer);
        }

        let mut networks = file.networks;
        networks.extend(extra_networks);
        for (i, network) in networks.iter_mut().enumerate() {
            if url::Url::parse(&network.rpc_url).is_err() {
                // The URL is not quoted: it may hold credentials.
                return Err(invalid(format!("networks[{i}].rpc_url"), "is not a URL"));
            }
            if network.rpc_timeout_ms == 0 {
                return Err(invalid(format!("networks[{i}].rpc_timeout_ms"), "must be positive"));
            }
            if network.assets.is_empty() {
                network.assets.push(Asset::arc_usdc());
            }
        }
        for (i, a) in networks.iter().enumerate() {
            if networks[..i].iter().any(|b| b.chain_id == a.chain_id) {
                return Err(invalid(
                    format!("networks[{i}].chain_id"),
                    format!("chain id {} is configured twice", a.chain_id),
                ));
            }
        }

        let security = file.security.unwrap_or_default();
        let mut api_keys = security.api_keys;
        if let Some(keys) = env(ENV_API_KEYS) {
            api_keys.extend(
                keys.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned),
            );
        }
        let limits = file.limits.unwrap_or_default();
        let verify = file.verify.unwrap_or_default();
        let batch_section = file.batch.unwrap_or_default();
        // Batching is the default: the benchmark measures it ahead of single transactions (README, Benchmarks).
        let batch = if batch_section.enabled.unwrap_or(true) {
            let max_items = batch_section.max_items.unwrap_or(100);
            if max_items == 0 || max_items > 500 {
                return Err(invalid("batch.max_items", "must be between 1 and 500"));
            }
            Some(crate::settle::batch::BatchConfig {
                max_wait: Duration::from_millis(batch_section.max_wait_ms.unwrap_or(20)),
                max_items,
            })
        } else {
            None
        };
        let low_gas_warning_wei = match settlement.low_gas_warning_wei {
            Some(text) => protocol::decimal::parse(&text)
                .ok_or_else(|| invalid("settlement.low_gas_warning_wei", "must be a decimal integer"))?,
            // 0.01 of the native token (18 decimals).
            None => alloy::primitives::U256::from(10_000_000_000_000_000u64),
        };
        let millis = |value: Option<u64>, default: u64, key: &str| match value {
            Some(0) => Err(invalid(format!("settlement.{key}"), "must be positive")),
            Some(ms) => Ok(Duration::from_millis(ms)),
            None => Ok(Duration::from_millis(default)),
        };
        let signer_defaults = crate::settle::signer::SignerOptions::default();
        let signer = crate::settle::signer::SignerOptions {
            resync_after: millis(
                settlement.nonce_resync_after_ms,
                signer_defaults.resync_after.as_millis() as u64,
                "nonce_resync_after_ms",
            )?,
            check_every: millis(
                settlement.nonce_check_ms,
                signer_defaults.check_every.as_millis() as u64,
                "nonce_check_ms",
            )?,
        };
        let reconcile_interval = millis(settlement.reconcile_interval_ms, 2_000, "reconcile_interval_ms")?;
        let mirror = mirror_config(file.mirror.unwrap_or_default())?;
        Ok(FacilitatorConfig {
            listen,
            database_url,
            networks,
            settlement_keys,
            receipt_timeout: Duration::from_millis(settlement.receipt_timeout_ms.unwrap_or(10_000)),
            low_gas_warning_wei,
            api_keys,
            require_key_for_verify: security.require_key_for_verify.unwrap_or(false),
            allow_unauthenticated: security.allow_unauthenticated.unwrap_or(false),
            signer,
            reconcile_interval,
            body_limit_bytes: limits.body_bytes.unwrap_or(64 * 1024),
            per_ip_per_second: limits.per_ip_per_second.unwrap_or(2_000),
            per_key_per_second: limits.per_key_per_second.unwrap_or(10_000),
            clock_skew_secs: verify.clock_skew_secs.unwrap_or(30),
            erc6492_factories: verify.erc6492_factories,
            batch,
            verify_reuse_secs: verify.reuse_secs.unwrap_or(10),
            mirror,
            compliance: file.compliance,
            screen: None,
        })
    }

    /// Adds the devnet of a `nerdcabal devnet` state file; with no settlement key configured, its last dev
    /// account settles (a public anvil test key).
    pub fn add_devnet(&mut self, state: &contracts::DevnetState) -> Result<(), ConfigError> {
        if self.networks.iter().any(|n| n.chain_id == state.chain_id) {
            return Err(invalid(
                "devnet",
                format!("chain id {} is configured twice", state.chain_id),
            ));
        }
        self.networks.push(NetworkConfig::from_devnet(state));
        if self.settlement_keys.is_empty() {
            self.settlement_keys = devnet_settlement_key(state)?;
        }
        Ok(())
    }

    /// Networks as protocol definitions.
    pub fn network_definitions(&self) -> Vec<Network> {
        self.networks
            .iter()
            .map(|n| Network {
                name: n.name.clone(),
                chain_id: n.chain_id,
                assets: n.assets.clone(),
            })
            .collect()
    }
}

impl NetworkConfig {
    /// The devnet of a `nerdcabal devnet` state file.
    pub fn from_devnet(state: &contracts::DevnetState) -> Self {
        let network = state.network_definition();
        NetworkConfig {
            name: network.name,
            chain_id: network.chain_id,
            rpc_url: state.rpc_url.clone(),
            assets: network.assets,
            multicall3: Some(state.multicall3),
            rpc_timeout_ms: default_rpc_timeout_ms(),
            rpc_retries: default_rpc_retries(),
        }
    }
}

/// The devnet's settlement key: its last dev account (a public anvil test key).
fn devnet_settlement_key(state: &contracts::DevnetState) -> Result<Vec<PrivateKeySigner>, ConfigError> {
    let account = state
        .accounts
        .last()
        .ok_or_else(|| invalid("devnet", "the state file lists no accounts"))?;
    let signer = PrivateKeySigner::from_bytes(&account.private_key)
        .map_err(|_| invalid("devnet.accounts", "the last account's key is not valid"))?;
    Ok(vec![signer])
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    fn env_with(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    fn bad_key(text: &str, env: impl Fn(&str) -> Option<String>) -> String {
        match FacilitatorConfig::from_toml(text, env) {
            Err(ConfigError::Invalid { key, .. }) => key,
            Err(other) => panic!("expected an invalid key, got {other}"),
            Ok(_) => panic!("accepted: {text}"),
        }
    }

    #[test]
    fn defaults_are_loopback_sqlite_batched() {
        let config = FacilitatorConfig::from_toml("", |_| None).unwrap();
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 4020)));
        assert!(config.database_url.starts_with("sqlite:"));
        assert_eq!(config.batch.map(|b| b.max_items), Some(100));
        assert!(
            FacilitatorConfig::from_toml("[batch]\nenabled = false\n", |_| None)
                .unwrap()
                .batch
                .is_none()
        );
        assert!(config.mirror.is_none(), "the mirror is off unless enabled");
        assert_eq!(config.verify_reuse_secs, 10);
        assert_eq!(config.receipt_timeout, Duration::from_secs(10));
    }

    #[test]
    fn the_mirror_section_is_read_and_checked() {
        let text = "[mirror]\nenabled = true\npoll_interval_ms = 50\nmax_gap_blocks = 7\n[verify]\nreuse_secs = 0\n";
        let config = FacilitatorConfig::from_toml(text, |_| None).unwrap();
        let mirror = config.mirror.unwrap();
        assert_eq!(mirror.poll_interval, Duration::from_millis(50));
        assert_eq!(mirror.max_gap_blocks, 7);
        assert_eq!(mirror.nonce_lookback_blocks, 10_000);
        assert_eq!(config.verify_reuse_secs, 0);
        assert_eq!(
            bad_key("[mirror]\nenabled = true\npoll_interval_ms = 0\n", |_| None),
            "mirror.poll_interval_ms"
        );
        assert!(matches!(
            FacilitatorConfig::from_toml("[mirror]\nenable = true\n", |_| None),
            Err(ConfigError::Parse(_))
        ));
    }

    #[test]
    fn environment_overrides_the_file() {
        let text = "listen = \"127.0.0.1:1\"\ndatabase_url = \"sqlite://a.db\"\n";
        let env = env_with(&[
            (ENV_LISTEN, "127.0.0.1:9999"),
            (ENV_DATABASE_URL, "postgres://u:pw@localhost/db"),
            (ENV_SETTLEMENT_KEYS, KEY),
            (ENV_API_KEYS, "k1, k2"),
        ]);
        let config = FacilitatorConfig::from_toml(text, env).unwrap();
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.database_url, "postgres://u:pw@localhost/db");
        assert_eq!(config.settlement_keys.len(), 1);
        assert_eq!(config.api_keys, vec!["k1", "k2"]);
    }

    #[test]
    fn invalid_values_name_their_key() {
        assert_eq!(bad_key("", env_with(&[(ENV_LISTEN, "nowhere")])), ENV_LISTEN);
        assert_eq!(bad_key("database_url = \"mysql://x\"", |_| None), "database_url");
        assert_eq!(
            bad_key("", env_with(&[(ENV_SETTLEMENT_KEYS, "0x1234")])),
            ENV_SETTLEMENT_KEYS
        );
        let network = "[[networks]]\nname = \"n\"\nchain_id = 1\nrpc_url = \"not a url\"\n";
        assert_eq!(bad_key(network, |_| None), "networks[0].rpc_url");
        let twice = "[[networks]]\nname = \"a\"\nchain_id = 1\nrpc_url = \"http://a\"\n\
                     [[networks]]\nname = \"b\"\nchain_id = 1\nrpc_url = \"http://b\"\n";
        assert_eq!(bad_key(twice, |_| None), "networks[1].chain_id");
        assert_eq!(
            bad_key("[batch]\nenabled = true\nmax_items = 0\n", |_| None),
            "batch.max_items"
        );
        assert_eq!(
            bad_key("[settlement]\nlow_gas_warning_wei = \"-1\"\n", |_| None),
            "settlement.low_gas_warning_wei"
        );
        assert!(
            matches!(FacilitatorConfig::from_toml("lisen = 1", |_| None), Err(ConfigError::Parse(m)) if m.contains("lisen"))
        );
    }

    #[test]
    fn secrets_never_reach_debug_output() {
        let env = env_with(&[
            (ENV_SETTLEMENT_KEYS, KEY),
            (ENV_API_KEYS, "super-secret-api-key"),
            (ENV_DATABASE_URL, "postgres://user:hunter2@db/x"),
        ]);
        let config = FacilitatorConfig::from_toml("", env).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains(&KEY[2..]), "{shown}");
        assert!(!shown.contains("super-secret-api-key"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"),
            "signer address shown: {shown}"
        );
    }
}
