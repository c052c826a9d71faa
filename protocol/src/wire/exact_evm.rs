//! The `payload` of an `exact` payment on EVM: an EIP-3009 authorization and its signature. Numbers are decimal
//! strings on the wire and `U256` inside.

use alloy::primitives::{Address, B256, Bytes, U256};
use serde::{Deserialize, Serialize};

use super::JsonObject;

/// EIP-3009 `TransferWithAuthorization` fields as the buyer signed them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExactEvmAuthorization {
    #[serde(with = "crate::checksummed")]
    pub from: Address,
    #[serde(with = "crate::checksummed")]
    pub to: Address,
    #[serde(with = "crate::decimal")]
    pub value: U256,
    #[serde(with = "crate::decimal")]
    pub valid_after: U256,
    #[serde(with = "crate::decimal")]
    pub valid_before: U256,
    pub nonce: B256,
}

/// `{signature, authorization}`: 65 bytes `r||s||v` for an EOA, anything longer for a contract wallet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExactEvmPayload {
    pub signature: Bytes,
    pub authorization: ExactEvmAuthorization,
}

/// A scheme's payload: the EVM `exact` shape when it is one, otherwise kept as the JSON object it was, so a
/// payment for a scheme we do not speak still parses and can be answered with `unsupported_scheme`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SchemePayload {
    ExactEvm(ExactEvmPayload),
    Other(JsonObject),
}

impl SchemePayload {
    /// The EVM `exact` payload, if that is what this is.
    pub fn exact_evm(&self) -> Option<&ExactEvmPayload> {
        match self {
            SchemePayload::ExactEvm(p) => Some(p),
            SchemePayload::Other(_) => None,
        }
    }
}

impl From<ExactEvmPayload> for SchemePayload {
    fn from(p: ExactEvmPayload) -> Self {
        SchemePayload::ExactEvm(p)
    }
}
