//! The `402 Payment Required` answer: the v2 offer in the `PAYMENT-REQUIRED` header and, for body-only and v1
//! clients, a v1 JSON body (`x402Version`, `error`, `accepts` with `maxAmountRequired` and `resource`) plus
//! our machine-readable `reason`; `Cache-Control: no-store` and CORS headers that expose the payment headers.
//! Browsers get the HTML paywall page instead of the JSON body.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use protocol::wire::{ResourceInfo, v1, v2};
use protocol::{SettleResponse, header as codec};
use serde::Serialize;

use crate::paywall_page;
use crate::route_table::{Pricing, Route};

pub const EXPOSE_HEADERS: &str = "PAYMENT-REQUIRED, PAYMENT-RESPONSE, X-PAYMENT-RESPONSE, X-Access-Token";

/// What the 402 says beyond the offer.
pub struct Refusal<'a> {
    /// Machine-readable, e.g. `payment_required`, `invalid_payment_header`, or the facilitator's reason.
    pub reason: &'a str,
    /// Human-readable.
    pub message: String,
    /// A failed settlement to report in `PAYMENT-RESPONSE` / the body.
    pub settlement: Option<&'a SettleResponse>,
    /// The buyer paid with v1: answer the settlement in `X-PAYMENT-RESPONSE`.
    pub v1: bool,
}

impl<'a> Refusal<'a> {
    pub fn new(reason: &'a str, message: impl Into<String>) -> Self {
        Refusal {
            reason,
            message: message.into(),
            settlement: None,
            v1: false,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body402<'a> {
    #[serde(flatten)]
    offer: v1::PaymentRequired,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    settlement: Option<&'a SettleResponse>,
}

/// The absolute URL of what is being sold, as the buyer addressed it.
pub fn resource_url(headers: &HeaderMap, uri: &Uri) -> String {
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or(uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    format!("{proto}://{host}{path}")
}

pub fn payment_required(route: &Route, pricing: &Pricing, resource: &str, error: &str) -> v2::PaymentRequired {
    v2::PaymentRequired {
        x402_version: protocol::version::Version,
        error: Some(error.to_owned()),
        resource: ResourceInfo {
            url: resource.to_owned(),
            description: (!route.description.is_empty()).then(|| route.description.clone()),
            mime_type: Some(route.mime_type.clone()),
        },
        accepts: vec![pricing.requirement.clone()],
        extensions: None,
    }
}

/// The v1 requirement equivalent to the route's v2 one.
pub fn v1_requirement(route: &Route, pricing: &Pricing, resource: &str) -> v1::PaymentRequirements {
    let r = &pricing.requirement;
    v1::PaymentRequirements {
        scheme: r.scheme.clone(),
        network: pricing.v1_network.clone(),
        max_amount_required: r.amount,
        resource: resource.to_owned(),
        description: route.description.clone(),
        mime_type: route.mime_type.clone(),
        output_schema: None,
        pay_to: r.pay_to,
        max_timeout_seconds: r.max_timeout_seconds,
        asset: r.asset,
        extra: r.extra.clone(),
    }
}

/// A browser that should see the paywall page rather than JSON.
pub fn is_browser(headers: &HeaderMap) -> bool {
    let accepts_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let mozilla = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("Mozilla"));
    accepts_html && mozilla
}

/// The full 402 answer for `route`.
pub fn respond_402(
    route: &Route,
    pricing: &Pricing,
    method: &Method,
    headers: &HeaderMap,
    uri: &Uri,
    refusal: Refusal<'_>,
) -> Response {
    let resource = resource_url(headers, uri);
    let offer = payment_required(route, pricing, &resource, &refusal.message);
    let mut builder = Response::builder()
        .status(StatusCode::PAYMENT_REQUIRED)
        .header(codec::PAYMENT_REQUIRED, codec::encode(&offer))
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS);
    // A 402 never carries a successful receipt (a client would report it as paid): a settled payment's
    // transaction goes in the JSON body only.
    if let Some(settlement) = refusal.settlement.filter(|s| !s.success) {
        let name = if refusal.v1 {
            codec::X_PAYMENT_RESPONSE
        } else {
            codec::PAYMENT_RESPONSE
        };
        builder = builder.header(name, codec::encode(settlement));
    }
    let (content_type, body) = if is_browser(headers) && refusal.settlement.is_none() {
        (
            "text/html; charset=utf-8",
            paywall_page::render(&offer, &pricing.asset).into_bytes(),
        )
    } else {
        let body = Body402 {
            offer: v1::PaymentRequired {
                x402_version: protocol::version::Version,
                error: Some(refusal.message.clone()),
                accepts: vec![v1_requirement(route, pricing, &resource)],
            },
            reason: refusal.reason,
            settlement: refusal.settlement,
        };
        ("application/json", serde_json::to_vec(&body).unwrap_or_default())
    };
    builder = builder.header(header::CONTENT_TYPE, content_type);
    let body = if method == Method::HEAD {
        builder = builder.header(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        Body::empty()
    } else {
        Body::from(body)
    };
    builder.body(body).unwrap_or_else(|_| Response::new(Body::empty()))
}
