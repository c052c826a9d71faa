//! The buyer side: the x402 client that pays within a spending policy, the signers behind it (a local key or a
//! Circle developer-controlled wallet), the persistent spend ledger, the buyer's configuration and the
//! `nerdcabal pay` command; later the agent capabilities around them and the MCP server.

pub mod buyer_config;
pub mod circle_wallet;
pub mod offers;
pub mod pay_command;
pub mod spend_ledger;
pub mod spending_policy;
pub mod x402_client;
