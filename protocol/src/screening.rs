//! Counterparty screening as an interface: what a screen answers about one address (clear, or refused as
//! blocked or unavailable) and the trait a screener meets. The facilitator asks it about payer and payee before
//! accepting a payment; the agents' screener (token blocklist, OFAC list, Circle's Compliance Engine, a local
//! file) implements it. Only the shape lives here: no source, no I/O.

use std::future::Future;
use std::pin::Pin;

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
            ScreenRefusal::Blocked { .. } => crate::reason::COMPLIANCE_BLOCKED,
            ScreenRefusal::Unavailable { .. } => crate::reason::COMPLIANCE_UNAVAILABLE,
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
