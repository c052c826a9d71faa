//! The buyer's settings, shared by `nerdcabal pay` and `nerdcabal mcp`: where the key comes from, the spending
//! policy, the spend ledger's URL, the `[compliance]` screening, and a `nerdcabal dev` state file to pay on the
//! local devnet. A TOML file,
//! then environment variables, then command-line flags, each overriding the one before. Keys are never
//! printed, and `Debug` shows the ledger and RPC URLs without their passwords or API keys.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy::primitives::{Address, B256, U256};
use alloy::signers::Signer;
use alloy::signers::local::PrivateKeySigner;
use protocol::redact::redact_url;
use serde::Deserialize;

use crate::buyer::circle_wallet::{CircleWalletConfig, CircleWalletSigner};
use crate::buyer::spending_policy::SpendingPolicy;
use crate::compliance::compliance_config::ComplianceSection;
use crate::treasury::policy_engine::PolicyRules;
use crate::treasury::rules_config::{RulesError, TreasuryRules};

/// Env: the buyer's private key (hex).
pub const ENV_BUYER_KEY: &str = "NERDCABAL_BUYER_KEY";
/// Env: the spend ledger's database URL.
pub const ENV_SPEND_DB: &str = "NERDCABAL_SPEND_DB";
/// Arc testnet's public JSON-RPC.
pub const ARC_TESTNET_RPC: &str = "https://rpc.testnet.arc.network";
/// Env: Circle API key, for a `[wallet.circle]` signer.
pub const ENV_CIRCLE_API_KEY: &str = "NERDCABAL_CIRCLE_API_KEY";
/// Env: Circle entity secret (64 hex digits), for a `[wallet.circle]` signer.
pub const ENV_CIRCLE_ENTITY_SECRET: &str = "NERDCABAL_CIRCLE_ENTITY_SECRET";

#[derive(Debug, thiserror::Error)]
pub enum BuyerConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid buyer configuration: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    #[error("no buyer key: set {ENV_BUYER_KEY}, --key-file, or [wallet] key_file")]
    NoKey,
    #[error(transparent)]
    Treasury(#[from] RulesError),
    /// The agent's own key among the treasury's owners would let it approve its own payments.
    #[error("treasury.owners: {0} is the agent's own key; an agent's key is never a treasury owner")]
    AgentIsOwner(Address),
}

