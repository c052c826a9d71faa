//! The buyer: the x402 client that pays within a spending policy, the signers behind it (a local key or a
//! Circle developer-controlled wallet), the persistent spend ledger (and its reconciliation with the chain),
//! human approvals, the buyer's configuration, and the `nerdcabal pay`, `nerdcabal spend` and
//! `nerdcabal approve` commands.

pub mod approvals;
pub mod approve_command;
pub mod bounded_body;
pub mod buyer_config;
pub mod circle_wallet;
pub mod direct_transfer;
pub mod fetch_guard;
pub mod offers;
pub mod pay_command;
pub mod spend_command;
pub mod spend_ledger;
pub mod spend_reconcile;
pub mod spending_policy;
pub mod x402_client;
