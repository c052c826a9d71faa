//! Counterparty screening before a payment is accepted: the facilitator asks a [`CounterpartyScreen`] about the
//! payer and the payee of every `/verify` and `/settle`, and refuses `compliance_blocked` when a source says
//! blocked, `compliance_unavailable` when a source that must answer cannot (fail-closed). The screen itself
//! (the token's blocklist, the OFAC list, Circle's Compliance Engine, a local file) is the agents' screener,
//! plugged in by the binary from the configuration's `[compliance]` section: the facilitator depends on no
//! agent code, only on this trait. Without a `[compliance]` section nothing is screened here beyond the token's
//! own blocklist check every verify makes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use alloy::primitives::Address;

/// Why a screen refused a counterparty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScreenRefusal {
    /// A source lists the address.
    #[error("{address} is blocked by {source_name}: {detail}")]
    Blocked {
        address: Address,
        source_name: String,
        detail: String,
    },
    /// A source that must answer did not.
    #[error("screening of {address} is unavailable ({source_name} did not answer)")]
    Unavailable { address: Address, source_name: String },
}

impl ScreenRefusal {
    /// The x402 error reason the facilitator answers with.
    pub fn reason(&self) -> &'static str {
        match self {
            ScreenRefusal::Blocked { .. } => protocol::reason::COMPLIANCE_BLOCKED,
            ScreenRefusal::Unavailable { .. } => protocol::reason::COMPLIANCE_UNAVAILABLE,
        }
    }
}

/// The future a screen returns.
pub type ScreenFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ScreenRefusal>> + Send + 'a>>;

/// Screens one address (the facilitator asks for the payer and the payee of each payment).
pub trait CounterpartyScreen: Send + Sync {
    /// `Ok` when the address may pay or be paid.
    fn screen(&self, address: Address) -> ScreenFuture<'_>;
    /// The names of the sources asked, for `/supported` and logs.
    fn sources(&self) -> Vec<String>;
}

/// The `/supported` extension naming the check.
pub const SUPPORTED_EXTENSION: &str = "compliance-screening";

/// Screens payer and payee (both concurrently); the payer's refusal is reported first.
pub async fn screen_parties(
    screen: &Arc<dyn CounterpartyScreen>,
    payer: Address,
    payee: Address,
) -> Result<(), ScreenRefusal> {
    let (payer, payee) = tokio::join!(screen.screen(payer), screen.screen(payee));
    payer.and(payee)
}