fn invalid(key: &str, message: impl Into<String>) -> BuyerConfigError {
    BuyerConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuyerFile {
    #[serde(default)]
    pub wallet: WalletSection,
    #[serde(default)]
    pub policy: PolicySection,
    /// Spend ledger URL (`sqlite://…` or `postgres://…`).
    #[serde(default)]
    pub ledger: Option<String>,
    /// A `nerdcabal dev --state-file` to pay on.
    #[serde(default)]
    pub devnet: Option<PathBuf>,
    /// JSON-RPC of the network, for balances and direct transfers (Arc testnet's public RPC by default).
    #[serde(default)]
    pub rpc_url: Option<String>,
    #[serde(default)]
    pub fetch: FetchSection,
    /// Counterparty screening (the token's blocklist is always consulted).
    #[serde(default)]
    pub compliance: ComplianceSection,
    /// The treasury policy (caps, lists, hours, velocity, approvals) and, for local custody, its owners.
    #[serde(default)]
    pub treasury: Option<TreasuryRules>,
}

/// How the buyer fetches: how much of an answer it reads, and which internal hosts the MCP tools may reach.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchSection {
    /// Hosts (`name`, `name:port`, an IP or `[IPv6]:port`) the MCP tools may fetch even though they are, or
    /// resolve to, loopback, private, link-local, CGNAT, unique-local or metadata addresses.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// The most of an answer the buyer reads (10 MiB by default).
    #[serde(default)]
    pub max_response_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletSection {
    /// A file holding the private key (hex), one line.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// A Circle developer-controlled wallet instead of a local key (secrets from the environment).
    #[serde(default)]
    pub circle: Option<CircleSection>,
    /// An organisation's on-chain `Treasury` this key is a spender of: `pay`, `x402_fetch` and the
    /// `treasury` commands pay from it.
    #[serde(default)]
    pub treasury: Option<Address>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircleSection {
    pub wallet_id: String,
    pub address: Address,
    #[serde(default)]
    pub base_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    pub max_per_request: Option<String>,
    pub daily_budget: Option<String>,
    pub per_host_daily_budget: Option<String>,
    pub networks: Option<Vec<String>>,
    pub assets: Option<Vec<Address>>,
    pub payees: Option<Vec<Address>>,
    /// Payments above this need a person's approval (MCP).
    pub approval_threshold: Option<String>,
    /// The longest authorization (an offer's `maxTimeoutSeconds`) the buyer signs; 300 by default.
    pub max_timeout_seconds: Option<u64>,
}

/// What `nerdcabal dev --state-file` writes (the fields a buyer needs).
#[derive(Debug, Clone, Deserialize)]
pub struct DevState {
    pub rpc_url: String,
    pub chain_id: u64,
    pub network: String,
    pub usdc: Address,
    pub buyer: DevAccount,
    #[serde(default)]
    pub paid_url: Option<String>,
    #[serde(default)]
    pub free_url: Option<String>,
    /// The dev stack's paywall proxy (absent for a bare `nerdcabal devnet`).
    #[serde(default)]
    pub proxy_url: Option<String>,
    /// The commerce contracts the devnet deployed (absent in state files older than them).
    #[serde(default)]
    pub contracts: Option<DevContracts>,
    /// The funded dev accounts, account 0 (the deployer) first.
    #[serde(default)]
    pub accounts: Vec<DevAccount>,
}

/// The commerce contracts of a devnet state file that the buyer uses.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct DevContracts {
    pub treasury_factory: Address,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DevAccount {
    pub address: Address,
    #[serde(default)]
    pub private_key: Option<B256>,
}

impl DevState {
    pub fn read(path: &Path) -> Result<Self, BuyerConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| BuyerConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| invalid("devnet", format!("{}: {e}", path.display())))
    }
}

/// Command-line overrides.
#[derive(Debug, Default, Clone)]
pub struct BuyerFlags {
    pub config: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub ledger: Option<String>,
    pub devnet: Option<PathBuf>,
    pub approval_threshold: Option<String>,
    pub max_per_request: Option<String>,
    pub daily_budget: Option<String>,
    pub per_host_daily_budget: Option<String>,
    pub networks: Vec<String>,
}

/// The resolved settings.
pub struct BuyerConfig {
    pub signer: Arc<dyn Signer + Send + Sync>,
    /// The same key when it is a local one (direct transfers send transactions with it).
    pub local_key: Option<PrivateKeySigner>,
    pub rpc_url: String,
    /// The network balances and transfers use (CAIP-2) and its USDC.
    pub network: String,
    pub usdc: Address,
    pub policy: SpendingPolicy,
    pub ledger_url: String,
    pub devnet: Option<DevState>,
    /// Atomic units; payments above it need approval.
    pub approval_threshold: Option<U256>,
    /// The most of an answer the buyer reads.
    pub max_response_bytes: usize,
    /// `[fetch] allow_hosts`: internal hosts the MCP tools may fetch.
    pub allow_hosts: Vec<String>,
    /// `[compliance]`: how counterparties are screened before any signature.
    pub compliance: ComplianceSection,
    /// `[treasury]`, validated: every payment also meets it; its owners and threshold approve proposals.
    pub treasury: Option<PolicyRules>,
    /// `[wallet] treasury`: pay x402 offers from this on-chain Treasury (the key is one of its spenders).
    pub onchain_treasury: Option<Address>,
}

impl std::fmt::Debug for BuyerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuyerConfig")
            .field("address", &self.signer.address())
            .field("policy", &self.policy)
            .field("ledger_url", &redact_url(&self.ledger_url))
            .field("rpc_url", &redact_url(&self.rpc_url))
            .field("max_response_bytes", &self.max_response_bytes)
            .field("allow_hosts", &self.allow_hosts)
            .finish_non_exhaustive()
    }
}

fn price(key: &str, text: &str) -> Result<U256, BuyerConfigError> {
    protocol::money::parse_price(text, 6).map_err(|e| invalid(key, e.to_string()))
}

