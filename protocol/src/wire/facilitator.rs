//! What a facilitator answers: `/verify`, `/settle` and `/supported` bodies. Failures carry a reason from
//! [`crate::reason`]; `transaction` is `""` when nothing was sent.

use alloy::primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::JsonObject;

/// `/verify` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    pub is_valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_message: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::checksummed::option"
    )]
    pub payer: Option<Address>,
}

impl VerifyResponse {
    pub fn valid(payer: Address) -> Self {
        Self {
            is_valid: true,
            invalid_reason: None,
            invalid_message: None,
            payer: Some(payer),
        }
    }

    pub fn invalid(reason: &str, message: impl Into<String>, payer: Option<Address>) -> Self {
        Self {
            is_valid: false,
            invalid_reason: Some(reason.to_owned()),
            invalid_message: Some(message.into()),
            payer,
        }
    }
}

/// `/settle` answer; also the `PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE` receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::checksummed::option"
    )]
    pub payer: Option<Address>,
    /// Transaction hash, `""` when none was sent.
    #[serde(default)]
    pub transaction: String,
    pub network: String,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::option")]
    pub amount: Option<U256>,
}

impl SettleResponse {
    /// The transaction as a 32-byte hash, when there is one.
    pub fn transaction_hash(&self) -> Option<B256> {
        self.transaction.parse().ok()
    }
}

/// One `(version, scheme, network)` a facilitator settles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedKind {
    pub x402_version: u8,
    pub scheme: String,
    pub network: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<JsonObject>,
}

/// `/supported` answer. `signers` maps a CAIP-2 pattern (`eip155:*`) to settlement addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedResponse {
    pub kinds: Vec<SupportedKind>,
    #[serde(default)]
    pub extensions: Vec<String>,
    #[serde(default)]
    pub signers: BTreeMap<String, Vec<String>>,
}
