//! Networks by CAIP-2 id (`eip155:<chain id>`), each with the tokens it accepts and their EIP-712 domains.
//! Arc testnet and mainnet are built in; others (the local devnet) are added from configuration.

use alloy::primitives::{Address, address};
use serde::{Deserialize, Serialize};

/// USDC on Arc, at the same address on testnet and mainnet (and on our devnet).
pub const ARC_USDC: Address = address!("0x3600000000000000000000000000000000000000");
/// Multicall3, at its canonical address.
pub const MULTICALL3: Address = address!("0xcA11bde05977b3631167028862bE2a173976CA11");
pub const ARC_TESTNET_CHAIN_ID: u64 = 5_042_002;
pub const ARC_MAINNET_CHAIN_ID: u64 = 5_042;
/// The v1 name of the local devnet (`nerdcabal devnet`), whatever its chain id.
pub const DEVNET_NAME: &str = "arc-devnet";

/// A token a network accepts payment in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Asset {
    pub address: Address,
    pub symbol: String,
    pub decimals: u8,
    /// EIP-712 domain `name` (USDC's is `"USDC"` on Arc).
    pub eip712_name: String,
    /// EIP-712 domain `version`.
    pub eip712_version: String,
}

impl Asset {
    /// Circle's USDC on Arc: 6 decimals, domain `("USDC", "2")`.
    pub fn arc_usdc() -> Self {
        Asset {
            address: ARC_USDC,
            symbol: "USDC".into(),
            decimals: 6,
            eip712_name: "USDC".into(),
            eip712_version: "2".into(),
        }
    }
}

/// One EVM network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Network {
    /// Human name, e.g. `arc-testnet`; also the v1 `network` string for this network.
    pub name: String,
    pub chain_id: u64,
    pub assets: Vec<Asset>,
}

impl Network {
    pub fn arc_testnet() -> Self {
        Network {
            name: "arc-testnet".into(),
            chain_id: ARC_TESTNET_CHAIN_ID,
            assets: vec![Asset::arc_usdc()],
        }
    }

    pub fn arc_mainnet() -> Self {
        Network {
            name: "arc".into(),
            chain_id: ARC_MAINNET_CHAIN_ID,
            assets: vec![Asset::arc_usdc()],
        }
    }

    /// CAIP-2 id, `eip155:<chain id>`.
    pub fn caip2(&self) -> String {
        caip2(self.chain_id)
    }

    /// The asset at `address`, if this network accepts it.
    pub fn asset(&self, address: Address) -> Option<&Asset> {
        self.assets.iter().find(|a| a.address == address)
    }

    /// The first asset with this symbol (case-insensitive).
    pub fn asset_by_symbol(&self, symbol: &str) -> Option<&Asset> {
        self.assets.iter().find(|a| a.symbol.eq_ignore_ascii_case(symbol))
    }
}

/// Why a network id or a network definition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    #[error("`{0}` is not a CAIP-2 EVM network id (expected eip155:<chain id>)")]
    NotCaip2(String),
    #[error("unknown network `{0}`")]
    Unknown(String),
    #[error("network `{name}` uses chain id {chain_id}, which `{existing}` already has")]
    DuplicateChainId {
        name: String,
        chain_id: u64,
        existing: String,
    },
    #[error("network name `{0}` is already taken")]
    DuplicateName(String),
}

/// `eip155:<chain id>`.
pub fn caip2(chain_id: u64) -> String {
    format!("eip155:{chain_id}")
}

/// The chain id of an `eip155:<id>` string.
pub fn parse_caip2(id: &str) -> Result<u64, NetworkError> {
    let digits = id
        .strip_prefix("eip155:")
        .ok_or_else(|| NetworkError::NotCaip2(id.to_owned()))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return Err(NetworkError::NotCaip2(id.to_owned()));
    }
    digits.parse().map_err(|_| NetworkError::NotCaip2(id.to_owned()))
}

/// The networks a component knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Networks {
    list: Vec<Network>,
}

impl Default for Networks {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Networks {
    /// Arc testnet and Arc mainnet.
    pub fn builtin() -> Self {
        Networks {
            list: vec![Network::arc_testnet(), Network::arc_mainnet()],
        }
    }

    /// No networks at all.
    pub fn empty() -> Self {
        Networks { list: Vec::new() }
    }

