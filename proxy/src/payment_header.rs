//! Reading the buyer's payment from a request (`PAYMENT-SIGNATURE`, else `X-PAYMENT`) and deciding, before any
//! facilitator call, whether it pays for *this* route: scheme, network, amount, asset and payTo must equal the
//! route's terms, and the signed authorization must move that amount to that payTo. The outcome is the
//! facilitator request to send, or a typed refusal with a reason.

use alloy::primitives::{Address, B256};
use axum::http::HeaderMap;
use protocol::header::{self, DecodeError};
use protocol::wire::{ExactEvmPayload, v1, v2};
use protocol::{PaymentPayload, VerifyRequest};

use crate::offer;
use crate::route_table::{Pricing, Route};

/// A payment that targets this route, ready for the facilitator.
#[derive(Debug, Clone)]
pub struct RoutePayment {
    pub request: VerifyRequest,
    pub payer: Address,
    pub nonce: B256,
    /// The authorization's `validBefore` (unix seconds, saturated): until then the buyer may resend it.
    pub valid_before: u64,
    /// Paid with the v1 header: answer in `X-PAYMENT-RESPONSE`.
    pub v1: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentHeaderError {
    #[error("the payment header is malformed: {0}")]
    Malformed(#[from] DecodeError),
    #[error("the payment header is not valid text")]
    NotText,
    #[error("{0}")]
    Mismatch(String),
    #[error("the payment uses scheme `{0}`, which this route does not accept")]
    Scheme(String),
}

impl PaymentHeaderError {
    pub fn reason(&self) -> &'static str {
        match self {
            PaymentHeaderError::Malformed(e) => e.reason(),
            PaymentHeaderError::NotText => protocol::reason::INVALID_PAYLOAD,
            PaymentHeaderError::Mismatch(_) => protocol::reason::INVALID_EXACT_EVM_ACCEPTED_MISMATCH,
            PaymentHeaderError::Scheme(_) => protocol::reason::UNSUPPORTED_SCHEME,
        }
    }
}

/// The raw payment header, if the request carries one.
pub fn find(headers: &HeaderMap) -> Option<&axum::http::HeaderValue> {
    headers
        .get(header::PAYMENT_SIGNATURE)
        .or_else(|| headers.get(header::X_PAYMENT))
}

/// Decodes the header and checks it pays for `route`.
pub fn read(
    value: &axum::http::HeaderValue,
    route: &Route,
    pricing: &Pricing,
    resource: &str,
) -> Result<RoutePayment, PaymentHeaderError> {
    if value.to_str().is_err() {
        return Err(PaymentHeaderError::NotText);
    }
    let payload = header::decode_payment(value.as_bytes())?;
    let want = &pricing.requirement;
    match payload {
        PaymentPayload::V2(payment) => {
            let accepted = &payment.accepted;
            if accepted.scheme != want.scheme {
                return Err(PaymentHeaderError::Scheme(accepted.scheme.clone()));
            }
            mismatch(
                "network",
                accepted.network == want.network,
                &accepted.network,
                &want.network,
            )?;
            mismatch("amount", accepted.amount == want.amount, &accepted.amount, &want.amount)?;
            mismatch("asset", accepted.asset == want.asset, &accepted.asset, &want.asset)?;
            mismatch("payTo", accepted.pay_to == want.pay_to, &accepted.pay_to, &want.pay_to)?;
            let (payer, nonce, valid_before) = authorization(&payment.payload, pricing)?;
            Ok(RoutePayment {
                request: VerifyRequest::V2(v2::VerifyRequest {
                    x402_version: protocol::version::Version,
                    payment_payload: payment,
                    payment_requirements: want.clone(),
                }),
                payer,
                nonce,
                valid_before,
                v1: false,
            })
        }
        PaymentPayload::V1(payment) => {
            if payment.scheme != want.scheme {
                return Err(PaymentHeaderError::Scheme(payment.scheme.clone()));
            }
            mismatch(
                "network",
                payment.network == pricing.v1_network,
                &payment.network,
                &pricing.v1_network,
            )?;
            let (payer, nonce, valid_before) = authorization(&payment.payload, pricing)?;
            Ok(RoutePayment {
                request: VerifyRequest::V1(v1::VerifyRequest {
                    x402_version: protocol::version::Version,
                    payment_requirements: offer::v1_requirement(route, pricing, resource),
                    payment_payload: payment,
                }),
                payer,
                nonce,
                valid_before,
                v1: true,
            })
        }
    }
}

fn mismatch(
    field: &str,
    equal: bool,
    got: &dyn std::fmt::Display,
    want: &dyn std::fmt::Display,
) -> Result<(), PaymentHeaderError> {
    if equal {
        Ok(())
    } else {
        Err(PaymentHeaderError::Mismatch(format!(
            "the payment's {field} is {got}; this route asks for {want}"
        )))
    }
}

/// The signed authorization must pay this route's amount to its payTo.
fn authorization(
    payload: &protocol::SchemePayload,
    pricing: &Pricing,
) -> Result<(Address, B256, u64), PaymentHeaderError> {
    let Some(ExactEvmPayload { authorization, .. }) = payload.exact_evm() else {
        return Err(PaymentHeaderError::Mismatch(
            "the payload is not an EIP-3009 authorization".into(),
        ));
    };
    let want = &pricing.requirement;
    mismatch(
        "authorization.to",
        authorization.to == want.pay_to,
        &authorization.to,
        &want.pay_to,
    )?;
    mismatch(
        "authorization.value",
        authorization.value == want.amount,
        &authorization.value,
        &want.amount,
    )?;
    let valid_before = u64::try_from(authorization.valid_before).unwrap_or(u64::MAX);
    Ok((authorization.from, authorization.nonce, valid_before))
}