/// A private key from hex text (whitespace and a `0x` prefix allowed).
pub fn parse_key(key: &str, text: &str) -> Result<PrivateKeySigner, BuyerConfigError> {
    let bytes: B256 = text
        .trim()
        .parse()
        .map_err(|_| invalid(key, "not a 32-byte hex private key"))?;
    PrivateKeySigner::from_bytes(&bytes).map_err(|_| invalid(key, "not a valid secp256k1 key"))
}

/// The default ledger: `~/.nerdcabal/spend.db`.
pub fn default_ledger_url() -> String {
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    let dir = Path::new(&home).join(".nerdcabal");
    let _ = std::fs::create_dir_all(&dir);
    format!("sqlite://{}", dir.join("spend.db").display())
}

/// Where the spend ledger is and which chain proves its payments: all `nerdcabal spend` and
/// `nerdcabal compliance` need (no key).
#[derive(Clone)]
pub struct LedgerSettings {
    pub ledger_url: String,
    pub rpc_url: String,
    /// CAIP-2 of the chain behind `rpc_url`.
    pub network: String,
    /// The chain's USDC (whose blocklist `compliance screen` consults).
    pub usdc: Address,
    /// `[compliance]`, for `nerdcabal compliance`.
    pub compliance: ComplianceSection,
}

impl std::fmt::Debug for LedgerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerSettings")
            .field("ledger_url", &redact_url(&self.ledger_url))
            .field("rpc_url", &redact_url(&self.rpc_url))
            .field("network", &self.network)
            .finish()
    }
}

/// The `--config` file (an empty one without it).
pub fn read_file(flags: &BuyerFlags) -> Result<BuyerFile, BuyerConfigError> {
    match &flags.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| BuyerConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            Ok(toml::from_str::<BuyerFile>(&text)?)
        }
        None => Ok(BuyerFile::default()),
    }
}

/// The devnet state file named by `--devnet` or the file's `devnet`.
pub fn read_devnet(flags: &BuyerFlags, file: &BuyerFile) -> Result<Option<DevState>, BuyerConfigError> {
    let path = flags.devnet.clone().or(file.devnet.clone());
    path.as_deref().map(DevState::read).transpose()
}

/// The chain: the devnet's, else the file's `rpc_url` on Arc testnet, else Arc testnet's public RPC.
pub fn chain_of(devnet: Option<&DevState>, file: &BuyerFile) -> (String, String, Address) {
    match devnet {
        Some(d) => (d.rpc_url.clone(), d.network.clone(), d.usdc),
        None => (
            file.rpc_url.clone().unwrap_or_else(|| ARC_TESTNET_RPC.to_owned()),
            protocol::network::caip2(protocol::network::ARC_TESTNET_CHAIN_ID),
            protocol::network::ARC_USDC,
        ),
    }
}

pub fn ledger_of(flags: &BuyerFlags, env: &impl Fn(&str) -> Option<String>, file: &BuyerFile) -> String {
    flags
        .ledger
        .clone()
        .or_else(|| env(ENV_SPEND_DB))
        .or(file.ledger.clone())
        .unwrap_or_else(default_ledger_url)
}

impl LedgerSettings {
    /// File, then env, then flags — the same keys as [`BuyerConfig::resolve`], without the wallet.
    pub fn resolve(flags: &BuyerFlags, env: impl Fn(&str) -> Option<String>) -> Result<Self, BuyerConfigError> {
        let file = read_file(flags)?;
        let devnet = read_devnet(flags, &file)?;
        let (rpc_url, network, usdc) = chain_of(devnet.as_ref(), &file);
        file.compliance
            .validate()
            .map_err(|e| invalid("compliance", e.to_string()))?;
        Ok(LedgerSettings {
            ledger_url: ledger_of(flags, &env, &file),
            rpc_url,
            network,
            usdc,
            compliance: file.compliance,
        })
    }
}

