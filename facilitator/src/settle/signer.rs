//! Settlement signers: one or several keys, used round-robin, each with its own local nonce allocator so
//! concurrent settlements never collide ("nonce too low", "replacement underpriced"). The allocator starts
//! from the chain's pending count and is re-read from the chain whenever the node refuses a nonce. Keys are
//! never printed: `Debug` shows only the address.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use alloy::network::EthereumWallet;
use alloy::primitives::Address;
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use tokio::sync::Mutex;

use crate::chain::{ChainClient, ChainError};

/// One settlement key and its next nonce.
pub struct SettlementSigner {
    address: Address,
    wallet: EthereumWallet,
    next_nonce: Mutex<Option<u64>>,
}

impl std::fmt::Debug for SettlementSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettlementSigner")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl SettlementSigner {
    pub fn new(signer: PrivateKeySigner) -> Self {
        SettlementSigner {
            address: signer.address(),
            wallet: EthereumWallet::from(signer),
            next_nonce: Mutex::new(None),
        }
    }

    pub fn address(&self) -> Address {
        self.address
    }

    pub fn wallet(&self) -> &EthereumWallet {
        &self.wallet
    }

    /// Takes the next nonce (reading the chain's pending count the first time).
    pub async fn allocate_nonce(&self, chain: &ChainClient) -> Result<u64, ChainError> {
        let mut next = self.next_nonce.lock().await;
        let nonce = match *next {
            Some(n) => n,
            None => chain
                .provider()
                .get_transaction_count(self.address)
                .pending()
                .await
                .map_err(|e| ChainError::Rpc(e.to_string()))?,
        };
        *next = Some(nonce + 1);
        Ok(nonce)
    }

    /// Forgets the local count; the next allocation reads the chain again.
    pub async fn resync(&self) {
        *self.next_nonce.lock().await = None;
    }
}

/// The settlement keys, taken in turn.
#[derive(Debug, Clone)]
pub struct SignerPool {
    signers: Arc<Vec<Arc<SettlementSigner>>>,
    turn: Arc<AtomicUsize>,
}

impl SignerPool {
    /// At least one key is required.
    pub fn new(keys: Vec<PrivateKeySigner>) -> Option<Self> {
        if keys.is_empty() {
            return None;
        }
        Some(SignerPool {
            signers: Arc::new(keys.into_iter().map(|k| Arc::new(SettlementSigner::new(k))).collect()),
            turn: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The next signer, round-robin.
    pub fn next(&self) -> Arc<SettlementSigner> {
        let i = self.turn.fetch_add(1, Ordering::Relaxed) % self.signers.len();
        self.signers[i].clone()
    }

    /// The signer with this address, if it is one of ours (for reconciling a stored transaction).
    pub fn by_address(&self, address: Address) -> Option<Arc<SettlementSigner>> {
        self.signers.iter().find(|s| s.address == address).cloned()
    }

    pub fn addresses(&self) -> Vec<Address> {
        self.signers.iter().map(|s| s.address).collect()
    }

    /// The first settlement address (the one verify simulates from).
    pub fn primary(&self) -> Address {
        self.signers[0].address
    }
}
