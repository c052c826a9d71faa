//! Documents that come in either protocol version, as enums that dispatch on `x402Version`: the offer, the
//! buyer's payment, and the facilitator's request body. [`crate::header::decode_json`] reads them with typed
//! errors; their serde impls do the same dispatch for frameworks that deserialise bodies themselves.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::{v1, v2};
use crate::header::{DecodeError, Versioned};

/// A 402 offer of either version.
// v2 is the common case and is kept inline; boxing it would cost an allocation on every request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentRequired {
    V1(v1::PaymentRequired),
    V2(v2::PaymentRequired),
}

/// A buyer's payment of either version.
// v2 is the common case and is kept inline; boxing it would cost an allocation on every request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentPayload {
    V1(v1::PaymentPayload),
    V2(v2::PaymentPayload),
}

/// A `/verify` or `/settle` request body of either version.
// v2 is the common case and is kept inline; boxing it would cost an allocation on every request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyRequest {
    V1(v1::VerifyRequest),
    V2(v2::VerifyRequest),
}

/// `/settle` takes the same body as `/verify`.
pub type SettleRequest = VerifyRequest;

impl PaymentPayload {
    pub fn version(&self) -> u8 {
        match self {
            PaymentPayload::V1(_) => 1,
            PaymentPayload::V2(_) => 2,
        }
    }

    /// The scheme-specific payload, whichever the version.
    pub fn scheme_payload(&self) -> &super::SchemePayload {
        match self {
            PaymentPayload::V1(p) => &p.payload,
            PaymentPayload::V2(p) => &p.payload,
        }
    }
}

impl VerifyRequest {
    pub fn version(&self) -> u8 {
        match self {
            VerifyRequest::V1(_) => 1,
            VerifyRequest::V2(_) => 2,
        }
    }
}

macro_rules! versioned_enum {
    ($name:ident, $probe:expr) => {
        impl Versioned for $name {
            fn version_of(bytes: &[u8]) -> Result<Option<u64>, serde_json::Error> {
                $probe(bytes)
            }

            fn from_version(version: u64, bytes: &[u8]) -> Result<Self, DecodeError> {
                match version {
                    1 => parse::<_>(bytes).map($name::V1),
                    2 => parse::<_>(bytes).map($name::V2),
                    other => Err(DecodeError::UnsupportedVersion(other)),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $name::V1(inner) => inner.serialize(serializer),
                    $name::V2(inner) => inner.serialize(serializer),
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = Value::deserialize(deserializer)?;
                let bytes = serde_json::to_vec(&value).map_err(D::Error::custom)?;
                crate::header::decode_json::<Self>(&bytes).map_err(D::Error::custom)
            }
        }
    };
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(bytes).map_err(DecodeError::from_json)
}

fn top_level_version(bytes: &[u8]) -> Result<Option<u64>, serde_json::Error> {
    let probe: crate::version::VersionProbe = serde_json::from_slice(bytes)?;
    Ok(probe.number())
}

/// A request's version: the top-level `x402Version`, or the payload's when a client left the top one out.
fn request_version(bytes: &[u8]) -> Result<Option<u64>, serde_json::Error> {
    let probe: crate::version::VersionProbe = serde_json::from_slice(bytes)?;
    Ok(probe.request_number())
}

versioned_enum!(PaymentRequired, top_level_version);
versioned_enum!(PaymentPayload, top_level_version);
versioned_enum!(VerifyRequest, request_version);
