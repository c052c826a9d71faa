//! Compliance: fail-closed screening of every counterparty. One [`screener::Screener`] trait and a source per
//! file — the token's own on-chain blocklist (`token_blocklist`), the OFAC SDN list (`ofac_sdn`), Circle's
//! Compliance Engine (`circle_screening`) and a local deny/allow file (`local_list`) — merged in `decision`
//! (any `blocked` blocks; a non-advisory source that cannot answer makes it `unavailable`, which refuses).
//! `compliance_config` builds the screen from the `[compliance]` section; `audit` records every decision in
//! the spend ledger; `payment_check` is what the buyer asks before it signs; `facilitator_screen` is the same
//! screen as the facilitator's counterparty screen; `command` is `nerdcabal compliance screen|audit`.

pub mod audit;
pub mod circle_screening;
pub mod command;
pub mod compliance_config;
pub mod decision;
pub mod facilitator_screen;
pub mod local_list;
pub mod ofac_sdn;
pub mod payment_check;
pub mod screener;
pub mod token_blocklist;
