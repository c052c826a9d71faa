//! The demo API `nerdcabal dev` puts behind the paywall: a cheap JSON route (`/weather/:city`), a dearer one
//! (`/report`), and a free one (`/status`). It knows nothing about payments — that is the point.

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use serde_json::{Value, json};

pub fn router() -> Router {
    Router::new()
        .route("/weather/{city}", get(weather))
        .route("/report", get(report))
        .route("/status", get(status))
}

async fn weather(Path(city): Path<String>) -> Json<Value> {
    // Deterministic "weather" so a demo and a test see the same answer.
    let seed = city
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let conditions = ["clear", "cloudy", "rain", "wind"][(seed % 4) as usize];
    Json(json!({
        "city": city,
        "temperature_c": f64::from(seed % 350) / 10.0 - 5.0,
        "conditions": conditions,
    }))
}

async fn report() -> Json<Value> {
    Json(json!({
        "report": "Arc USDC payments, weekly",
        "sections": ["volume", "fees", "latency"],
        "summary": "Settlement under a second; fees a fraction of a cent.",
    }))
}

async fn status() -> Json<Value> {
    Json(json!({"status": "ok", "service": "nerdcabal demo API"}))
}
