//! Keeping an RPC URL's credentials out of every answer and log line. Hosted nodes put their keys in the URL —
//! basic auth, a path segment (`/v3/<key>`) or a query parameter (`?apikey=<key>`) — and HTTP client errors
//! quote the URL they failed on. [`RpcSecrets`] lists the secret parts of one URL; [`RedactLayer`] wraps the
//! JSON-RPC transport so every error it yields (transport faults, HTTP statuses, error payloads a node echoes)
//! has them replaced by `***` before anything else can see it. The transport beneath it ([`super::transport`])
//! never logs the URL or a response body.

use std::sync::Arc;
use std::task::{Context, Poll};

use alloy::transports::{HttpError, RpcError, TransportError, TransportErrorKind, TransportFut};
use alloy_json_rpc::{ErrorPayload, RequestPacket, Response, ResponsePacket, ResponsePayload};
use tower::{Layer, Service};

/// What replaces a secret.
const MASK: &str = "***";

/// The secret parts of one RPC URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RpcSecrets {
    /// Longest first, so a secret that contains another is masked whole.
    fragments: Vec<String>,
}

impl RpcSecrets {
    /// Everything in `url` that may be a credential: the user name and password, every path segment and the
    /// whole path, the query string and each query value. The scheme, host and port stay readable.
    pub fn of(url: &str) -> Self {
        let mut fragments = Vec::new();
        let mut add = |text: &str| {
            let text = text.trim();
            // One- and two-character pieces (`/`, `v3`) carry no secret and would mask half of every message.
            if text.len() > 2 {
                fragments.push(text.to_owned());
                if let Ok(decoded) = percent_decode(text)
                    && decoded != text
                {
                    fragments.push(decoded);
                }
            }
        };
        if let Ok(parsed) = url::Url::parse(url) {
            add(parsed.username());
            if let Some(password) = parsed.password() {
                add(password);
                // The Authorization header the client sends, should a node echo it.
                use base64::Engine;
                let basic = format!("{}:{}", parsed.username(), password);
                add(&base64::engine::general_purpose::STANDARD.encode(basic));
            }
            let path = parsed.path();
            if path != "/" {
                add(path);
                for segment in path.split('/') {
                    add(segment);
                }
            }
            if let Some(query) = parsed.query() {
                add(query);
                for pair in query.split('&') {
                    let value = pair.split_once('=').map_or(pair, |(_, value)| value);
                    add(value);
                }
            }
            if let Some(fragment) = parsed.fragment() {
                add(fragment);
            }
        } else {
            // Not a URL at all: the whole text is treated as secret.
            add(url);
        }
        fragments.sort_by_key(|f| std::cmp::Reverse(f.len()));
        fragments.dedup();
        RpcSecrets { fragments }
    }

    /// Whether the URL holds anything secret.
    pub fn is_empty(&self) -> bool {
        self.fragments.is_empty()
    }

