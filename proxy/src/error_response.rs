//! Every answer the proxy makes itself (other than a 402 offer): a JSON body `{error, reason}` with a
//! machine-readable reason, `Cache-Control: no-store`, and `Retry-After` where waiting helps.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::json;

pub fn json_error(status: StatusCode, reason: &str, message: impl std::fmt::Display) -> Response {
    let body = json!({"error": message.to_string(), "reason": reason});
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// 429 with `Retry-After` in whole seconds (at least 1).
pub fn too_many(wait: Duration, what: &str) -> Response {
    let mut response = json_error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests from this {what}"),
    );
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}
