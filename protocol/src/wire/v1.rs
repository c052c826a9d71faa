//! x402 v1 documents (still the most-installed client): the JSON 402 body, one requirement with
//! `maxAmountRequired` and its own `resource`, and the `X-PAYMENT` payload that names scheme and network.

use alloy::primitives::{Address, U256};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Extra, SchemePayload};
use crate::version::Version;

/// One way to pay in a v1 offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    pub scheme: String,
    /// A network name (`base-sepolia`, …) or, for networks with no v1 name, CAIP-2.
    pub network: String,
    #[serde(with = "crate::decimal")]
    pub max_amount_required: U256,
    pub resource: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub mime_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    #[serde(with = "crate::checksummed")]
    pub pay_to: Address,
    pub max_timeout_seconds: u64,
    #[serde(with = "crate::checksummed")]
    pub asset: Address,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Extra>,
}

/// The v1 402 body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    pub x402_version: Version<1>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub accepts: Vec<PaymentRequirements>,
}

/// The v1 payment (`X-PAYMENT` header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload {
    pub x402_version: Version<1>,
    pub scheme: String,
    pub network: String,
    pub payload: SchemePayload,
}

/// `/verify` and `/settle` request body for a v1 payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest {
    #[serde(default)]
    pub x402_version: Version<1>,
    pub payment_payload: PaymentPayload,
    pub payment_requirements: PaymentRequirements,
}
