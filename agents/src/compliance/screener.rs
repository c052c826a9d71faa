//! The one interface every screening source meets: `screen(address)` answers `Clear`, `Blocked` (with the
//! source's reason) or `Unavailable` (the source could not answer: fail-closed unless it is advisory). Also
//! the address normalisation every list uses (`0x` + 40 hex digits, compared case-insensitively).

use std::future::Future;
use std::pin::Pin;

use alloy::primitives::Address;
use serde::Serialize;

/// A boxed future, so the trait stays object-safe.
pub type ScreenFuture<'a> = Pin<Box<dyn Future<Output = SourceAnswer> + Send + 'a>>;

/// What one source says about one address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum SourceAnswer {
    Clear,
    /// `reason` is short and machine-readable (`sanctions`, `blacklisted`, `denied`); `detail` says more.
    Blocked {
        reason: String,
        detail: String,
    },
    /// The source could not answer (down, timed out, refused our key, no list loaded yet).
    Unavailable {
        error: String,
    },
}

impl SourceAnswer {
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceAnswer::Clear => "clear",
            SourceAnswer::Blocked { .. } => "blocked",
            SourceAnswer::Unavailable { .. } => "unavailable",
        }
    }
}

/// The names sources go by in configuration (`advisory = [...]`) and in audit rows.
pub mod source_name {
    pub const TOKEN_BLOCKLIST: &str = "token_blocklist";
    pub const OFAC: &str = "ofac";
    pub const CIRCLE: &str = "circle";
    pub const LOCAL_LIST: &str = "local_list";
    pub const ALL: [&str; 4] = [TOKEN_BLOCKLIST, OFAC, CIRCLE, LOCAL_LIST];
}

/// One screening source.
pub trait Screener: Send + Sync {
    /// One of [`source_name`].
    fn name(&self) -> &'static str;
    fn screen(&self, address: Address) -> ScreenFuture<'_>;
    /// The version of the list the answers come from (the OFAC publication date), when the source has one.
    fn version(&self) -> Option<String> {
        None
    }
}

/// An EVM address from list text: `0x` + 40 hex digits in any case (surrounding whitespace allowed);
/// anything else (a Bitcoin address, a Tron address, a malformed entry) is `None`.
pub fn parse_evm(text: &str) -> Option<Address> {
    let text = text.trim();
    let hex = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"))?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // Any case: a list's checksum is not ours to check (OFAC mixes checksummed and lowercase entries).
    hex.to_ascii_lowercase().parse::<Address>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evm_addresses_in_any_case_are_one_address_and_others_are_not_addresses() {
        let lower = parse_evm("0x8589427373d6d84e98730d7795d8f6f8731fda16").unwrap();
        assert_eq!(parse_evm(" 0x8589427373D6D84E98730D7795D8f6f8731FDA16\n"), Some(lower));
        assert_eq!(parse_evm("0X8589427373d6d84e98730d7795d8f6f8731fda16"), Some(lower));
        assert_eq!(parse_evm("8589427373d6d84e98730d7795d8f6f8731fda16"), None);
        assert_eq!(parse_evm("0x8589427373d6d84e98730d7795d8f6f8731fda1"), None);
        assert_eq!(parse_evm("0x8589427373d6d84e98730d7795d8f6f8731fda1g"), None);
        assert_eq!(parse_evm("1BoatSLRHtKNngkdXEeobR76b53LETtpyT"), None);
        assert_eq!(parse_evm("TXYZ1234567890abcdefABCDEF1234567890ab"), None);
    }
}
