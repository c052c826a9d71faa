//! Counterparty screening before a payment is accepted: the facilitator asks a [`CounterpartyScreen`] about the
//! payer and the payee of every `/verify` and `/settle`, and refuses `compliance_blocked` when a source says
//! blocked, `compliance_unavailable` when a source that must answer cannot (fail-closed). The screen itself
//! (the token's blocklist, the OFAC list, Circle's Compliance Engine, a local file) is the agents' screener,
//! plugged in by the binary from the configuration's `[compliance]` section: the facilitator depends on no
//! agent code, only on the trait in `protocol::screening`. Without a `[compliance]` section nothing is screened here beyond the token's
//! own blocklist check every verify makes.

use std::sync::Arc;

use alloy::primitives::Address;
pub use protocol::screening::{CounterpartyScreen, ScreenFuture, ScreenRefusal};

/// The `/supported` extension naming the check.
pub const SUPPORTED_EXTENSION: &str = "compliance-screening";

/// Screens payer and payee (both concurrently). A `blocked` answer is reported before an `unavailable` one (it is
/// the stronger refusal, as the buyer reports it), the payer's before the payee's.
pub async fn screen_parties(
    screen: &Arc<dyn CounterpartyScreen>,
    payer: Address,
    payee: Address,
) -> Result<(), ScreenRefusal> {
    let (payer, payee) = tokio::join!(screen.screen(payer), screen.screen(payee));
    for answer in [&payer, &payee] {
        if let Err(blocked @ ScreenRefusal::Blocked { .. }) = answer {
            return Err(blocked.clone());
        }
    }
    payer.and(payee)
}
