//! The request guard (one axum middleware): API keys (`Authorization: Bearer`) where configured — always on
//! `/settle`, on `/verify` when asked, compared in constant time — and rate limits per client IP and per API key (governor), answering
//! 401 or 429 with `Retry-After`.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::ApiError;

/// Keys and limits.
pub struct Guard {
    api_keys: Vec<String>,
    require_key_for_verify: bool,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_key: DefaultKeyedRateLimiter<String>,
}

impl Guard {
    pub fn new(
        api_keys: Vec<String>,
        require_key_for_verify: bool,
        per_ip_per_second: u32,
        per_key_per_second: u32,
    ) -> Self {
        let quota = |n: u32| Quota::per_second(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        Guard {
            api_keys,
            require_key_for_verify,
            per_ip: RateLimiter::keyed(quota(per_ip_per_second)),
            per_key: RateLimiter::keyed(quota(per_key_per_second)),
        }
    }

    fn key_required(&self, path: &str) -> bool {
        !self.api_keys.is_empty() && (path == "/settle" || (path == "/verify" && self.require_key_for_verify))
    }

    /// Whether `presented` is one of the keys. Each comparison is constant-time in the key's contents
    /// (`subtle`), and every key is compared, so the answer's timing does not say which key nearly matched.
    fn known_key(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        let mut known = subtle::Choice::from(0u8);
        for key in &self.api_keys {
            known |= key.as_bytes().ct_eq(presented.as_bytes());
        }
        bool::from(known)
    }
}

fn too_many(not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>, what: &str) -> Response {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests from this {what}"),
    );
    error.retry_after_secs = Some(wait.as_secs_f64().ceil() as u64);
    error.into_response()
}

pub async fn guard(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == "/health" || path == "/ready" || path == "/metrics" {
        return next.run(request).await;
    }
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    if let Err(not_until) = guard.per_ip.check_key(&ip) {
        return too_many(not_until, "address");
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty());
    if guard.key_required(path) {
        match presented {
            Some(key) if guard.known_key(key) => {
                if let Err(not_until) = guard.per_key.check_key(&key.to_owned()) {
                    return too_many(not_until, "API key");
                }
            }
            Some(_) => {
                return ApiError::new(StatusCode::UNAUTHORIZED, "invalid_api_key", "unknown API key").into_response();
            }
            None => {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_api_key",
                    "this endpoint needs Authorization: Bearer <API key>",
                )
                .into_response();
            }
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_keys_are_known() {
        let guard = Guard::new(vec!["alpha-key".into(), "beta-key".into()], false, 10, 10);
        assert!(guard.known_key("alpha-key"));
        assert!(guard.known_key("beta-key"));
        for wrong in ["", "alpha", "alpha-key ", "alpha-kez", "beta-key-and-more"] {
            assert!(!guard.known_key(wrong), "{wrong:?}");
        }
        assert!(!Guard::new(Vec::new(), false, 10, 10).known_key("anything"));
    }
}
