//! The machine-readable reason strings that facilitators put in `invalidReason` / `errorReason`
//! (`x402.md` §3), plus the few this project adds where the reference has none. Incoming reasons are
//! open-ended strings; these constants are what we emit.

pub const INVALID_EXACT_EVM_SCHEME: &str = "invalid_exact_evm_scheme";
pub const INVALID_EXACT_EVM_NETWORK_MISMATCH: &str = "invalid_exact_evm_network_mismatch";
pub const INVALID_EXACT_EVM_MISSING_EIP712_DOMAIN: &str = "invalid_exact_evm_missing_eip712_domain";
pub const INVALID_EXACT_EVM_SIGNATURE: &str = "invalid_exact_evm_signature";
pub const INVALID_EXACT_EVM_RECIPIENT_MISMATCH: &str = "invalid_exact_evm_recipient_mismatch";
pub const INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_BEFORE: &str =
    "invalid_exact_evm_payload_authorization_valid_before";
pub const INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_AFTER: &str =
    "invalid_exact_evm_payload_authorization_valid_after";
pub const INVALID_EXACT_EVM_AUTHORIZATION_VALUE: &str = "invalid_exact_evm_authorization_value";
pub const INVALID_EXACT_EVM_NONCE_ALREADY_USED: &str = "invalid_exact_evm_nonce_already_used";
pub const INVALID_EXACT_EVM_INSUFFICIENT_BALANCE: &str = "invalid_exact_evm_insufficient_balance";
pub const INVALID_EXACT_EVM_TOKEN_NAME_MISMATCH: &str = "invalid_exact_evm_token_name_mismatch";
pub const INVALID_EXACT_EVM_TOKEN_VERSION_MISMATCH: &str = "invalid_exact_evm_token_version_mismatch";
pub const INVALID_EXACT_EVM_TRANSACTION_SIMULATION_FAILED: &str = "invalid_exact_evm_transaction_simulation_failed";
pub const INVALID_EXACT_EVM_TRANSACTION_FAILED: &str = "invalid_exact_evm_transaction_failed";
pub const INVALID_PAYLOAD: &str = "invalid_payload";
pub const INVALID_X402_VERSION: &str = "invalid_x402_version";
pub const UNSUPPORTED_SCHEME: &str = "unsupported_scheme";
pub const INVALID_NETWORK: &str = "invalid_network";
pub const DUPLICATE_SETTLEMENT: &str = "duplicate_settlement";
pub const UNEXPECTED_VERIFY_ERROR: &str = "unexpected_verify_error";
pub const UNEXPECTED_SETTLE_ERROR: &str = "unexpected_settle_error";
/// Circle's hosted facilitator: the chain has not confirmed within the wait; never serve content on it.
pub const SETTLEMENT_PENDING: &str = "settlement_pending";

// Reasons this project adds where the reference has none (callers treat reasons as open-ended strings).
/// `paymentPayload.accepted` differs from `paymentRequirements` on a field that decides the payment.
pub const INVALID_EXACT_EVM_ACCEPTED_MISMATCH: &str = "invalid_exact_evm_accepted_mismatch";
/// The asset is not one this facilitator settles on that network.
pub const INVALID_EXACT_EVM_UNSUPPORTED_ASSET: &str = "invalid_exact_evm_unsupported_asset";
/// Payer or payee is on the token's blacklist.
pub const INVALID_EXACT_EVM_ADDRESS_BLACKLISTED: &str = "invalid_exact_evm_address_blacklisted";
/// A screening source (OFAC list, Circle Compliance Engine, a local deny list, the token's blocklist) lists the
/// payer or the payee (ours; not in the x402 reason list).
pub const COMPLIANCE_BLOCKED: &str = "compliance_blocked";
/// A screening source that must answer could not, so the payment is refused (fail-closed; ours).
pub const COMPLIANCE_UNAVAILABLE: &str = "compliance_unavailable";
/// The token is paused.
pub const INVALID_EXACT_EVM_TOKEN_PAUSED: &str = "invalid_exact_evm_token_paused";

/// Every reason above, for tests and documentation.
pub const ALL: &[&str] = &[
    INVALID_EXACT_EVM_SCHEME,
    INVALID_EXACT_EVM_NETWORK_MISMATCH,
    INVALID_EXACT_EVM_MISSING_EIP712_DOMAIN,
    INVALID_EXACT_EVM_SIGNATURE,
    INVALID_EXACT_EVM_RECIPIENT_MISMATCH,
    INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_BEFORE,
    INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_AFTER,
    INVALID_EXACT_EVM_AUTHORIZATION_VALUE,
    INVALID_EXACT_EVM_NONCE_ALREADY_USED,
    INVALID_EXACT_EVM_INSUFFICIENT_BALANCE,
    INVALID_EXACT_EVM_TOKEN_NAME_MISMATCH,
    INVALID_EXACT_EVM_TOKEN_VERSION_MISMATCH,
    INVALID_EXACT_EVM_TRANSACTION_SIMULATION_FAILED,
    INVALID_EXACT_EVM_TRANSACTION_FAILED,
    INVALID_PAYLOAD,
    INVALID_X402_VERSION,
    UNSUPPORTED_SCHEME,
    INVALID_NETWORK,
    DUPLICATE_SETTLEMENT,
    UNEXPECTED_VERIFY_ERROR,
    UNEXPECTED_SETTLE_ERROR,
    SETTLEMENT_PENDING,
    INVALID_EXACT_EVM_ACCEPTED_MISMATCH,
    INVALID_EXACT_EVM_UNSUPPORTED_ASSET,
    INVALID_EXACT_EVM_ADDRESS_BLACKLISTED,
    INVALID_EXACT_EVM_TOKEN_PAUSED,
    COMPLIANCE_BLOCKED,
    COMPLIANCE_UNAVAILABLE,
];
