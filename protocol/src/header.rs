//! Header codecs: every x402 header is standard padded base64 (`+/`, `=`) of UTF-8 JSON. Decoding checks, in
//! order, length (at most [`MAX_HEADER_LEN`]), base64, JSON, the protocol version, then the document's shape,
//! and names the first that fails. No input makes it panic.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire::{PaymentPayload, PaymentRequired, SettleResponse, v2};

/// v2 offer, on a 402.
pub const PAYMENT_REQUIRED: &str = "payment-required";
/// v2 payment, from the buyer.
pub const PAYMENT_SIGNATURE: &str = "payment-signature";
/// v2 receipt, on the paid answer.
pub const PAYMENT_RESPONSE: &str = "payment-response";
/// v1 payment, from the buyer.
pub const X_PAYMENT: &str = "x-payment";
/// v1 receipt, on the paid answer.
pub const X_PAYMENT_RESPONSE: &str = "x-payment-response";

/// The longest header value we decode (16 KiB); a contract-wallet signature fits many times over.
pub const MAX_HEADER_LEN: usize = 16 * 1024;

/// Why a header or a JSON document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("header is {len} bytes, over the {max}-byte limit")]
    TooLong { len: usize, max: usize },
    #[error("header is not standard padded base64")]
    NotBase64,
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("JSON does not have the expected shape: {0}")]
    WrongShape(String),
    #[error("x402Version {0} is not supported")]
    UnsupportedVersion(u64),
    #[error("x402Version is missing or not a number")]
    MissingVersion,
}

impl DecodeError {
    /// Sorts a serde_json error into "not JSON at all" and "JSON of the wrong shape".
    pub fn from_json(err: serde_json::Error) -> Self {
        match err.classify() {
            serde_json::error::Category::Data => DecodeError::WrongShape(err.to_string()),
            _ => DecodeError::NotJson(err.to_string()),
        }
    }

    /// The x402 reason string that fits this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::UnsupportedVersion(_) | DecodeError::MissingVersion => crate::reason::INVALID_X402_VERSION,
            _ => crate::reason::INVALID_PAYLOAD,
        }
    }
}

/// A document that exists in several protocol versions and is read by first looking at its version.
pub trait Versioned: Sized {
    /// The version the document declares, if any (an error only when the bytes are not a JSON object).
    fn version_of(bytes: &[u8]) -> Result<Option<u64>, serde_json::Error>;
    /// Parses the document as the given version.
    fn from_version(version: u64, bytes: &[u8]) -> Result<Self, DecodeError>;
}

/// Reads a versioned JSON document (a request body, or a decoded header).
pub fn decode_json<T: Versioned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let version = T::version_of(bytes)
        .map_err(DecodeError::from_json)?
        .ok_or(DecodeError::MissingVersion)?;
    T::from_version(version, bytes)
}

/// Encodes any document as a header value.
pub fn encode<T: Serialize>(document: &T) -> String {
    // Serialising our own wire types cannot fail: every map key is a string and every value is plain data.
    let json = serde_json::to_vec(document).unwrap_or_default();
    STANDARD.encode(json)
}

/// Base64 → bytes, with the length check first.
pub fn decode_base64(value: &[u8]) -> Result<Vec<u8>, DecodeError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(DecodeError::TooLong {
            len: value.len(),
            max: MAX_HEADER_LEN,
        });
    }
    STANDARD.decode(value).map_err(|_| DecodeError::NotBase64)
}

fn decode_versioned<T: Versioned>(value: &[u8]) -> Result<T, DecodeError> {
    decode_json(&decode_base64(value)?)
}

fn decode_plain<T: DeserializeOwned>(value: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(&decode_base64(value)?).map_err(DecodeError::from_json)
}

/// `PAYMENT-SIGNATURE` or `X-PAYMENT`: a payment of either version (clients in the wild mix them up).
pub fn decode_payment(value: &[u8]) -> Result<PaymentPayload, DecodeError> {
    decode_versioned(value)
}

/// `PAYMENT-REQUIRED`: an offer (v2; a v1 document is accepted too).
pub fn decode_payment_required(value: &[u8]) -> Result<PaymentRequired, DecodeError> {
    decode_versioned(value)
}

/// `PAYMENT-REQUIRED` that must be v2.
pub fn decode_payment_required_v2(value: &[u8]) -> Result<v2::PaymentRequired, DecodeError> {
    match decode_payment_required(value)? {
        PaymentRequired::V2(offer) => Ok(offer),
        PaymentRequired::V1(_) => Err(DecodeError::UnsupportedVersion(1)),
    }
}

/// Any header's JSON, untyped: for keeping a document exactly as it came (a v2 payment echoes the chosen
/// requirement verbatim).
pub fn decode_json_header(value: &[u8]) -> Result<serde_json::Value, DecodeError> {
    decode_plain(value)
}

/// `PAYMENT-RESPONSE` or `X-PAYMENT-RESPONSE`: a settlement receipt (the same shape in both versions).
pub fn decode_payment_response(value: &[u8]) -> Result<SettleResponse, DecodeError> {
    decode_plain(value)
}
