//! A local server that follows Circle's Compliance Engine screening API as documented
//! (`POST /v1/w3s/compliance/screening/addresses`, `Authorization: Bearer <key>`, body
//! `{idempotencyKey, address, chain}`, answer `{data: {result, decision{ruleName, actions, screeningDate,
//! reasons[{source, sourceValue, riskScore, riskCategories, type}]}, id, address, chain, details}}`), for tests
//! and demos. Decisions are keyed on address suffixes (by default `9999` ⇒ DENIED by the sanctions rule, as
//! on Circle's testnet); a wrong or missing key is 401; it can be switched to answer 503 (a source that is
//! down). Listens on 127.0.0.1 on a free port; stops when dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

pub const SCREENING_PATH: &str = "/v1/w3s/compliance/screening/addresses";

/// One suffix rule: an address ending in `suffix` (case-insensitive) is DENIED with these.
#[derive(Debug, Clone)]
pub struct DenyRule {
    pub suffix: String,
    pub rule_name: String,
    pub risk_category: String,
    pub risk_score: String,
}

impl DenyRule {
    /// Circle testnet's magic: `9999` hits the sanctions blocklist rule.
    pub fn sanctions(suffix: &str) -> Self {
        DenyRule {
            suffix: suffix.to_ascii_lowercase(),
            rule_name: "Sanctions blocklist".into(),
            risk_category: "SANCTIONS".into(),
            risk_score: "BLOCKLIST".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CircleComplianceConfig {
    /// The key clients must send as `Bearer`.
    pub api_key: String,
    pub deny: Vec<DenyRule>,
}

impl CircleComplianceConfig {
    pub fn new(api_key: impl Into<String>) -> Self {
        CircleComplianceConfig {
            api_key: api_key.into(),
            deny: vec![DenyRule::sanctions("9999")],
        }
    }
}

struct Shared {
    config: CircleComplianceConfig,
    down: AtomicBool,
    screened: AtomicUsize,
}

/// The running server.
pub struct CircleCompliance {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl CircleCompliance {
    pub async fn start(config: CircleComplianceConfig) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            config,
            down: AtomicBool::new(false),
            screened: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route(SCREENING_PATH, post(screen))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "the local Circle compliance server stopped");
            }
        });
        Ok(CircleCompliance { addr, shared, task })
    }

    /// The base URL (`http://127.0.0.1:port`), what a client's `circle_base_url` is.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// While down, every request is answered 503.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// How many well-formed, authorised screening requests were answered.
    pub fn screened(&self) -> usize {
        self.shared.screened.load(Ordering::SeqCst)
    }
}

impl Drop for CircleCompliance {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

async fn screen(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if shared.down.load(Ordering::SeqCst) {
        return error(StatusCode::SERVICE_UNAVAILABLE, 503, "Service unavailable");
    }
    let expected = format!("Bearer {}", shared.config.api_key);
    let authorised = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !authorised {
        return error(
            StatusCode::UNAUTHORIZED,
            401,
            "Malformed key. Does it contain three parts?",
        );
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, 400, "Invalid JSON body");
    };
    let field = |name: &str| request.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(key), Some(address), Some(chain)) = (field("idempotencyKey"), field("address"), field("chain")) else {
        return error(
            StatusCode::BAD_REQUEST,
            2,
            "API parameter invalid: idempotencyKey, address and chain are required",
        );
    };
    if key.len() != 36 {
        return error(StatusCode::BAD_REQUEST, 2, "idempotencyKey must be a UUID");
    }
    let n = shared.screened.fetch_add(1, Ordering::SeqCst) + 1;
    let lower = address.to_ascii_lowercase();
    let rule = shared.config.deny.iter().find(|r| lower.ends_with(&r.suffix));
    let screening_date = "2026-01-01T00:00:00Z";
    let (result, decision) = match rule {
        Some(rule) => (
            "DENIED",
            json!({
                "ruleName": rule.rule_name,
                "actions": ["DENY"],
                "screeningDate": screening_date,
                "reasons": [{
                    "source": "ADDRESS",
                    "sourceValue": address,
                    "riskScore": rule.risk_score,
                    "riskCategories": [rule.risk_category],
                    "type": "OWNERSHIP",
                }],
            }),
        ),
        None => (
            "APPROVED",
            json!({"ruleName": "", "actions": ["APPROVE"], "screeningDate": screening_date, "reasons": []}),
        ),
    };
    Json(json!({
        "data": {
            "result": result,
            "decision": decision,
            "id": format!("00000000-0000-4000-8000-{n:012}"),
            "address": address,
            "chain": chain,
            "details": [],
        }
    }))
    .into_response()
}
