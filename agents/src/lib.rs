//! The agents: one module per capability. `buyer` is the x402 client that pays within a spending policy, its
//! signers (a local key or a Circle developer-controlled wallet), the persistent spend ledger (and its
//! reconciliation with the chain), human approvals, its configuration and the `pay`, `spend` and `approve`
//! commands; `compliance` screens every counterparty (the token's blocklist, the OFAC SDN list, Circle's
//! Compliance Engine, a local file) fail-closed before the buyer signs and records each decision; `mcp` is the
//! MCP server that exposes every capability as tools, one tools file per capability.

pub mod buyer;
pub mod compliance;
pub mod mcp;
pub mod treasury;
