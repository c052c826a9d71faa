//! The `402 Payment Required` answer: the v2 offer in the `PAYMENT-REQUIRED` header and, for body-only and v1
//! clients, a v1 JSON body (`x402Version`, `error`, `accepts` with `maxAmountRequired` and `resource`) plus
//! our machine-readable `reason`; `Cache-Control: no-store` and CORS headers that expose the payment headers.
//! Browsers get the HTML paywall page instead of the JSON body. A route's plain refusals (no settlement to
//! report) are built once per resource URL and reason and kept in the route's [`OfferCache`].

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use protocol::wire::{ResourceInfo, v1, v2};
use protocol::{SettleResponse, header as codec};
use serde::Serialize;

use crate::paywall_page;
use crate::route_table::{Pricing, Route};

pub const EXPOSE_HEADERS: &str =
    "PAYMENT-REQUIRED, PAYMENT-RESPONSE, X-PAYMENT-RESPONSE, X-Access-Token, Payment-Settlement";

/// A built 402 (its `PAYMENT-REQUIRED` value and JSON body) with what it was built for.
struct Built402 {
    resource: String,
    reason: String,
    message: String,
    header: HeaderValue,
    body: Bytes,
}

/// A route's built 402 answers, bounded (a path with captures has a resource URL per value).
#[derive(Clone)]
pub struct OfferCache(moka::sync::Cache<u64, Arc<Built402>>);

impl Default for OfferCache {
    fn default() -> Self {
        OfferCache(moka::sync::Cache::new(4_096))
    }
}

impl std::fmt::Debug for OfferCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OfferCache({} entries)", self.0.entry_count())
    }
}

fn offer_key(resource: &str, reason: &str, message: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (resource, reason, message).hash(&mut hasher);
    hasher.finish()
}

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
    if refusal.settlement.is_none() && !is_browser(headers) {
        return plain_402(route, pricing, method, resource, &refusal);
    }
    let offer = payment_required(route, pricing, &resource, &refusal.message);
    let mut builder = base_402(Response::builder().header(codec::PAYMENT_REQUIRED, codec::encode(&offer)));
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
        ("application/json", json_body(route, pricing, &resource, &refusal))
    };
    builder = builder.header(header::CONTENT_TYPE, content_type);
    finish(builder, method, Bytes::from(body))
}

/// A refusal with no settlement to report, for a program: built once per resource URL and reason, then served
/// from the route's cache.
fn plain_402(route: &Route, pricing: &Pricing, method: &Method, resource: String, refusal: &Refusal<'_>) -> Response {
    let key = offer_key(&resource, refusal.reason, &refusal.message);
    let built = pricing
        .offers
        .0
        .get(&key)
        .filter(|b| b.resource == resource && b.reason == refusal.reason && b.message == refusal.message);
    let built = match built {
        Some(built) => built,
        None => {
            let offer = payment_required(route, pricing, &resource, &refusal.message);
            let Ok(header) = HeaderValue::from_str(&codec::encode(&offer)) else {
                return Response::new(Body::empty());
            };
            let body = json_body(route, pricing, &resource, refusal);
            let built = Arc::new(Built402 {
                resource,
                reason: refusal.reason.to_owned(),
                message: refusal.message.clone(),
                header,
                body: Bytes::from(body),
            });
            pricing.offers.0.insert(key, built.clone());
            built
        }
    };
    let builder = base_402(Response::builder().header(codec::PAYMENT_REQUIRED, built.header.clone()))
        .header(header::CONTENT_TYPE, "application/json");
    finish(builder, method, built.body.clone())
}

/// Status and the headers every 402 carries.
fn base_402(builder: axum::http::response::Builder) -> axum::http::response::Builder {
    builder
        .status(StatusCode::PAYMENT_REQUIRED)
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS)
}

/// The v1 JSON body with our reason (and a failed settlement, when there is one).
fn json_body(route: &Route, pricing: &Pricing, resource: &str, refusal: &Refusal<'_>) -> Vec<u8> {
    let body = Body402 {
        offer: v1::PaymentRequired {
            x402_version: protocol::version::Version,
            error: Some(refusal.message.clone()),
            accepts: vec![v1_requirement(route, pricing, resource)],
        },
        reason: refusal.reason,
        settlement: refusal.settlement,
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The body (none for HEAD, with its length said).
fn finish(mut builder: axum::http::response::Builder, method: &Method, body: Bytes) -> Response {
    let body = if method == Method::HEAD {
        builder = builder.header(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        Body::empty()
    } else {
        Body::from(body)
    };
    builder.body(body).unwrap_or_else(|_| Response::new(Body::empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProxyConfig;
    use crate::route_table::RouteTable;

    fn route_table() -> std::sync::Arc<RouteTable> {
        let text = "[facilitator]\nembedded = true\n[defaults]\nnetwork = \"eip155:5042002\"\n\
                    pay_to = \"0x1111111111111111111111111111111111111111\"\n\
                    [[route]]\npath = \"/w/:city\"\nupstream = \"http://u\"\nprice = \"$0.01\"\n";
        let config = ProxyConfig::from_toml(text, |_| None).unwrap();
        RouteTable::build(&config, &protocol::Networks::builtin()).unwrap()
    }

    async fn answer(table: &RouteTable, path: &str, reason: &str) -> (HeaderMap, Bytes) {
        let route = &table.routes()[0];
        let pricing = route.pricing.as_ref().unwrap();
        let uri: Uri = path.parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("api.example"));
        let response = respond_402(
            route,
            pricing,
            &Method::GET,
            &headers,
            &uri,
            Refusal::new(reason, "pay first"),
        );
        assert_eq!(response.status(), StatusCode::PAYMENT_REQUIRED);
        let headers = response.headers().clone();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        (headers, body)
    }

    #[tokio::test]
    async fn a_plain_refusal_is_built_once_per_resource_and_reason() {
        let table = route_table();
        let cache = &table.routes()[0].pricing.as_ref().unwrap().offers;
        let first = answer(&table, "/w/paris", "payment_required").await;
        let again = answer(&table, "/w/paris", "payment_required").await;
        assert_eq!(first, again, "the cached answer is the built one");
        cache.0.run_pending_tasks();
        assert_eq!(cache.0.entry_count(), 1);
        let (headers, body) = answer(&table, "/w/rome", "payment_required").await;
        let offer = codec::decode_payment_required_v2(headers[codec::PAYMENT_REQUIRED].as_bytes()).unwrap();
        assert_eq!(
            offer.resource.url, "http://api.example/w/rome",
            "each resource gets its own offer"
        );
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["reason"], "payment_required");
        let (_, other) = answer(&table, "/w/rome", "invalid_payment_header").await;
        let json: serde_json::Value = serde_json::from_slice(&other).unwrap();
        assert_eq!(
            json["reason"], "invalid_payment_header",
            "the reason is part of the key"
        );
        cache.0.run_pending_tasks();
        assert_eq!(cache.0.entry_count(), 3);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    }
}
