//! The treasury: an organisation's funds under a policy. `custody` is the one trait both custody modes meet
//! (a local key policed by the spend ledger, or an on-chain `Treasury` contract whose limits are
//! authoritative); the policy engine (`policy_engine`, rules from `rules_config`, windows from `periods`)
//! decides `allow | needs_approval | deny`, and `ledger_policy` runs it at the buyer's choke point in the
//! transaction that reserves the spend; `proposals` keeps local custody's proposals and owner approvals
//! (EIP-712 signatures, `local_approval`), and `local_custody` is the local mode of the `Custody` trait.
//! On chain: `onchain_custody` drives the contract, `onchain_precheck` refuses early with its reasons,
//! `onchain_revert` names its reverts, `create` deploys one through the factory, `treasury_payer` pays x402
//! offers from the contract as an EIP-1271 payer; `command` is `nerdcabal treasury`.

pub mod command;
pub mod create;
pub mod custody;
pub mod ledger_policy;
pub mod local_approval;
pub mod local_custody;
pub mod onchain_custody;
pub mod onchain_precheck;
pub mod onchain_revert;
pub mod periods;
pub mod policy_engine;
pub mod proposals;
pub mod rules_config;
pub mod treasury_payer;
