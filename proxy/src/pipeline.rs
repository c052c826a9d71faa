//! The front of every request, in order: per-address limit; body limit; the canonical request target (an
//! ambiguous path or authority is refused with 400 before anything is matched); the route; free routes and
//! unmatched pass-through forward exactly the canonical path; CORS preflights; then a priced route goes to
//! [`crate::paid_request`]: an access token, else a 402 offer, else the payment's durable lifecycle.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::json;
use tracing::Instrument;

use crate::canonical_path;
use crate::error_response::{json_error, too_many};
use crate::offer::EXPOSE_HEADERS;
use crate::paid_request;
use crate::route_table::join;
use crate::service::ProxyState;
use crate::upstream::UpstreamError;

/// The machine-readable refusal of a path or authority that could mean two things.
pub const AMBIGUOUS_PATH: &str = "ambiguous_path";
pub const AMBIGUOUS_AUTHORITY: &str = "ambiguous_authority";

/// The one handler behind every path.
pub async fn handle(
    State(state): State<Arc<ProxyState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let ip = crate::client_ip::client_ip(client, request.headers(), &state.trusted_proxies);
    if let Err(wait) = state.limits.check_ip(ip) {
        return too_many(wait, "address");
    }
    if let Some(refused) = body_over_limit(&state, &request) {
        return refused;
    }
    let target = match CanonicalTarget::of(&request, state.merge_slashes) {
        Ok(target) => target,
        Err((reason, problem)) => return ambiguous(reason, &problem),
    };
    let routes = state.routes();
    // A CORS preflight is matched as the request it announces.
    let preflight_for = (request.method() == Method::OPTIONS)
        .then(|| request.headers().get(header::ACCESS_CONTROL_REQUEST_METHOD))
        .flatten()
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok());
    let method = preflight_for.as_ref().unwrap_or(request.method());
    let query = request.uri().query();
    let Some(matched) = routes
        .table
        .find(target.authority.as_deref(), method, &target.path, query)
    else {
        return match &routes.table.unmatched_upstream {
            Some(base) => {
                let url = join(base, &target.path, query);
                forward_or_error(&state, request, url, client, false).await
            }
            None => json_error(StatusCode::NOT_FOUND, "no_route", "no route matches this request"),
        };
    };
    if let Err(wait) = routes.limits.check(matched.index, ip) {
        return too_many(wait, "address on this route");
    }
    let route = matched.route;
    let Some(pricing) = &route.pricing else {
        let response = forward_or_error(&state, request, matched.upstream_url, client, false).await;
        state
            .metrics
            .record(&route.name, "free", started.elapsed().as_secs_f64());
        return response;
    };
    if preflight_for.is_some() {
        return preflight();
    }
    // One span per paid request: route, payer, amount and outcome (the payer once the payment is read).
    let span = tracing::info_span!(
        "paid_request",
        route = %route.name,
        amount = %pricing.requirement.amount,
        payer = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let name = route.name.clone();
    let (outcome, response) = paid_request::serve(&state, route, pricing, request, matched.upstream_url, client)
        .instrument(span.clone())
        .await;
    span.record("outcome", outcome);
    state.metrics.record(&name, outcome, started.elapsed().as_secs_f64());
    response
}

/// The path routes are matched on and the upstream receives, and the authority host routes match.
struct CanonicalTarget {
    path: String,
    authority: Option<String>,
}

impl CanonicalTarget {
    /// The canonical target, or the refusal's reason and what was ambiguous.
    fn of(request: &Request, merge_slashes: bool) -> Result<Self, (&'static str, String)> {
        let path = canonical_path::canonicalize(request.uri().path(), merge_slashes)
            .map_err(|e| (AMBIGUOUS_PATH, e.to_string()))?;
        let authority = canonical_path::request_authority(request.uri(), request.headers())
            .map_err(|e| (AMBIGUOUS_AUTHORITY, e.to_string()))?;
        Ok(CanonicalTarget { path, authority })
    }
}

/// `400 {"error": "<reason>", "reason": "<reason>", "message": …}`: the reason is the error, as documented.
fn ambiguous(reason: &str, problem: &dyn std::fmt::Display) -> Response {
    let body = json!({"error": reason, "reason": reason, "message": problem.to_string()});
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn body_over_limit(state: &ProxyState, request: &Request) -> Option<Response> {
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())?;
    (length > state.body_limit).then(|| {
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is over {} bytes", state.body_limit),
        )
    })
}

fn preflight() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("PAYMENT-SIGNATURE, X-PAYMENT, Content-Type, Authorization"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

async fn forward_or_error(
    state: &ProxyState,
    request: Request,
    url: String,
    client: SocketAddr,
    strip_authorization: bool,
) -> Response {
    state
        .upstream
        .forward(request, url, client, strip_authorization)
        .await
        .unwrap_or_else(|e| upstream_fault(&e))
}

pub fn upstream_fault(error: &UpstreamError) -> Response {
    match error {
        UpstreamError::Timeout(_) => json_error(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", error),
        UpstreamError::BodyTooLarge(_) => json_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", error),
        UpstreamError::Unreachable(_) => json_error(StatusCode::BAD_GATEWAY, "upstream_unavailable", error),
    }
}
