//! What a node's refusal of `eth_sendRawTransaction` means, read from a table of the JSON-RPC errors of the
//! nodes we meet — anvil (the devnet), geth, and reth (Arc's node is reth-based) — instead of one substring.
//! Each [`RefusalKind`] has one [`Action`] the nonce owner takes; anything the table does not know is
//! [`RefusalKind::Unknown`] (retried a few times, then failed with the node's own words).

use alloy::primitives::Bytes;
use alloy::providers::Provider;

use crate::chain::ChainClient;

/// What a refusal says about the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalKind {
    /// The nonce is already used on chain: by this transaction (mined) or by another.
    NonceTooLow,
    /// The node already holds this very transaction.
    AlreadyKnown,
    /// Another transaction holds the nonce in the pool with a fee this one does not beat enough, or the fee is
    /// below what the node accepts (the pool minimum, the block's base fee).
    Underpriced,
    /// The signer cannot pay for the gas.
    InsufficientFunds,
    /// The transaction asks for more gas than a block holds.
    ExceedsBlockGasLimit,
    /// A JSON-RPC error the table does not know.
    Unknown,
    /// No JSON-RPC answer at all (connection, timeout, garbage): the node may or may not have it.
    Transport,
}

/// What the nonce owner does about a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The transaction is in the node's hands: record it as submitted and wait for its receipt.
    MarkSubmitted,
    /// Re-read the chain's nonce; the call moves to a fresh nonce unless its payments are already used.
    Resync,
    /// Sign the same call at the same nonce with higher fees.
    BumpFee,
    /// The transaction cannot go in as it is: it is given up and its payments fail with the node's reason
    /// (retryable: the payment itself is fine).
    FailWithReason,
    /// Send the same bytes again after a pause.
    Retry,
}

impl RefusalKind {
    pub fn action(self) -> Action {
        match self {
            RefusalKind::AlreadyKnown => Action::MarkSubmitted,
            RefusalKind::NonceTooLow => Action::Resync,
            RefusalKind::Underpriced => Action::BumpFee,
            RefusalKind::InsufficientFunds | RefusalKind::ExceedsBlockGasLimit => Action::FailWithReason,
            RefusalKind::Unknown | RefusalKind::Transport => Action::Retry,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RefusalKind::NonceTooLow => "nonce_too_low",
            RefusalKind::AlreadyKnown => "already_known",
            RefusalKind::Underpriced => "underpriced",
            RefusalKind::InsufficientFunds => "insufficient_funds_for_gas",
            RefusalKind::ExceedsBlockGasLimit => "exceeds_block_gas_limit",
            RefusalKind::Unknown => "unknown",
            RefusalKind::Transport => "transport",
        }
    }
}

/// One known refusal: the nodes that send it, the code they send it with, and the start of its message
/// (matched case-insensitively anywhere in the message; nodes append details such as "next nonce 5").
pub struct KnownRefusal {
    pub nodes: &'static str,
    pub code: i64,
    pub message: &'static str,
    pub kind: RefusalKind,
}

/// geth answers every txpool refusal with -32000. reth mirrors geth's messages; its pool errors are -32000
/// (invalid input) and its invalid-transaction errors -32003 (transaction rejected). anvil uses -32003 for
/// pool and validation errors and -32000 for gas-limit errors. Longer messages come first where one contains
/// another ("replacement transaction underpriced" ⊃ "transaction underpriced").
pub const KNOWN_REFUSALS: &[KnownRefusal] = &[
    KnownRefusal {
        nodes: "geth, reth",
        code: -32000,
        message: "already known",
        kind: RefusalKind::AlreadyKnown,
    },
    KnownRefusal {
        nodes: "anvil",
        code: -32003,
        message: "transaction already imported",
        kind: RefusalKind::AlreadyKnown,
    },
    KnownRefusal {
        nodes: "geth (older)",
        code: -32000,
        message: "known transaction",
        kind: RefusalKind::AlreadyKnown,
    },
    KnownRefusal {
        nodes: "geth, anvil",
        code: -32003,
        message: "nonce too low",
        kind: RefusalKind::NonceTooLow,
    },
    KnownRefusal {
        nodes: "reth",
        code: -32000,
        message: "nonce too low: next nonce",
        kind: RefusalKind::NonceTooLow,
    },
    KnownRefusal {
        nodes: "hosted gateways",
        code: -32000,
        message: "nonce has already been used",
        kind: RefusalKind::NonceTooLow,
    },
    KnownRefusal {
        nodes: "geth, reth, anvil",
        code: -32000,
        message: "replacement transaction underpriced",
        kind: RefusalKind::Underpriced,
    },
    KnownRefusal {
        nodes: "geth, reth",
        code: -32000,
        message: "transaction underpriced",
        kind: RefusalKind::Underpriced,
    },
    KnownRefusal {
        nodes: "geth, reth, anvil",
        code: -32003,
        message: "max fee per gas less than block base fee",
        kind: RefusalKind::Underpriced,
    },
    KnownRefusal {
        nodes: "geth, reth, anvil",
        code: -32003,
        message: "insufficient funds for gas * price + value",
        kind: RefusalKind::InsufficientFunds,
    },
    KnownRefusal {
        nodes: "geth, reth",
        code: -32000,
        message: "exceeds block gas limit",
        kind: RefusalKind::ExceedsBlockGasLimit,
    },
    KnownRefusal {
        nodes: "anvil, reth",
        code: -32000,
        message: "intrinsic gas too high",
        kind: RefusalKind::ExceedsBlockGasLimit,
    },
];

