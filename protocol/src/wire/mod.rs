//! x402 wire types, field for field as `x402.md` §2–3 draws them. Shared pieces (the exact-EVM payload, the
//! EIP-712 `extra`, the facilitator answers) live here; the version-specific documents live in [`v1`] and
//! [`v2`]; the enums here ([`PaymentPayload`], [`VerifyRequest`]) accept either version and dispatch on
//! `x402Version`.

pub mod discovery;
mod exact_evm;
mod facilitator;
mod request;
pub mod v1;
pub mod v2;

pub use discovery::{DiscoveryItem, DiscoveryResponse, Pagination};
pub use exact_evm::{ExactEvmAuthorization, ExactEvmPayload, SchemePayload};
pub use facilitator::{SettleResponse, SupportedKind, SupportedResponse, VerifyResponse};
pub use request::{PaymentPayload, PaymentRequired, SettleRequest, VerifyRequest};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JSON object kept as it came, unknown keys included (`extensions`, free-form `extra` entries).
pub type JsonObject = Map<String, Value>;

/// `extra` of an EVM `exact` requirement: the token's EIP-712 domain name and version, and whatever else
/// the sender put there (kept verbatim).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Extra {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(flatten)]
    pub other: JsonObject,
}

impl Extra {
    /// An `extra` that names an EIP-712 domain.
    pub fn eip712(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            version: Some(version.into()),
            other: JsonObject::new(),
        }
    }
}

/// v2 top-level `resource` (v1 carries the same facts inside each requirement).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}
