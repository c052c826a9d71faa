//! The Solidity side as seen from Rust: typed bindings generated with alloy `sol!` from the committed compiled
//! artifacts (`contracts/artifacts/*.json`, so building needs neither node nor solc), and the local Arc devnet —
//! anvil with USDC installed at Arc's address, Multicall3 at its canonical one and the commerce contracts at
//! fixed addresses — used by `nerdcabal devnet` and by every end-to-end test.

pub mod anvil_binary;
pub mod bindings;
pub mod commerce;
pub mod devnet;
pub mod run;
pub mod state;

pub use devnet::{Devnet, DevnetConfig, DevnetError};
pub use state::{DevAccount, DevnetState};
