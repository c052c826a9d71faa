//! How the proxy reaches a facilitator: a remote one over HTTP (reqwest, optional bearer key, a timeout per
//! call), or the facilitator engine in this process. Every way a remote facilitator can fail — down, slow,
//! an error status, HTML or any body that is not the expected JSON — is a typed [`LinkError`], so the
//! pipeline can refuse to serve rather than guess.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use facilitator::settle::Settler;
use moka::future::Cache;
use protocol::{SettleResponse, SupportedResponse, VerifyRequest, VerifyResponse};
use serde::de::DeserializeOwned;

/// Why the facilitator gave no usable answer. The payment's fate is unknown to the proxy.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    #[error("the facilitator cannot be reached: {0}")]
    Unreachable(String),
    #[error("the facilitator did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the facilitator answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the facilitator's answer is not the expected JSON: {0}")]
    Garbage(String),
}

impl LinkError {
    pub fn reason(&self) -> &'static str {
        match self {
            LinkError::Timeout(_) => "facilitator_timeout",
            LinkError::Unreachable(_) => "facilitator_unavailable",
            LinkError::Status { .. } | LinkError::Garbage(_) => "facilitator_error",
        }
    }
}

#[derive(Clone)]
pub enum FacilitatorLink {
    Remote(Arc<RemoteFacilitator>),
    Embedded(Settler),
}

pub struct RemoteFacilitator {
    http: reqwest::Client,
    base: String,
    api_key: Option<String>,
    timeout: Duration,
    supported: Cache<(), SupportedResponse>,
}

impl std::fmt::Debug for RemoteFacilitator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteFacilitator")
            .field("base", &self.base)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl FacilitatorLink {
    pub fn remote(base: &str, api_key: Option<String>, timeout: Duration) -> Result<Self, LinkError> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| LinkError::Unreachable(e.to_string()))?;
        Ok(FacilitatorLink::Remote(Arc::new(RemoteFacilitator {
            http,
            base: base.trim_end_matches('/').to_owned(),
            api_key,
            timeout,
            supported: Cache::builder().time_to_live(Duration::from_secs(60)).build(),
        })))
    }

    pub async fn verify(&self, request: &VerifyRequest) -> Result<VerifyResponse, LinkError> {
        match self {
            FacilitatorLink::Remote(remote) => remote.post("verify", request).await,
            FacilitatorLink::Embedded(settler) => Ok(settler.verifier().answer(request, now()).await),
        }
    }

    pub async fn settle(&self, request: &VerifyRequest) -> Result<SettleResponse, LinkError> {
        match self {
            FacilitatorLink::Remote(remote) => remote.post("settle", request).await,
            FacilitatorLink::Embedded(settler) => Ok(settler.settle(request, now()).await),
        }
    }

    /// The facilitator's `/supported`, cached for a minute (remote) or read from the engine (embedded).
    pub async fn supported(&self) -> Result<SupportedResponse, LinkError> {
        match self {
            FacilitatorLink::Remote(remote) => {
                let fetch = async {
                    let response = remote
                        .authorised(remote.http.get(format!("{}/supported", remote.base)))
                        .send()
                        .await;
                    remote.read(response).await
                };
                remote.supported.try_get_with((), fetch).await.map_err(|e| (*e).clone())
            }
            FacilitatorLink::Embedded(settler) => Ok(settler.supported()),
        }
    }
}

impl RemoteFacilitator {
    fn authorised(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    async fn post<T: DeserializeOwned>(&self, endpoint: &str, body: &VerifyRequest) -> Result<T, LinkError> {
        let request = self
            .authorised(self.http.post(format!("{}/{endpoint}", self.base)))
            .json(body);
        let response = tokio::time::timeout(self.timeout, request.send())
            .await
            .map_err(|_| LinkError::Timeout(self.timeout))?;
        self.read(response).await
    }

    async fn read<T: DeserializeOwned>(&self, response: reqwest::Result<reqwest::Response>) -> Result<T, LinkError> {
        let response = response.map_err(|e| {
            if e.is_timeout() {
                LinkError::Timeout(self.timeout)
            } else {
                LinkError::Unreachable(without_url(&e))
            }
        })?;
        let status = response.status();
        let body = tokio::time::timeout(self.timeout, response.bytes())
            .await
            .map_err(|_| LinkError::Timeout(self.timeout))?
            .map_err(|e| LinkError::Unreachable(without_url(&e)))?;
        if !status.is_success() {
            return Err(LinkError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| LinkError::Garbage(e.to_string()))
    }
}

/// reqwest errors carry the URL; ours has no secrets in it, but keep messages short and stable.
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "facilitator");
    }
    text
}