impl BuyerConfig {
    /// File, then env, then flags.
    pub fn resolve(flags: &BuyerFlags, env: impl Fn(&str) -> Option<String>) -> Result<Self, BuyerConfigError> {
        let file = read_file(flags)?;
        let devnet = read_devnet(flags, &file)?;

        let key_file = flags.key_file.clone().or(file.wallet.key_file.clone());
        let circle = match (&key_file, &file.wallet.circle) {
            (None, Some(circle)) => Some(circle),
            _ => None,
        };
        let local_key = if circle.is_some() {
            None
        } else if let Some(path) = &key_file {
            let text = std::fs::read_to_string(path).map_err(|source| BuyerConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            Some(parse_key("key_file", &text)?)
        } else if let Some(text) = env(ENV_BUYER_KEY) {
            Some(parse_key(ENV_BUYER_KEY, &text)?)
        } else if let Some(key) = devnet.as_ref().and_then(|d| d.buyer.private_key) {
            Some(
                PrivateKeySigner::from_bytes(&key)
                    .map_err(|_| invalid("devnet.buyer.private_key", "not a valid key"))?,
            )
        } else {
            return Err(BuyerConfigError::NoKey);
        };
        let signer: Arc<dyn Signer + Send + Sync> = match (circle, &local_key) {
            (_, Some(key)) => Arc::new(key.clone()),
            (Some(circle), None) => {
                let api_key = env(ENV_CIRCLE_API_KEY)
                    .ok_or_else(|| invalid("wallet.circle", format!("{ENV_CIRCLE_API_KEY} is not set")))?;
                let secret = env(ENV_CIRCLE_ENTITY_SECRET)
                    .ok_or_else(|| invalid("wallet.circle", format!("{ENV_CIRCLE_ENTITY_SECRET} is not set")))?;
                let mut config = CircleWalletConfig::new(api_key, secret, circle.wallet_id.clone(), circle.address);
                if let Some(base) = &circle.base_url {
                    config = config.with_base_url(base.clone());
                }
                Arc::new(CircleWalletSigner::new(config).map_err(|e| invalid("wallet.circle", e.to_string()))?)
            }
            (None, None) => return Err(BuyerConfigError::NoKey),
        };

        let mut policy = SpendingPolicy::default();
        if file.treasury.is_some() {
            // The treasury's caps govern: `[policy]`'s built-in $0.10 / $5 defaults would refuse first. Limits
            // written in `[policy]` (or given as flags) still apply on top.
            policy.max_per_request = U256::MAX;
            policy.daily_budget = None;
        }
        let p = &file.policy;
        if let Some(text) = flags.max_per_request.as_ref().or(p.max_per_request.as_ref()) {
            policy.max_per_request = price("max_per_request", text)?;
        }
        if let Some(text) = flags.daily_budget.as_ref().or(p.daily_budget.as_ref()) {
            policy.daily_budget = Some(price("daily_budget", text)?);
        }
        if let Some(text) = flags
            .per_host_daily_budget
            .as_ref()
            .or(p.per_host_daily_budget.as_ref())
        {
            policy.per_host_daily_budget = Some(price("per_host_daily_budget", text)?);
        }
        if let Some(networks) = &p.networks {
            policy.networks.clone_from(networks);
        }
        for network in &flags.networks {
            protocol::network::parse_caip2(network).map_err(|e| invalid("network", e.to_string()))?;
            policy.allow_network(network.clone());
        }
        if let Some(devnet) = &devnet {
            policy.allow_network(devnet.network.clone());
            if !policy.assets.contains(&devnet.usdc) {
                policy.assets.push(devnet.usdc);
            }
        }
        if let Some(assets) = &p.assets {
            policy.assets.clone_from(assets);
        }
        policy.payees.clone_from(&p.payees);
        if let Some(seconds) = p.max_timeout_seconds {
            if seconds == 0 {
                return Err(invalid("policy.max_timeout_seconds", "must be at least 1"));
            }
            policy.max_timeout_seconds = seconds;
        }
        let approval_threshold = flags
            .approval_threshold
            .as_deref()
            .or(p.approval_threshold.as_deref())
            .map(|t| price("approval_threshold", t))
            .transpose()?;
        file.compliance
            .validate()
            .map_err(|e| invalid("compliance", e.to_string()))?;
        let (rpc_url, network, usdc) = chain_of(devnet.as_ref(), &file);
        let ledger_url = ledger_of(flags, &env, &file);
        let max_response_bytes = match file.fetch.max_response_bytes {
            Some(0) => return Err(invalid("fetch.max_response_bytes", "must be at least 1")),
            Some(limit) => limit,
            None => crate::buyer::bounded_body::DEFAULT_MAX_RESPONSE_BYTES,
        };
        let treasury = file.treasury.as_ref().map(TreasuryRules::validate).transpose()?;
        if let Some(rules) = &treasury {
            let agent = signer.address();
            if rules.owners().contains(&agent) {
                return Err(BuyerConfigError::AgentIsOwner(agent));
            }
        }
        Ok(BuyerConfig {
            treasury,
            signer,
            local_key,
            rpc_url,
            network,
            usdc,
            policy,
            ledger_url,
            devnet,
            approval_threshold,
            max_response_bytes,
            allow_hosts: file.fetch.allow_hosts,
            onchain_treasury: file.wallet.treasury,
            compliance: file.compliance,
        })
    }

    /// Networks the client can name: Arc built in, plus the devnet.
    pub fn networks(&self) -> protocol::Networks {
        let mut networks = protocol::Networks::builtin();
        if let Some(devnet) = &self.devnet {
            networks.replace(protocol::Network {
                name: protocol::network::DEVNET_NAME.into(),
                chain_id: devnet.chain_id,
                assets: vec![protocol::Asset::arc_usdc()],
            });
        }
        networks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_logs_show_no_ledger_password_and_no_rpc_key() {
        let dir = std::env::temp_dir().join(format!("nerdcabal-buyer-config-{}", B256::random()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("buyer.toml");
        std::fs::write(
            &path,
            "ledger = \"postgres://buyer:hunter2secret@db.example:5432/spend\"\n\
             rpc_url = \"https://arc.g.alchemy.com/v2/Ab3dEf9hIjKlMn0pQrStUvWx\"\n",
        )
        .unwrap();
        let flags = BuyerFlags {
            config: Some(path),
            ..BuyerFlags::default()
        };
        let key = B256::repeat_byte(7).to_string();
        let config = BuyerConfig::resolve(&flags, |name| (name == ENV_BUYER_KEY).then(|| key.clone())).unwrap();
        assert_eq!(
            config.ledger_url,
            "postgres://buyer:hunter2secret@db.example:5432/spend"
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2secret"), "{shown}");
        assert!(!shown.contains("Ab3dEf9hIjKlMn0pQrStUvWx"), "{shown}");
        assert!(!shown.contains(&key[2..]), "{shown}");
        assert!(shown.contains("postgres://buyer:***@db.example:5432/spend"), "{shown}");
        assert!(shown.contains("https://arc.g.alchemy.com/v2/***"), "{shown}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn resolve_file(text: &str) -> BuyerConfig {
        let dir = std::env::temp_dir().join(format!("nerdcabal-buyer-config-{}", B256::random()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("buyer.toml");
        std::fs::write(&path, text).unwrap();
        let flags = BuyerFlags {
            config: Some(path),
            ..BuyerFlags::default()
        };
        let key = B256::repeat_byte(7).to_string();
        let config = BuyerConfig::resolve(&flags, |name| (name == ENV_BUYER_KEY).then(|| key.clone())).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        config
    }

    #[test]
    fn a_treasury_drops_the_policy_defaults_but_keeps_written_limits() {
        let plain = resolve_file("");
        assert_eq!(plain.policy.max_per_request, U256::from(100_000u64));
        assert_eq!(plain.policy.daily_budget, Some(U256::from(5_000_000u64)));

        let treasury = resolve_file("[treasury]\nper_tx_cap = \"$10\"\ndaily_cap = \"$100\"\n");
        assert_eq!(treasury.policy.max_per_request, U256::MAX);
        assert_eq!(treasury.policy.daily_budget, None);

        let both = resolve_file("[policy]\nmax_per_request = \"$2\"\n[treasury]\nper_tx_cap = \"$10\"\n");
        assert_eq!(both.policy.max_per_request, U256::from(2_000_000u64));
        assert_eq!(both.policy.daily_budget, None);
    }
}