    /// Adds a network. A network with the same chain id *and* name replaces the old one (a devnet that
    /// mirrors Arc testnet's chain id may redefine it); any other clash is refused.
    pub fn add(&mut self, network: Network) -> Result<(), NetworkError> {
        if let Some(existing) = self.list.iter_mut().find(|n| n.chain_id == network.chain_id) {
            if existing.name != network.name {
                return Err(NetworkError::DuplicateChainId {
                    name: network.name,
                    chain_id: network.chain_id,
                    existing: existing.name.clone(),
                });
            }
            *existing = network;
            return Ok(());
        }
        if self.list.iter().any(|n| n.name == network.name) {
            return Err(NetworkError::DuplicateName(network.name));
        }
        self.list.push(network);
        Ok(())
    }

    /// Replaces whatever network has this chain id (or adds it).
    pub fn replace(&mut self, network: Network) {
        self.list
            .retain(|n| n.chain_id != network.chain_id && n.name != network.name);
        self.list.push(network);
    }

    pub fn by_chain_id(&self, chain_id: u64) -> Option<&Network> {
        self.list.iter().find(|n| n.chain_id == chain_id)
    }

    /// Looks a network up by CAIP-2 id (v2) or by name (v1).
    pub fn get(&self, id_or_name: &str) -> Result<&Network, NetworkError> {
        let found = match parse_caip2(id_or_name) {
            Ok(chain_id) => self.by_chain_id(chain_id),
            Err(_) => self.list.iter().find(|n| n.name == id_or_name),
        };
        found.ok_or_else(|| NetworkError::Unknown(id_or_name.to_owned()))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Network> {
        self.list.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caip2_ids_parse_strictly() {
        assert_eq!(parse_caip2("eip155:5042002"), Ok(5_042_002));
        for bad in [
            "eip155:",
            "eip155:0x1",
            "eip155:-1",
            "eip155:01",
            "solana:abc",
            "arc-testnet",
            "eip155:99999999999999999999999",
        ] {
            assert!(parse_caip2(bad).is_err(), "{bad}");
        }
        assert_eq!(caip2(31_337), "eip155:31337");
    }

    #[test]
    fn builtins_are_arc_with_usdc() {
        let networks = Networks::builtin();
        let testnet = networks.get("eip155:5042002").unwrap();
        assert_eq!(testnet.name, "arc-testnet");
        let usdc = testnet.asset(ARC_USDC).unwrap();
        assert_eq!(
            (usdc.decimals, usdc.eip712_name.as_str(), usdc.eip712_version.as_str()),
            (6, "USDC", "2")
        );
        assert_eq!(networks.get("eip155:5042").unwrap().caip2(), "eip155:5042");
        assert_eq!(networks.get("arc-testnet").unwrap().chain_id, ARC_TESTNET_CHAIN_ID);
        assert!(matches!(networks.get("eip155:8453"), Err(NetworkError::Unknown(_))));
    }

    #[test]
    fn custom_networks_are_added_and_clashes_refused() {
        let mut networks = Networks::builtin();
        let devnet = Network {
            name: "arc-devnet".into(),
            chain_id: 31_337,
            assets: vec![Asset::arc_usdc()],
        };
        networks.add(devnet.clone()).unwrap();
        assert_eq!(networks.get("eip155:31337").unwrap(), &devnet);
        assert!(matches!(
            networks.add(Network {
                name: "other".into(),
                ..devnet.clone()
            }),
            Err(NetworkError::DuplicateChainId { .. })
        ));
        assert!(matches!(
            networks.add(Network {
                chain_id: 7,
                ..devnet.clone()
            }),
            Err(NetworkError::DuplicateName(_))
        ));
        let mirror = Network {
            name: "arc-devnet".into(),
            chain_id: ARC_TESTNET_CHAIN_ID,
            assets: vec![Asset::arc_usdc()],
        };
        networks.replace(mirror.clone());
        assert_eq!(networks.get("eip155:5042002").unwrap(), &mirror);
        assert_eq!(networks.iter().filter(|n| n.name == "arc-devnet").count(), 1);
    }

    #[test]
    fn a_network_reads_from_configuration() {
        let text = r#"{"name":"dev","chain_id":31337,"assets":[{"address":"0x3600000000000000000000000000000000000000","symbol":"USDC","decimals":6,"eip712_name":"USDC","eip712_version":"2"}]}"#;
        let network: Network = serde_json::from_str(text).unwrap();
        assert_eq!(network.asset_by_symbol("usdc").unwrap().address, ARC_USDC);
    }
}
