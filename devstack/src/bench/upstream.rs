//! The upstream every proxy series sits in front of: a small fixed JSON answer, as an API would give, served by
//! this (load-core) process.

use super::BenchError;

const ANSWER: &str = r#"{"city":"Paris","temperature_c":21.5,"conditions":"clear"}"#;

/// Serves the upstream on a loopback port; returns `host:port`.
pub async fn start() -> Result<String, BenchError> {
    let app =
        axum::Router::new().fallback(|| async { ([(axum::http::header::CONTENT_TYPE, "application/json")], ANSWER) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(super::setup)?;
    let address = listener.local_addr().map_err(super::setup)?.to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(address)
}
