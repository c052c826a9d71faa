//! The devnet state file: what a running devnet made (RPC URL, chain, USDC, the commerce contracts' addresses,
//! funded accounts with their keys), written as JSON by `nerdcabal devnet --state-file` and read by the other
//! commands and the tests.

use alloy::primitives::{Address, B256, U256};
use protocol::network::{Asset, Network};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A funded development account. The key is a well-known anvil test key, never a real one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevAccount {
    pub address: Address,
    pub private_key: B256,
    /// USDC atomic units (6 decimals), as a decimal string.
    #[serde(with = "protocol::decimal")]
    pub usdc_balance: U256,
}

/// Everything a client needs to use a running devnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevnetState {
    pub rpc_url: String,
    pub chain_id: u64,
    /// CAIP-2 id, `eip155:<chain_id>`.
    pub network: String,
    pub usdc: Address,
    pub multicall3: Address,
    /// The commerce contracts (Escrow, Subscription, …) at their fixed devnet addresses.
    pub contracts: crate::commerce::CommerceContracts,
    pub accounts: Vec<DevAccount>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot read the devnet state file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write the devnet state file {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("the devnet state file {path} is not valid: {source}")]
    Parse { path: String, source: serde_json::Error },
}

impl DevnetState {
    /// The devnet as a network definition for configuration: USDC with Arc's domain at Arc's address.
    pub fn network_definition(&self) -> Network {
        Network {
            name: protocol::network::DEVNET_NAME.into(),
            chain_id: self.chain_id,
            assets: vec![Asset {
                address: self.usdc,
                ..Asset::arc_usdc()
            }],
        }
    }

    pub fn read(path: &Path) -> Result<Self, StateFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| StateFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| StateFileError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// Writes the file atomically (temporary file, then rename), so a reader never sees half of it.
    pub fn write(&self, path: &Path) -> Result<(), StateFileError> {
        let err = |source| StateFileError::Write {
            path: path.display().to_string(),
            source,
        };
        let mut text = serde_json::to_string_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        text.push('\n');
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }
}
