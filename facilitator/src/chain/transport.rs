//! The JSON-RPC transport over HTTP (reqwest), in place of alloy's own: alloy's opens a tracing span carrying
//! the full RPC URL around every request, so every debug line beneath it (reqwest's, hyper's) would print the
//! URL's credentials. This one's span names the network only, and it never logs response bodies. Errors are
//! shaped exactly as alloy's (the retry policy reads them); [`super::redact`] masks their text.

use std::task::{Context, Poll};
use std::time::Duration;

use alloy::transports::http::reqwest;
use alloy::transports::{TransportError, TransportErrorKind, TransportFut};
use alloy_json_rpc::{RequestPacket, ResponsePacket};
use tower::Service;
use tracing::Instrument;

/// POSTs JSON-RPC packets to one URL.
#[derive(Clone)]
pub struct RpcHttp {
    client: reqwest::Client,
    url: url::Url,
    /// What the span shows instead of the URL.
    network: std::sync::Arc<str>,
}

impl std::fmt::Debug for RpcHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcHttp")
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl RpcHttp {
    pub fn new(client: reqwest::Client, url: url::Url, network: &str) -> Self {
        RpcHttp {
            client,
            url,
            network: network.into(),
        }
    }

    /// Whether the node is on this machine (alloy polls local nodes more often).
    pub fn is_local(&self) -> bool {
        alloy::transports::utils::guess_local_url(self.url.as_str())
    }

    async fn send(self, request: RequestPacket) -> Result<ResponsePacket, TransportError> {
        let response = self
            .client
            .post(self.url)
            .json(&request)
            .headers(request.headers())
            .send()
            .await
            .map_err(TransportErrorKind::custom)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok())
            .map(Duration::from_secs);
        tracing::debug!(%status, "JSON-RPC answer");
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) if !status.is_success() => {
                return Err(TransportErrorKind::http_error_with_retry_after(
                    status.as_u16(),
                    format!("<failed to read response body: {e}>"),
                    retry_after,
                ));
            }
            Err(e) => return Err(TransportErrorKind::custom(e)),
        };
        if !status.is_success() {
            // A JSON-RPC error answer under an error status is still the node's answer.
            if let Ok(packet) = serde_json::from_slice::<ResponsePacket>(&body)
                && packet.is_error()
            {
                return Ok(packet);
            }
            return Err(TransportErrorKind::http_error_with_retry_after(
                status.as_u16(),
                String::from_utf8_lossy(&body).into_owned(),
                retry_after,
            ));
        }
        serde_json::from_slice(&body).map_err(|e| TransportError::deser_err(e, String::from_utf8_lossy(&body)))
    }
}

impl Service<RequestPacket> for RpcHttp {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: RequestPacket) -> Self::Future {
        let span = tracing::debug_span!("rpc", network = %self.network);
        Box::pin(self.clone().send(request).instrument(span))
    }
}
