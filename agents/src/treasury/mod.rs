//! The treasury: an organisation's funds under a policy. `custody` is the one trait both custody modes meet
//! (a local key policed by the spend ledger, or an on-chain `Treasury` contract whose limits are
//! authoritative); the policy engine (`policy_engine`, rules from `rules_config`, windows from `periods`)
//! decides `allow | needs_approval | deny`, and `ledger_policy` runs it at the buyer's choke point in the
//! transaction that reserves the spend; `proposals` keeps local custody's proposals and owner approvals (EIP-712 signatures, `local_approval`),
//! and `local_custody` is the local mode of the `Custody` trait.

pub mod custody;
pub mod ledger_policy;
pub mod local_approval;
pub mod local_custody;
pub mod periods;
pub mod policy_engine;
pub mod proposals;
pub mod rules_config;
