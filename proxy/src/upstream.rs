//! Forwarding one request to the upstream API: the body streams through in both directions, hop-by-hop
//! headers (and the payment header, the access-token header and its cookie, which are ours) are stripped, `X-Forwarded-For`,
//! `-Proto` and `-Host` are set, and the upstream's status and headers come back as they were. Transport
//! failures are typed so the caller can answer 502 or 504 and settle nothing.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower_http::timeout::TimeoutBody;

/// Why the upstream gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the upstream did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the upstream cannot be reached: {0}")]
    Unreachable(String),
    #[error("the request body is over {0} bytes")]
    BodyTooLarge(usize),
}

/// Plain-HTTP upstreams go through hyper's pooled client with the bodies passed straight through (no
/// re-framing, no copies); HTTPS upstreams through reqwest (rustls).
#[derive(Clone)]
pub struct Upstream {
    plain: Client<HttpConnector, Body>,
    tls: reqwest::Client,
    timeout: Duration,
    read_timeout: Duration,
    body_limit: usize,
}

/// Headers that belong to one connection (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers the proxy consumes and the upstream must not see.
const PAYMENT_HEADERS: [&str; 2] = [protocol::header::PAYMENT_SIGNATURE, protocol::header::X_PAYMENT];

impl Upstream {
    pub fn new(timeout: Duration, read_timeout: Duration, body_limit: usize) -> Result<Self, UpstreamError> {
        let tls = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .read_timeout(read_timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(64)
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout.min(Duration::from_secs(10))));
        // Idle upstream connections kept per host: enough for steady keep-alive load, not every connection a
        // burst opened (each holds its buffers); idle ones close after 30 s.
        let plain = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Upstream {
            plain,
            tls,
            timeout,
            read_timeout,
            body_limit,
        })
    }

    /// Sends `request` to the absolute URL `target`. `strip_authorization` drops an `Authorization` header that
    /// carried our access token.
    pub async fn forward(
        &self,
        request: Request<Body>,
        target: String,
        client: SocketAddr,
        strip_authorization: bool,
    ) -> Result<Response<Body>, UpstreamError> {
        let (parts, body) = request.into_parts();
        let mut headers = parts.headers;
        let original_host = headers.get(header::HOST).cloned();
        let has_body = headers.contains_key(header::TRANSFER_ENCODING)
            || headers
                .get(header::CONTENT_LENGTH)
                .is_some_and(|length| length.as_bytes() != b"0");
        strip_hop_by_hop(&mut headers);
        for name in PAYMENT_HEADERS {
            headers.remove(name);
        }
        if strip_authorization {
            headers.remove(header::AUTHORIZATION);
        }
        crate::access_token::strip_token_cookies(&mut headers);
        headers.remove(header::HOST);
        set_forwarded(&mut headers, client, original_host);
        let body = if has_body {
            Body::new(http_body_util::Limited::new(body, self.body_limit))
        } else {
            Body::empty()
        };
        if target.starts_with("http://") {
            self.forward_plain(parts.method, target, headers, body).await
        } else {
            self.forward_tls(parts.method, target, headers, body, has_body).await
        }
    }

    async fn forward_plain(
        &self,
        method: Method,
        target: String,
        headers: HeaderMap,
        body: Body,
    ) -> Result<Response<Body>, UpstreamError> {
        let uri = Uri::try_from(target).map_err(|e| UpstreamError::Unreachable(format!("upstream URL: {e}")))?;
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let response = tokio::time::timeout(self.timeout, self.plain.request(request))
            .await
            .map_err(|_| UpstreamError::Timeout(self.timeout))?
            .map_err(|e| {
                if source_is::<http_body_util::LengthLimitError>(&e) {
                    UpstreamError::BodyTooLarge(self.body_limit)
                } else {
                    UpstreamError::Unreachable(e.to_string())
                }
            })?;
        // The longest pause while the body streams, as reqwest's read timeout does on the TLS path.
        let read_timeout = self.read_timeout;
        let mut response = response.map(|incoming| Body::new(TimeoutBody::new(read_timeout, incoming)));
        strip_hop_by_hop(response.headers_mut());
        Ok(response)
    }

    async fn forward_tls(
        &self,
        method: Method,
        target: String,
        headers: HeaderMap,
        body: Body,
        has_body: bool,
    ) -> Result<Response<Body>, UpstreamError> {
        let mut builder = self.tls.request(method, target).headers(headers);
        if has_body {
            builder = builder.body(reqwest::Body::wrap_stream(body.into_data_stream()));
        }
        let response = tokio::time::timeout(self.timeout, builder.send())
            .await
            .map_err(|_| UpstreamError::Timeout(self.timeout))?
            .map_err(|e| {
                if e.is_timeout() {
                    UpstreamError::Timeout(self.timeout)
                } else if source_is::<http_body_util::LengthLimitError>(&e) {
                    UpstreamError::BodyTooLarge(self.body_limit)
                } else {
                    UpstreamError::Unreachable(e.to_string())
                }
            })?;
        let mut out = Response::builder().status(response.status());
        if let Some(out_headers) = out.headers_mut() {
            *out_headers = response.headers().clone();
            strip_hop_by_hop(out_headers);
        }
        out.body(Body::from_stream(response.bytes_stream()))
            .map_err(|e| UpstreamError::Unreachable(e.to_string()))
    }
}

/// Whether `E` is somewhere in the error's source chain (e.g. the request body hit its length limit).
fn source_is<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.is::<E>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named by `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

fn set_forwarded(headers: &mut HeaderMap, client: SocketAddr, host: Option<HeaderValue>) {
    let ip = client.ip().to_string();
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {ip}"),
        None => ip,
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        headers.insert("x-forwarded-for", value);
    }
    if !headers.contains_key("x-forwarded-proto") {
        headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    }
    if let Some(host) = host {
        headers.insert("x-forwarded-host", host);
    }
}