/// The kind of a JSON-RPC error answer.
pub fn classify(code: i64, message: &str) -> RefusalKind {
    let message = message.to_lowercase();
    for known in KNOWN_REFUSALS {
        if message.contains(known.message) {
            return known.kind;
        }
    }
    // Some gateways wrap the node's words; the code alone decides nothing (-32000 and -32003 cover many).
    let _ = code;
    RefusalKind::Unknown
}

/// A broadcast the node did not take as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub kind: RefusalKind,
    /// The JSON-RPC error code, when the node answered with one.
    pub code: Option<i64>,
    /// The node's words (the RPC URL's credentials are already masked by the transport).
    pub message: String,
}

/// Sends a signed transaction; every refusal (even "already known") is returned with its kind, for the caller's
/// [`RefusalKind::action`].
pub async fn broadcast(chain: &ChainClient, raw: &Bytes) -> Result<(), Refusal> {
    match chain.provider().send_raw_transaction(raw).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let refusal = match e.as_error_resp() {
                Some(payload) => Refusal {
                    kind: classify(payload.code, &payload.message),
                    code: Some(payload.code),
                    message: format!("{} (code {})", payload.message, payload.code),
                },
                None => Refusal {
                    kind: RefusalKind::Transport,
                    code: None,
                    message: e.to_string(),
                },
            };
            Err(refusal)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages exactly as each node sends them (anvil's measured on the pinned anvil 1.7.1).
    const SEEN: &[(&str, i64, &str, RefusalKind)] = &[
        (
            "anvil",
            -32003,
            "transaction already imported",
            RefusalKind::AlreadyKnown,
        ),
        ("anvil", -32003, "nonce too low", RefusalKind::NonceTooLow),
        (
            "anvil",
            -32003,
            "replacement transaction underpriced",
            RefusalKind::Underpriced,
        ),
        (
            "anvil",
            -32003,
            "max fee per gas less than block base fee",
            RefusalKind::Underpriced,
        ),
        (
            "anvil",
            -32003,
            "Insufficient funds for gas * price + value",
            RefusalKind::InsufficientFunds,
        ),
        (
            "anvil",
            -32000,
            "intrinsic gas too high -- tx.gas_limit > env.block.gas_limit",
            RefusalKind::ExceedsBlockGasLimit,
        ),
        ("geth", -32000, "already known", RefusalKind::AlreadyKnown),
        (
            "geth",
            -32000,
            "nonce too low: address 0x0000000000000000000000000000000000000001, tx: 3 state: 5",
            RefusalKind::NonceTooLow,
        ),
        (
            "geth",
            -32000,
            "replacement transaction underpriced",
            RefusalKind::Underpriced,
        ),
        ("geth", -32000, "transaction underpriced", RefusalKind::Underpriced),
        (
            "geth",
            -32000,
            "insufficient funds for gas * price + value: address 0x01 have 0 want 1",
            RefusalKind::InsufficientFunds,
        ),
        (
            "geth",
            -32000,
            "exceeds block gas limit",
            RefusalKind::ExceedsBlockGasLimit,
        ),
        ("reth", -32000, "already known", RefusalKind::AlreadyKnown),
        (
            "reth",
            -32000,
            "nonce too low: next nonce 5, tx nonce 3",
            RefusalKind::NonceTooLow,
        ),
        (
            "reth",
            -32000,
            "replacement transaction underpriced",
            RefusalKind::Underpriced,
        ),
        (
            "reth",
            -32003,
            "insufficient funds for gas * price + value: have 0 want 21000",
            RefusalKind::InsufficientFunds,
        ),
        (
            "reth",
            -32000,
            "exceeds block gas limit",
            RefusalKind::ExceedsBlockGasLimit,
        ),
        ("reth", -32000, "txpool is full", RefusalKind::Unknown),
        ("geth", -32000, "nonce too high", RefusalKind::Unknown),
        (
            "any",
            -32601,
            "the method eth_sendRawTransaction does not exist",
            RefusalKind::Unknown,
        ),
    ];

    #[test]
    fn every_seen_message_has_its_kind() {
        for (node, code, message, kind) in SEEN {
            assert_eq!(classify(*code, message), *kind, "{node}: {message}");
        }
    }

    #[test]
    fn every_kind_has_its_action() {
        assert_eq!(RefusalKind::AlreadyKnown.action(), Action::MarkSubmitted);
        assert_eq!(RefusalKind::NonceTooLow.action(), Action::Resync);
        assert_eq!(RefusalKind::Underpriced.action(), Action::BumpFee);
        assert_eq!(RefusalKind::InsufficientFunds.action(), Action::FailWithReason);
        assert_eq!(RefusalKind::ExceedsBlockGasLimit.action(), Action::FailWithReason);
        assert_eq!(RefusalKind::Unknown.action(), Action::Retry);
        assert_eq!(RefusalKind::Transport.action(), Action::Retry);
    }

    #[test]
    fn the_table_matches_its_own_messages() {
        for known in KNOWN_REFUSALS {
            assert_eq!(classify(known.code, known.message), known.kind, "{}", known.message);
        }
    }
}
