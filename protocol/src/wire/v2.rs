//! x402 v2 documents: the `PAYMENT-REQUIRED` offer, one requirement, and the `PAYMENT-SIGNATURE` payload whose
//! `accepted` is a verbatim copy of the requirement the buyer chose.

use alloy::primitives::{Address, U256};
use serde::{Deserialize, Serialize};

use super::{Extra, JsonObject, ResourceInfo, SchemePayload};
use crate::version::Version;

/// One way to pay (`accepts[i]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    pub scheme: String,
    /// CAIP-2, e.g. `eip155:5042002`.
    pub network: String,
    /// Atomic units of `asset`.
    #[serde(with = "crate::decimal")]
    pub amount: U256,
    /// The token contract (and EIP-712 `verifyingContract`).
    #[serde(with = "crate::checksummed")]
    pub asset: Address,
    #[serde(with = "crate::checksummed")]
    pub pay_to: Address,
    pub max_timeout_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Extra>,
}

impl PaymentRequirements {
    /// Whether `other` names the same payment on the fields that decide where money goes and how much:
    /// scheme, network, amount, asset, payTo and maxTimeoutSeconds.
    pub fn same_terms(&self, other: &PaymentRequirements) -> bool {
        self.scheme == other.scheme
            && self.network == other.network
            && self.amount == other.amount
            && self.asset == other.asset
            && self.pay_to == other.pay_to
            && self.max_timeout_seconds == other.max_timeout_seconds
    }
}

/// The 402 offer (`PAYMENT-REQUIRED` header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    pub x402_version: Version<2>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub resource: ResourceInfo,
    pub accepts: Vec<PaymentRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<JsonObject>,
}

/// The buyer's payment (`PAYMENT-SIGNATURE` header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload {
    pub x402_version: Version<2>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    pub accepted: PaymentRequirements,
    pub payload: SchemePayload,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<JsonObject>,
}

impl PaymentPayload {
    /// This payment as JSON with `accepted` (and `resource`, when given) replaced by the seller's own JSON:
    /// what a buyer sends, so the seller finds its requirement exactly as it wrote it.
    pub fn echoing(&self, accepted: &serde_json::Value, resource: Option<&serde_json::Value>) -> serde_json::Value {
        let mut json = serde_json::to_value(self).unwrap_or_default();
        if let Some(object) = json.as_object_mut() {
            object.insert("accepted".into(), accepted.clone());
            if let Some(resource) = resource {
                object.insert("resource".into(), resource.clone());
            }
        }
        json
    }
}

/// `/verify` and `/settle` request body for a v2 payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest {
    #[serde(default)]
    pub x402_version: Version<2>,
    pub payment_payload: PaymentPayload,
    pub payment_requirements: PaymentRequirements,
}
