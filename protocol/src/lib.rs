//! The x402 protocol as data: wire types for v1 and v2 (offers, payments, facilitator requests and answers,
//! discovery), the base64 header codecs, CAIP-2 networks with their USDC assets, money amounts, EIP-3009
//! `TransferWithAuthorization` typed data (hash, sign, recover, build), the error-reason strings, the counterparty-screening
//! interface, and the one helper that takes secrets out of URLs.
//!
//! Pure: no network, no database, and no clock — every function that needs "now" takes it as a parameter.

pub mod checksummed;
pub mod decimal;
pub mod eip3009;
pub mod header;
pub mod money;
pub mod network;
pub mod reason;
pub mod redact;
pub mod screening;
pub mod version;
pub mod wire;

pub use network::{Asset, Network, NetworkError, Networks};
pub use wire::{
    ExactEvmAuthorization, ExactEvmPayload, Extra, PaymentPayload, PaymentRequired, ResourceInfo, SchemePayload,
    SettleRequest, SettleResponse, SupportedKind, SupportedResponse, VerifyRequest, VerifyResponse, v1, v2,
};

/// The one payment scheme this project implements: an exact amount moved by an EIP-3009 authorization.
pub const SCHEME_EXACT: &str = "exact";
