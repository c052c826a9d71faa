//! Serde for addresses on the wire: emitted EIP-55 checksummed, as the reference SDKs emit them (some clients
//! compare address strings as they are); accepted in any case.

use alloy::primitives::Address;
use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(address: &Address, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&address.to_checksum(None))
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Address, D::Error> {
    Address::deserialize(deserializer)
}

/// The same for an optional address.
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(address: &Option<Address>, serializer: S) -> Result<S::Ok, S::Error> {
        match address {
            Some(a) => super::serialize(a, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Address>, D::Error> {
        Option::<Address>::deserialize(deserializer)
    }
}
