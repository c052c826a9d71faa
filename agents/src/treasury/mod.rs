//! The treasury: an organisation's funds under a policy. `custody` is the one trait both custody modes meet
//! (a local key policed by the spend ledger, or an on-chain `Treasury` contract whose limits are
//! authoritative); the policy engine decides `allow | needs_approval | deny` before either is asked.
//! On chain: `onchain_custody` drives the contract, `onchain_precheck` refuses early with its reasons,
//! `onchain_revert` names its reverts, `create` deploys one through the factory; `command` is `nerdcabal treasury`;
//! `treasury_payer` pays x402 offers from the contract as an EIP-1271 payer.

pub mod command;
pub mod create;
pub mod custody;
pub mod onchain_custody;
pub mod onchain_precheck;
pub mod onchain_revert;
pub mod treasury_payer;
