//! `--rpc-latency MS`: a JSON-RPC relay in front of anvil that holds every call for the given time before passing
//! it on, so the benchmark shows what a remote node (Arc's RPC is tens of milliseconds away) does to us.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;

use super::BenchError;

#[derive(Clone)]
struct Relay {
    http: reqwest::Client,
    node: String,
    latency: Duration,
}

async fn forward(State(relay): State<Relay>, body: Bytes) -> impl IntoResponse {
    tokio::time::sleep(relay.latency).await;
    let answer = relay
        .http
        .post(&relay.node)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    match answer {
        Ok(response) => match response.bytes().await {
            Ok(bytes) => (StatusCode::OK, headers, bytes),
            Err(_) => (StatusCode::BAD_GATEWAY, headers, Bytes::new()),
        },
        Err(_) => (StatusCode::BAD_GATEWAY, headers, Bytes::new()),
    }
}

/// Serves the relay on a loopback port of this (load-core) process; returns its URL.
pub async fn start(node: &str, latency: Duration) -> Result<String, BenchError> {
    let relay = Relay {
        http: reqwest::Client::builder().build().map_err(super::setup)?,
        node: node.to_owned(),
        latency,
    };
    let app = axum::Router::new().fallback(forward).with_state(relay);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(super::setup)?;
    let url = format!("http://{}", listener.local_addr().map_err(super::setup)?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
