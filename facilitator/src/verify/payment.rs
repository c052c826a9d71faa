//! A request of either version made into one [`Payment`]: its network and asset resolved against what this
//! facilitator settles, the terms it must meet, and the authorization it carries. Checks 1 and 2 live here
//! because they decide what the request means: version, scheme and network supported; and (v2) `accepted`
//! equal to `paymentRequirements` on every field that decides the payment — the reference leaves that to the
//! seller, we do not.

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use protocol::network::Asset;
use protocol::wire::{Extra, SchemePayload, VerifyRequest};
use protocol::{ExactEvmAuthorization, SCHEME_EXACT, eip3009, reason};

use crate::chain::ChainClient;

/// A payment that passed no, some or all checks — the facts every check reads.
#[derive(Clone)]
pub struct Payment {
    pub version: u8,
    pub chain: ChainClient,
    pub asset: Asset,
    pub amount: U256,
    pub pay_to: Address,
    pub max_timeout_seconds: u64,
    pub extra: Option<Extra>,
    pub authorization: ExactEvmAuthorization,
    pub signature: Bytes,
    /// EIP-712 digest under the requirement's domain (name/version from `extra`, falling back to the
    /// asset's configured domain when `extra` lacks them; that case is refused by the domain check anyway).
    pub signing_hash: B256,
    /// `keccak256(signing_hash ‖ signature)`: the same payment resent has the same hash.
    pub payload_hash: B256,
}

/// A failed check: the x402 reason, a human message, and the payer when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub reason: &'static str,
    pub message: String,
    pub payer: Option<Address>,
}

impl Invalid {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Invalid {
            reason,
            message: message.into(),
            payer: None,
        }
    }
}

impl Payment {
    pub fn invalid(&self, reason: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            reason,
            message: message.into(),
            payer: Some(self.authorization.from),
        }
    }

    pub fn payer(&self) -> Address {
        self.authorization.from
    }
}

/// The terms and payload of either version, before resolution.
struct Parts<'a> {
    version: u8,
    scheme: &'a str,
    network: &'a str,
    amount: U256,
    asset: Address,
    pay_to: Address,
    max_timeout_seconds: u64,
    extra: Option<&'a Extra>,
    payload: &'a SchemePayload,
}

/// Resolves a request into a payment (checks 1 and 2). `chain_for` finds the client for a network id or name.
pub fn payment_from_request(
    request: &VerifyRequest,
    chain_for: impl Fn(&str) -> Option<ChainClient>,
) -> Result<Payment, Invalid> {
    let parts = match request {
        VerifyRequest::V1(r) => {
            let (req, pay) = (&r.payment_requirements, &r.payment_payload);
            if pay.scheme != req.scheme {
                return Err(Invalid::new(
                    reason::INVALID_EXACT_EVM_SCHEME,
                    format!(
                        "payload scheme `{}` differs from the requirement's `{}`",
                        pay.scheme, req.scheme
                    ),
                ));
            }
            if pay.network != req.network {
                return Err(Invalid::new(
                    reason::INVALID_EXACT_EVM_NETWORK_MISMATCH,
                    format!(
                        "payload network `{}` differs from the requirement's `{}`",
                        pay.network, req.network
                    ),
                ));
            }
            Parts {
                version: 1,
                scheme: &req.scheme,
                network: &req.network,
                amount: req.max_amount_required,
                asset: req.asset,
                pay_to: req.pay_to,
                max_timeout_seconds: req.max_timeout_seconds,
                extra: req.extra.as_ref(),
                payload: &pay.payload,
            }
        }
        VerifyRequest::V2(r) => {
            let (req, accepted) = (&r.payment_requirements, &r.payment_payload.accepted);
            if let Some(field) = differing_field(accepted, req) {
                return Err(Invalid::new(
                    reason::INVALID_EXACT_EVM_ACCEPTED_MISMATCH,
                    format!("paymentPayload.accepted.{field} differs from paymentRequirements.{field}"),
                ));
            }
            Parts {
                version: 2,
                scheme: &req.scheme,
                network: &req.network,
                amount: req.amount,
                asset: req.asset,
                pay_to: req.pay_to,
                max_timeout_seconds: req.max_timeout_seconds,
                extra: req.extra.as_ref(),
                payload: &r.payment_payload.payload,
            }
        }
    };
    if parts.scheme != SCHEME_EXACT {
        return Err(Invalid::new(
            reason::UNSUPPORTED_SCHEME,
            format!("scheme `{}` is not supported", parts.scheme),
        ));
    }
    let chain = chain_for(parts.network).ok_or_else(|| {
        Invalid::new(
            reason::INVALID_NETWORK,
            format!("network `{}` is not supported", parts.network),
        )
    })?;
    let Some(exact) = parts.payload.exact_evm() else {
        return Err(Invalid::new(
            reason::INVALID_PAYLOAD,
            "payload is not an EIP-3009 authorization and signature",
        ));
    };
    let asset = chain.network.asset(parts.asset).cloned().ok_or_else(|| {
        Invalid::new(
            reason::INVALID_EXACT_EVM_UNSUPPORTED_ASSET,
            format!("asset {} is not settled on {}", parts.asset, chain.caip2),
        )
    })?;
    if parts.max_timeout_seconds == 0 {
        return Err(Invalid::new(
            reason::INVALID_PAYLOAD,
            "maxTimeoutSeconds must be positive",
        ));
    }
    let name = parts
        .extra
        .and_then(|e| e.name.as_deref())
        .unwrap_or(&asset.eip712_name);
    let version = parts
        .extra
        .and_then(|e| e.version.as_deref())
        .unwrap_or(&asset.eip712_version);
    let separator = chain.domain_separator(name, version, asset.address);
    let signing_hash = eip3009::signing_hash_under(&exact.authorization, separator);
    let mut preimage = Vec::with_capacity(32 + exact.signature.len());
    preimage.extend_from_slice(signing_hash.as_slice());
    preimage.extend_from_slice(&exact.signature);
    Ok(Payment {
        version: parts.version,
        asset,
        amount: parts.amount,
        pay_to: parts.pay_to,
        max_timeout_seconds: parts.max_timeout_seconds,
        extra: parts.extra.cloned(),
        authorization: exact.authorization.clone(),
        signature: exact.signature.clone(),
        signing_hash,
        payload_hash: keccak256(&preimage),
        chain,
    })
}

fn differing_field(
    accepted: &protocol::v2::PaymentRequirements,
    required: &protocol::v2::PaymentRequirements,
) -> Option<&'static str> {
    if accepted.scheme != required.scheme {
        Some("scheme")
    } else if accepted.network != required.network {
        Some("network")
    } else if accepted.amount != required.amount {
        Some("amount")
    } else if accepted.asset != required.asset {
        Some("asset")
    } else if accepted.pay_to != required.pay_to {
        Some("payTo")
    } else if accepted.max_timeout_seconds != required.max_timeout_seconds {
        Some("maxTimeoutSeconds")
    } else {
        None
    }
}
