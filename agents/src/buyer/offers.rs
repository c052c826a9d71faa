//! Reading what a `402` asks for: the v2 `PAYMENT-REQUIRED` header when present, else a v1 JSON body. Each
//! requirement becomes an [`Offer`] with its chain id resolved (CAIP-2 for v2, the network name for v1), so the
//! policy and the signer see one shape whatever the protocol version. A v2 offer also keeps each requirement's
//! and the resource's JSON exactly as the seller sent them: the payment echoes `accepted` verbatim (the official
//! servers compare it to their own requirement field for field, string forms included: a lower-case `payTo` must
//! come back lower-case).

use alloy::primitives::{Address, U256};
use protocol::header::{self, DecodeError};
use protocol::wire::{ResourceInfo, v1, v2};
use protocol::{Networks, PaymentRequired};
use reqwest::header::HeaderMap;

/// One way to pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    V2 {
        requirement: v2::PaymentRequirements,
        resource: Option<ResourceInfo>,
        chain_id: Option<u64>,
        /// `accepts[i]` as received, unknown fields and string forms kept.
        accepted_json: serde_json::Value,
        /// The offer's `resource` as received.
        resource_json: Option<serde_json::Value>,
    },
    V1 {
        requirement: v1::PaymentRequirements,
        chain_id: Option<u64>,
    },
}

impl Offer {
    /// A v2 offer built from typed parts (its JSON is their serialisation), for offers that did not come off
    /// the wire.
    pub fn v2(requirement: v2::PaymentRequirements, resource: Option<ResourceInfo>) -> Self {
        Offer::V2 {
            chain_id: protocol::network::parse_caip2(&requirement.network).ok(),
            accepted_json: serde_json::to_value(&requirement).unwrap_or_default(),
            resource_json: resource.as_ref().and_then(|r| serde_json::to_value(r).ok()),
            requirement,
            resource,
        }
    }

    pub fn scheme(&self) -> &str {
        match self {
            Offer::V2 { requirement, .. } => &requirement.scheme,
            Offer::V1 { requirement, .. } => &requirement.scheme,
        }
    }

    /// The network as the offer names it (CAIP-2 for v2, a name for v1).
    pub fn network(&self) -> &str {
        match self {
            Offer::V2 { requirement, .. } => &requirement.network,
            Offer::V1 { requirement, .. } => &requirement.network,
        }
    }

    /// `eip155:<chain id>` when the chain is known.
    pub fn caip2(&self) -> Option<String> {
        self.chain_id().map(protocol::network::caip2)
    }

    pub fn chain_id(&self) -> Option<u64> {
        match self {
            Offer::V2 { chain_id, .. } | Offer::V1 { chain_id, .. } => *chain_id,
        }
    }

    pub fn amount(&self) -> U256 {
        match self {
            Offer::V2 { requirement, .. } => requirement.amount,
            Offer::V1 { requirement, .. } => requirement.max_amount_required,
        }
    }

    pub fn asset(&self) -> Address {
        match self {
            Offer::V2 { requirement, .. } => requirement.asset,
            Offer::V1 { requirement, .. } => requirement.asset,
        }
    }

    pub fn pay_to(&self) -> Address {
        match self {
            Offer::V2 { requirement, .. } => requirement.pay_to,
            Offer::V1 { requirement, .. } => requirement.pay_to,
        }
    }

    /// How long the authorization stays valid, as the seller asks (its `validBefore` is now plus this).
    pub fn max_timeout_seconds(&self) -> u64 {
        match self {
            Offer::V2 { requirement, .. } => requirement.max_timeout_seconds,
            Offer::V1 { requirement, .. } => requirement.max_timeout_seconds,
        }
    }

    pub fn version(&self) -> u8 {
        match self {
            Offer::V2 { .. } => 2,
            Offer::V1 { .. } => 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    #[error("the PAYMENT-REQUIRED header is unreadable: {0}")]
    Header(DecodeError),
    #[error("the 402 carries no offer (no PAYMENT-REQUIRED header, and the body is not an x402 document)")]
    Missing,
}

/// The offers of a 402 answer.
pub fn read(headers: &HeaderMap, body: &[u8], networks: &Networks) -> Result<Vec<Offer>, OfferError> {
    if let Some(value) = headers.get(header::PAYMENT_REQUIRED) {
        let offer = header::decode_payment_required_v2(value.as_bytes()).map_err(OfferError::Header)?;
        let json = header::decode_json_header(value.as_bytes()).map_err(OfferError::Header)?;
        return Ok(from_v2(offer, &json));
    }
    match header::decode_json::<PaymentRequired>(body) {
        Ok(PaymentRequired::V2(offer)) => {
            let json = serde_json::from_slice(body).unwrap_or_default();
            Ok(from_v2(offer, &json))
        }
        Ok(PaymentRequired::V1(offer)) => Ok(from_v1(offer, networks)),
        Err(_) => Err(OfferError::Missing),
    }
}

/// The typed offer's requirements, each with its JSON from `json` (the same document, parsed untyped).
fn from_v2(offer: v2::PaymentRequired, json: &serde_json::Value) -> Vec<Offer> {
    let resource_json = json.get("resource").cloned();
    offer
        .accepts
        .into_iter()
        .enumerate()
        .map(|(i, requirement)| Offer::V2 {
            chain_id: protocol::network::parse_caip2(&requirement.network).ok(),
            accepted_json: json["accepts"]
                .get(i)
                .cloned()
                .unwrap_or_else(|| serde_json::to_value(&requirement).unwrap_or_default()),
            resource_json: resource_json.clone(),
            requirement,
            resource: Some(offer.resource.clone()),
        })
        .collect()
}

fn from_v1(offer: v1::PaymentRequired, networks: &Networks) -> Vec<Offer> {
    offer
        .accepts
        .into_iter()
        .map(|requirement| Offer::V1 {
            chain_id: networks.get(&requirement.network).ok().map(|n| n.chain_id),
            requirement,
        })
        .collect()
}
