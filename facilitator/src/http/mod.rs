//! The facilitator's HTTP service (axum): `POST /verify`, `POST /settle`, `GET /supported`, `GET /health`,
//! `GET /ready`, `GET /metrics`, `GET /settlements/{payer}/{nonce}`, behind the API-key and rate-limit guard
//! and a request body limit.

pub mod error;
pub mod guard;
mod handlers;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::metrics::Metrics;
use crate::settle::Settler;
use guard::Guard;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub settler: Settler,
    pub metrics: Arc<Metrics>,
}

/// The router with its guard and limits.
pub fn router(state: AppState, guard: Guard, body_limit_bytes: usize) -> Router {
    Router::new()
        .route("/verify", post(handlers::verify))
        .route("/settle", post(handlers::settle))
        .route("/supported", get(handlers::supported))
        .route("/health", get(handlers::health))
        .route("/ready", get(handlers::ready))
        .route("/metrics", get(handlers::metrics))
        .route("/settlements/{payer}/{nonce}", get(handlers::settlement_status))
        .layer(DefaultBodyLimit::max(body_limit_bytes))
        .layer(axum::middleware::from_fn_with_state(Arc::new(guard), guard::guard))
        .with_state(state)
}