    /// `text` with every secret masked.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for fragment in &self.fragments {
            if out.contains(fragment.as_str()) {
                out = out.replace(fragment.as_str(), MASK);
            }
        }
        out
    }

    fn contains_secret(&self, text: &str) -> bool {
        self.fragments.iter().any(|f| text.contains(f.as_str()))
    }

    /// An error with its text redacted; an error that holds no secret is passed on unchanged, so its kind (and
    /// the retry policy's reading of it) is kept.
    fn redact_error(&self, error: TransportError) -> TransportError {
        match error {
            RpcError::ErrorResp(payload) => RpcError::ErrorResp(self.redact_payload(payload)),
            // Keep the kind (the retry policy reads the status), mask the body.
            RpcError::Transport(TransportErrorKind::HttpError(http)) => {
                RpcError::Transport(TransportErrorKind::HttpError(HttpError {
                    status: http.status,
                    body: self.redact(&http.body),
                }))
            }
            RpcError::Transport(TransportErrorKind::HttpErrorWithRetryAfter { error, retry_after }) => {
                RpcError::Transport(TransportErrorKind::HttpErrorWithRetryAfter {
                    error: HttpError {
                        status: error.status,
                        body: self.redact(&error.body),
                    },
                    retry_after,
                })
            }
            other => {
                let text = other.to_string();
                if self.contains_secret(&text) {
                    TransportErrorKind::custom_str(&self.redact(&text))
                } else {
                    other
                }
            }
        }
    }

    fn redact_payload(&self, payload: ErrorPayload) -> ErrorPayload {
        let message_secret = self.contains_secret(&payload.message);
        let data_secret = payload.data.as_ref().is_some_and(|d| self.contains_secret(d.get()));
        if !message_secret && !data_secret {
            return payload;
        }
        let data = payload.data.map(|d| {
            let text = self.redact(d.get());
            serde_json::value::RawValue::from_string(text)
                .or_else(|_| serde_json::value::RawValue::from_string(format!("\"{MASK}\"")))
                .unwrap_or(d)
        });
        ErrorPayload {
            code: payload.code,
            message: self.redact(&payload.message).into(),
            data,
        }
    }

    fn redact_response(&self, packet: ResponsePacket) -> ResponsePacket {
        let fix = |mut response: Response| {
            if let ResponsePayload::Failure(payload) = response.payload {
                response.payload = ResponsePayload::Failure(self.redact_payload(payload));
            }
            response
        };
        match packet {
            ResponsePacket::Single(response) => ResponsePacket::Single(fix(response)),
            ResponsePacket::Batch(responses) => ResponsePacket::Batch(responses.into_iter().map(fix).collect()),
        }
    }
}

fn percent_decode(text: &str) -> Result<String, ()> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

/// The transport layer that redacts errors (put it right on the HTTP transport, beneath the retry layer, so
/// the errors the retry layer logs and re-wraps are redacted already).
#[derive(Debug, Clone)]
pub struct RedactLayer {
    secrets: Arc<RpcSecrets>,
}

impl RedactLayer {
    pub fn new(secrets: Arc<RpcSecrets>) -> Self {
        RedactLayer { secrets }
    }
}

impl<S> Layer<S> for RedactLayer {
    type Service = RedactService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RedactService {
            inner,
            secrets: self.secrets.clone(),
        }
    }
}

/// See [`RedactLayer`].
#[derive(Debug, Clone)]
pub struct RedactService<S> {
    inner: S,
    secrets: Arc<RpcSecrets>,
}

impl<S> Service<RequestPacket> for RedactService<S>
where
    S: Service<RequestPacket, Response = ResponsePacket, Error = TransportError, Future = TransportFut<'static>>
        + Send
        + 'static,
{
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(|e| self.secrets.redact_error(e))
    }

    fn call(&mut self, request: RequestPacket) -> Self::Future {
        let secrets = self.secrets.clone();
        let call = self.inner.call(request);
        Box::pin(async move {
            match call.await {
                Ok(packet) => Ok(secrets.redact_response(packet)),
                Err(error) => Err(secrets.redact_error(error)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_credential_of_a_url_is_masked() {
        let secrets = RpcSecrets::of("https://alice:pw-123@rpc.example.com/v3/KEY0123456789?apikey=QKEY987&x=1");
        let text =
            "error sending request for url (https://alice:pw-123@rpc.example.com/v3/KEY0123456789?apikey=QKEY987&x=1)";
        let shown = secrets.redact(text);
        for secret in ["alice", "pw-123", "KEY0123456789", "QKEY987"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        // "Basic " + base64("alice:pw-123"), as an echoed Authorization header would show it.
        assert_eq!(secrets.redact("Basic YWxpY2U6cHctMTIz"), "Basic ***");
        assert!(shown.contains("rpc.example.com"), "the host stays readable: {shown}");
        assert_eq!(secrets.redact("nonce too low"), "nonce too low");
    }

    #[test]
    fn a_plain_url_has_nothing_to_hide() {
        assert!(RpcSecrets::of("http://127.0.0.1:8545").is_empty());
        assert!(RpcSecrets::of("http://127.0.0.1:8545/").is_empty());
    }

    #[test]
    fn percent_encoded_secrets_are_masked_in_both_forms() {
        let secrets = RpcSecrets::of("https://h/k%2Fey?token=a%20b%20c");
        assert_eq!(secrets.redact("a b c and k/ey and a%20b%20c"), "*** and *** and ***");
    }
}
