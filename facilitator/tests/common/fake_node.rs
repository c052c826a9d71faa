//! A small fake JSON-RPC node in front of a real one (the devnet): every request is forwarded, except that
//! `eth_sendRawTransaction` can be answered with scripted errors (as anvil, geth or reth word them), and the
//! whole node can be made to fail (HTTP errors, garbage, silence, errors that echo the request's URL). Every
//! transaction the facilitator tries to send is recorded, decoded, and every method called, by name.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::consensus::{Transaction, TxEnvelope};
use alloy::eips::eip2718::Decodable2718;
use alloy::primitives::{B256, Bytes};
use axum::body::Bytes as Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A scripted answer to one `eth_sendRawTransaction`.
#[derive(Debug, Clone)]
pub struct Refuse {
    pub code: i64,
    pub message: String,
    /// Pass the transaction on to the real node as well (as a node that has it and says "already known").
    pub forward: bool,
}

/// How the whole node behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Forward,
    /// Every request answered with this HTTP status and a body quoting the request's URL and headers.
    HttpError(u16),
    /// Every request answered 200 with an HTML page quoting the request's URL.
    Garbage,
    /// Every request answered with a JSON-RPC error quoting the request's URL.
    EchoError,
    /// No answer for this long.
    Hang(Duration),
}

/// One transaction the facilitator tried to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub hash: B256,
    pub nonce: u64,
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: u128,
    /// The scripted refusal it met, if any.
    pub refused: Option<String>,
}

struct Inner {
    upstream: String,
    mode: Mode,
    refusals: VecDeque<Refuse>,
    sent: Vec<Sent>,
    methods: Vec<String>,
}

#[derive(Clone)]
pub struct FakeNode {
    /// `http://127.0.0.1:<port>` (any path and query are accepted).
    pub base: String,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
    server: Arc<tokio::task::JoinHandle<()>>,
}

impl FakeNode {
    pub async fn start(upstream: &str) -> FakeNode {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let node = FakeNode {
            base,
            inner: Arc::new(Mutex::new(Inner {
                upstream: upstream.to_owned(),
                mode: Mode::Forward,
                refusals: VecDeque::new(),
                sent: Vec::new(),
                methods: Vec::new(),
            })),
            http: reqwest::Client::new(),
            server: Arc::new(tokio::spawn(async {})),
        };
        let app = axum::Router::new().fallback(handle).with_state(node.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeNode {
            server: Arc::new(server),
            ..node
        }
    }

    /// The next `eth_sendRawTransaction` is refused with `code` and `message`.
    pub fn refuse_next(&self, code: i64, message: &str, forward: bool) {
        self.inner.lock().unwrap().refusals.push_back(Refuse {
            code,
            message: message.to_owned(),
            forward,
        });
    }

    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = mode;
    }

    /// Every transaction sent so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.inner.lock().unwrap().sent.clone()
    }

    /// The JSON-RPC method of every request so far, in order (each call of a batch on its own).
    pub fn methods(&self) -> Vec<String> {
        self.inner.lock().unwrap().methods.clone()
    }

    /// Stops answering altogether (connections are refused from now on).
    pub fn stop(&self) {
        self.server.abort();
    }
}

fn decode(raw: &str) -> Option<(B256, u64, u128, u128)> {
    let bytes: Bytes = raw.parse().ok()?;
    let envelope = TxEnvelope::decode_2718(&mut bytes.as_ref()).ok()?;
    Some((
        *envelope.tx_hash(),
        envelope.nonce(),
        envelope.max_fee_per_gas(),
        envelope.max_priority_fee_per_gas().unwrap_or_default(),
    ))
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Response {
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})).into_response()
}

async fn handle(State(node): State<FakeNode>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let (mode, upstream) = {
        let inner = node.inner.lock().unwrap();
        (inner.mode.clone(), inner.upstream.clone())
    };
    let quoted = format!(
        "{} authorization={:?}",
        uri,
        headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("")
    );
    match mode {
        Mode::Forward => {}
        Mode::HttpError(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            return (status, format!("gateway refused {quoted}")).into_response();
        }
        Mode::Garbage => return ([("content-type", "text/html")], format!("<html>{quoted}</html>")).into_response(),
        Mode::EchoError => {
            let id = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("id").cloned())
                .unwrap_or(Value::Null);
            return rpc_error(&id, -32000, &format!("invalid project for {quoted}"));
        }
        Mode::Hang(wait) => {
            tokio::time::sleep(wait).await;
            return StatusCode::GATEWAY_TIMEOUT.into_response();
        }
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    {
        let calls = match &request {
            Value::Array(calls) => calls.clone(),
            one => vec![one.clone()],
        };
        let mut inner = node.inner.lock().unwrap();
        for call in calls {
            inner
                .methods
                .push(call["method"].as_str().unwrap_or_default().to_owned());
        }
    }
    if request["method"] == "eth_sendRawTransaction" {
        let raw = request["params"][0].as_str().unwrap_or_default().to_owned();
        let decoded = decode(&raw);
        let refusal = {
            let mut inner = node.inner.lock().unwrap();
            let refusal = inner.refusals.pop_front();
            if let Some((hash, nonce, max_fee_per_gas, max_priority_fee_per_gas)) = decoded {
                inner.sent.push(Sent {
                    hash,
                    nonce,
                    max_fee_per_gas,
                    max_priority_fee_per_gas,
                    refused: refusal.as_ref().map(|r| r.message.clone()),
                });
            }
            refusal
        };
        if let Some(refusal) = refusal {
            if refusal.forward {
                let _ = node
                    .http
                    .post(&upstream)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
            }
            return rpc_error(&request["id"], refusal.code, &refusal.message);
        }
    }
    match node
        .http
        .post(&upstream)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let bytes = answer.bytes().await.unwrap_or_default();
            (status, [("content-type", "application/json")], bytes).into_response()
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
