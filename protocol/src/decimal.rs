//! Serde for integers that travel as decimal strings (`"10000"`): amounts, `validAfter`, `validBefore`.
//! Output is always a decimal string. Input is a string of ASCII digits (no sign, no `0x`, no exponent), or —
//! for clients that send them — a non-negative JSON integer.

use alloy::primitives::U256;
use serde::{Deserialize, Deserializer, Serializer, de};

/// Parses a string of ASCII decimal digits into a `U256`; `None` for anything else or an overflow.
pub fn parse(digits: &str) -> Option<U256> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    U256::from_str_radix(digits, 10).ok()
}

pub fn serialize<S: Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<U256, D::Error> {
    deserializer.deserialize_any(DecimalVisitor)
}

struct DecimalVisitor;

impl de::Visitor<'_> for DecimalVisitor {
    type Value = U256;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a non-negative integer as a decimal string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<U256, E> {
        parse(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<U256, E> {
        Ok(U256::from(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<U256, E> {
        u64::try_from(v)
            .map(U256::from)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }
}

/// The same for an optional field (absent or `null` is `None`).
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<U256>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => serializer.collect_str(v),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<U256>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super")] U256);
        Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|w| w.0))
    }
}
