//! The commerce contracts every devnet carries — Escrow, Subscription, the Marketplace, the ERC-8004 Identity
//! and Reputation registries, and the TreasuryFactory with the Treasury implementation it clones — deployed by
//! dev account 0 as its very first transactions, so each sits at the same address on every run (the CREATE
//! address of anvil's account 0 `0xf39F…2266` at its nonce), whatever the chain id or the number of accounts.

use alloy::network::ReceiptResponse;
use alloy::primitives::{Address, address};
use alloy::providers::DynProvider;
use serde::{Deserialize, Serialize};

use crate::bindings::{
    Escrow, IdentityRegistry, Marketplace, ReputationRegistry, Subscription, Treasury, TreasuryFactory,
};
use crate::devnet::{DevnetError, receipt};

/// Escrow: account 0's nonce 0.
pub const ESCROW: Address = address!("0x5FbDB2315678afecb367f032d93F642f64180aa3");
/// Subscription: account 0's nonce 1.
pub const SUBSCRIPTION: Address = address!("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512");
/// Marketplace: account 0's nonce 2.
pub const MARKETPLACE: Address = address!("0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0");
/// ERC-8004 IdentityRegistry: account 0's nonce 3.
pub const IDENTITY_REGISTRY: Address = address!("0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9");
/// ERC-8004 ReputationRegistry (bound to the IdentityRegistry): account 0's nonce 4.
pub const REPUTATION_REGISTRY: Address = address!("0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9");
/// The Treasury implementation every organisation's treasury is a clone of: account 0's nonce 5.
pub const TREASURY_IMPLEMENTATION: Address = address!("0x5FC8d32690cc91D4c39d9d3abcBD16989F875707");
/// TreasuryFactory (creates an organisation's Treasury): account 0's nonce 6.
pub const TREASURY_FACTORY: Address = address!("0x0165878A594ca255338adfa4d48449f69242Eb8F");

/// The addresses, as the state file lists them under `contracts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommerceContracts {
    pub escrow: Address,
    pub subscription: Address,
    pub marketplace: Address,
    pub identity_registry: Address,
    pub reputation_registry: Address,
    pub treasury_factory: Address,
    pub treasury_implementation: Address,
}

impl CommerceContracts {
    /// The fixed devnet addresses.
    pub const DEVNET: CommerceContracts = CommerceContracts {
        escrow: ESCROW,
        subscription: SUBSCRIPTION,
        marketplace: MARKETPLACE,
        identity_registry: IDENTITY_REGISTRY,
        reputation_registry: REPUTATION_REGISTRY,
        treasury_factory: TREASURY_FACTORY,
        treasury_implementation: TREASURY_IMPLEMENTATION,
    };
}

/// Deploys the contracts for the USDC at `usdc` from `provider`'s signer, which must be account 0 before it
/// sent any transaction; every deployment is sent before any receipt is awaited. A contract that lands
/// anywhere but its fixed address fails the set-up.
pub async fn deploy(provider: &DynProvider, usdc: Address) -> Result<CommerceContracts, DevnetError> {
    let fixed = CommerceContracts::DEVNET;
    let sent = [
        (
            "deploy Escrow",
            fixed.escrow,
            Escrow::deploy_builder(provider.clone(), usdc).send().await,
        ),
        (
            "deploy Subscription",
            fixed.subscription,
            Subscription::deploy_builder(provider.clone(), usdc).send().await,
        ),
        (
            "deploy Marketplace",
            fixed.marketplace,
            Marketplace::deploy_builder(provider.clone()).send().await,
        ),
        (
            "deploy IdentityRegistry",
            fixed.identity_registry,
            IdentityRegistry::deploy_builder(provider.clone()).send().await,
        ),
        (
            "deploy ReputationRegistry",
            fixed.reputation_registry,
            ReputationRegistry::deploy_builder(provider.clone(), fixed.identity_registry)
                .send()
                .await,
        ),
        (
            "deploy Treasury",
            fixed.treasury_implementation,
            Treasury::deploy_builder(provider.clone()).send().await,
        ),
        (
            "deploy TreasuryFactory",
            fixed.treasury_factory,
            TreasuryFactory::deploy_builder(provider.clone(), fixed.treasury_implementation, usdc)
                .send()
                .await,
        ),
    ];
    for (step, at, result) in sent {
        let mined = receipt(step, result).await?;
        if mined.contract_address() != Some(at) {
            return Err(DevnetError::Setup {
                step,
                reason: format!(
                    "deployed at {:?}, not at its fixed address {at}: account 0 had sent transactions before",
                    mined.contract_address()
                ),
            });
        }
    }
    Ok(fixed)
}
