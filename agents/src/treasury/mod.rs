//! The treasury: an organisation's funds under a policy. `custody` is the one trait both custody modes meet
//! (a local key policed by the spend ledger, or an on-chain `Treasury` contract whose limits are
//! authoritative); the policy engine decides `allow | needs_approval | deny` before either is asked.

pub mod custody;
