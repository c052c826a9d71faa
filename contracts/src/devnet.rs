//! The local Arc devnet: anvil (automine unless a block time is given) with USDC's runtime code installed at
//! Arc's USDC address and initialised like FiatToken (name "USDC", version "2", 6 decimals), Multicall3 at its
//! canonical address, the commerce contracts at fixed addresses ([`crate::commerce`]), and USDC minted to every
//! dev account. Account 0 holds every token role (owner, master minter, minter, pauser, blacklister). Dropping
//! the [`Devnet`] stops anvil.
//!
//! Unlike Arc, the devnet's gas token is anvil's native ETH; USDC is only the ERC-20 at `0x3600…0000`.

use std::path::PathBuf;
use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, B256, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use protocol::network::{ARC_USDC, MULTICALL3, caip2};

use crate::anvil_binary::{AnvilBinaryError, find_anvil};
use crate::bindings::{Multicall3, USDC};
use crate::state::{DevAccount, DevnetState};

/// anvil's own chain id.
pub const DEFAULT_CHAIN_ID: u64 = 31_337;
/// USDC minted to each dev account: 1,000,000 USDC.
pub const DEFAULT_USDC_PER_ACCOUNT: u64 = 1_000_000_000_000;

/// How to start a devnet.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    pub chain_id: u64,
    /// Seconds between blocks; `None` mines one block per transaction (automine).
    pub block_time: Option<u64>,
    /// Loopback port; `None` lets the OS choose a free one.
    pub port: Option<u16>,
    pub accounts: u32,
    /// USDC atomic units minted to each account.
    pub usdc_per_account: U256,
    /// A specific anvil binary; otherwise `ANVIL_BIN`, `PATH`, then `contracts/node_modules`.
    pub anvil_bin: Option<PathBuf>,
    /// Whether to `npm ci` the pinned toolchain when no anvil is found.
    pub install_anvil: bool,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        DevnetConfig {
            chain_id: DEFAULT_CHAIN_ID,
            block_time: None,
            port: None,
            accounts: 10,
            usdc_per_account: U256::from(DEFAULT_USDC_PER_ACCOUNT),
            anvil_bin: None,
            install_anvil: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error(transparent)]
    AnvilBinary(#[from] AnvilBinaryError),
    #[error("anvil did not start: {0}")]
    Spawn(String),
    #[error("devnet set-up call `{step}` failed: {reason}")]
    Setup { step: &'static str, reason: String },
}

/// A running devnet. Dropping it stops anvil.
pub struct Devnet {
    state: DevnetState,
    keys: Vec<PrivateKeySigner>,
    provider: DynProvider,
    _anvil: AnvilInstance,
}

fn setup(step: &'static str) -> impl FnOnce(String) -> DevnetError {
    move |reason| DevnetError::Setup { step, reason }
}

impl Devnet {
    /// Starts anvil and installs the contracts; returns once every account is funded.
    pub async fn start(config: DevnetConfig) -> Result<Self, DevnetError> {
        // HTTP clients use ring-only rustls; installing the provider twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let binary = match &config.anvil_bin {
            Some(path) => path.clone(),
            None => {
                let install = config.install_anvil;
                tokio::task::spawn_blocking(move || find_anvil(install))
                    .await
                    .map_err(|e| DevnetError::Spawn(e.to_string()))??
            }
        };
        let mut anvil = Anvil::at(binary)
            .chain_id(config.chain_id)
            .port(config.port.unwrap_or(0))
            .arg("--accounts")
            .arg(config.accounts.to_string())
            .timeout(20_000);
        if let Some(seconds) = config.block_time {
            anvil = anvil.block_time(seconds);
        }
        let anvil = tokio::task::spawn_blocking(move || anvil.try_spawn())
            .await
            .map_err(|e| DevnetError::Spawn(e.to_string()))?
            .map_err(|e| DevnetError::Spawn(e.to_string()))?;

        let keys: Vec<PrivateKeySigner> = anvil.keys().iter().cloned().map(PrivateKeySigner::from).collect();
        let admin = keys
            .first()
            .cloned()
            .ok_or_else(|| DevnetError::Spawn("anvil reported no accounts".into()))?;
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(admin.clone()))
            .connect_http(anvil.endpoint_url())
            .erased();

        provider
            .anvil_set_code(ARC_USDC, USDC::DEPLOYED_BYTECODE.clone())
            .await
            .map_err(|e| setup("anvil_setCode(USDC)")(e.to_string()))?;
        provider
            .anvil_set_code(MULTICALL3, Multicall3::DEPLOYED_BYTECODE.clone())
            .await
            .map_err(|e| setup("anvil_setCode(Multicall3)")(e.to_string()))?;

        // Account 0's first transactions, so the commerce contracts land at their fixed addresses.
        let commerce = crate::commerce::deploy(&provider, ARC_USDC).await?;

        let usdc = USDC::new(ARC_USDC, provider.clone());
        let a = admin.address();
        confirm(
            "initialize",
            usdc.initialize("USDC".into(), "USDC".into(), "USD".into(), 6, a, a, a, a)
                .send()
                .await,
        )
        .await?;
        confirm("configureMinter", usdc.configureMinter(a, U256::MAX).send().await).await?;

        // Send every mint first, then wait for all receipts: one round of waiting instead of one per account.
        let mut pending = Vec::with_capacity(keys.len());
        for key in &keys {
            pending.push(usdc.mint(key.address(), config.usdc_per_account).send().await);
        }
        for sent in pending {
            confirm("mint", sent).await?;
        }

        let mut accounts = Vec::with_capacity(keys.len());
        for key in &keys {
            let balance = usdc
                .balanceOf(key.address())
                .call()
                .await
                .map_err(|e| setup("balanceOf")(e.to_string()))?;
            accounts.push(DevAccount {
                address: key.address(),
                private_key: key.to_bytes(),
                usdc_balance: balance,
            });
        }
        let state = DevnetState {
            rpc_url: anvil.endpoint(),
            chain_id: config.chain_id,
            network: caip2(config.chain_id),
            usdc: ARC_USDC,
            multicall3: MULTICALL3,
            contracts: commerce,
            accounts,
        };
        Ok(Devnet {
            state,
            keys,
            provider,
            _anvil: anvil,
        })
    }

    pub fn state(&self) -> &DevnetState {
        &self.state
    }

    pub fn rpc_url(&self) -> &str {
        &self.state.rpc_url
    }

    /// A provider that signs with account 0 (the token admin).
    pub fn admin_provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The signer of dev account `index`.
    pub fn signer(&self, index: usize) -> Option<&PrivateKeySigner> {
        self.keys.get(index)
    }

    /// A provider that signs with dev account `index`.
    pub fn provider_for(&self, index: usize) -> Option<DynProvider> {
        let signer = self.keys.get(index)?.clone();
        let url = self.state.rpc_url.parse().ok()?;
        Some(
            ProviderBuilder::new()
                .wallet(EthereumWallet::from(signer))
                .connect_http(url)
                .erased(),
        )
    }

    /// Mints USDC to any address (the devnet faucet).
    pub async fn mint(&self, to: Address, amount: U256) -> Result<B256, DevnetError> {
        let usdc = USDC::new(ARC_USDC, self.provider.clone());
        confirm("mint", usdc.mint(to, amount).send().await).await
    }
}

/// Waits for a sent transaction's receipt (bounded) and checks that it succeeded.
async fn confirm<N: alloy::network::Network>(
    step: &'static str,
    sent: Result<alloy::providers::PendingTransactionBuilder<N>, alloy::contract::Error>,
) -> Result<B256, DevnetError> {
    use alloy::network::ReceiptResponse;
    Ok(receipt(step, sent).await?.transaction_hash())
}

/// The receipt of a sent transaction (bounded wait), or the set-up error naming `step` if it was not sent,
/// not mined in time, or reverted.
pub(crate) async fn receipt<N: alloy::network::Network>(
    step: &'static str,
    sent: Result<alloy::providers::PendingTransactionBuilder<N>, alloy::contract::Error>,
) -> Result<N::ReceiptResponse, DevnetError> {
    use alloy::network::ReceiptResponse;
    let pending = sent.map_err(|e| setup(step)(e.to_string()))?;
    let receipt = pending
        .with_timeout(Some(Duration::from_secs(30)))
        .get_receipt()
        .await
        .map_err(|e| setup(step)(e.to_string()))?;
    if !receipt.status() {
        return Err(setup(step)("the transaction reverted".into()));
    }
    Ok(receipt)
}
