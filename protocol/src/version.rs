//! The `x402Version` field as a type: `Version<1>` and `Version<2>` serialise as the bare number and refuse
//! any other number when deserialised, so a v2 type can never silently hold a v1 document.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A fixed protocol version number on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Version<const N: u8>;

impl<const N: u8> Version<N> {
    /// The number this marker stands for.
    pub const NUMBER: u8 = N;
}

impl<const N: u8> Serialize for Version<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(N)
    }
}

impl<'de, const N: u8> Deserialize<'de> for Version<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let found = u64::deserialize(deserializer)?;
        if found == u64::from(N) {
            Ok(Version)
        } else {
            Err(serde::de::Error::custom(format_args!(
                "x402Version {found} where {N} was expected"
            )))
        }
    }
}

/// Reads only the `x402Version` of a JSON object (and, for request bodies, the one inside `paymentPayload`), so
/// the right versioned type can be chosen before the full parse. Anything but an object is refused.
#[derive(Debug, Default)]
pub(crate) struct VersionProbe {
    pub version: Option<serde_json::Value>,
    pub payload_version: Option<Box<VersionProbe>>,
}

impl VersionProbe {
    /// The top-level version as a small number, if it is one.
    pub fn number(&self) -> Option<u64> {
        self.version.as_ref().and_then(serde_json::Value::as_u64)
    }

    /// The top-level version, else the one of `paymentPayload`.
    pub fn request_number(&self) -> Option<u64> {
        self.number()
            .or_else(|| self.payload_version.as_ref().and_then(|p| p.number()))
    }
}

#[derive(Deserialize)]
#[serde(field_identifier)]
enum ProbeField {
    #[serde(rename = "x402Version")]
    Version,
    #[serde(rename = "paymentPayload")]
    Payload,
    #[serde(other)]
    Other,
}

impl<'de> Deserialize<'de> for VersionProbe {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ProbeVisitor)
    }
}

struct ProbeVisitor;

impl<'de> serde::de::Visitor<'de> for ProbeVisitor {
    type Value = VersionProbe;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object with x402Version")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<VersionProbe, A::Error> {
        let mut probe = VersionProbe::default();
        while let Some(field) = map.next_key::<ProbeField>()? {
            match field {
                ProbeField::Version => probe.version = Some(map.next_value()?),
                ProbeField::Payload => probe.payload_version = Some(Box::new(map.next_value()?)),
                ProbeField::Other => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(probe)
    }
}
