//! The endpoint handlers. Bodies are read as bytes and decoded with the protocol crate's typed errors, so a
//! malformed body is a 400 with a reason, never a framework rejection or a 500; business outcomes are 200.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::header::decode_json;
use protocol::{SupportedResponse, VerifyRequest};
use serde_json::json;

use super::AppState;
use super::error::ApiError;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn read_request(body: Result<Bytes, BytesRejection>) -> Result<VerifyRequest, ApiError> {
    let body = body.map_err(|e| {
        let status = e.status();
        let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "body_too_large"
        } else {
            "unreadable_body"
        };
        ApiError::new(status, reason, e.body_text())
    })?;
    decode_json::<VerifyRequest>(&body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.reason(), e.to_string()))
}

/// A request refused before the engine saw it: counted under its reason, answered with it.
fn refused(state: &AppState, endpoint: &'static str, started: Instant, error: ApiError) -> Response {
    state
        .metrics
        .record(endpoint, error.reason, started.elapsed().as_secs_f64());
    error.into_response()
}

pub async fn verify(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let request = match read_request(body) {
        Ok(request) => request,
        Err(error) => return refused(&state, "verify", started, error),
    };
    let answer = state.settler.verifier().answer(&request, now()).await;
    let outcome = answer.invalid_reason.as_deref().unwrap_or("valid");
    state.metrics.record("verify", outcome, started.elapsed().as_secs_f64());
    Json(answer).into_response()
}

pub async fn settle(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let request = match read_request(body) {
        Ok(request) => request,
        Err(error) => return refused(&state, "settle", started, error),
    };
    let answer = state.settler.settle(&request, now()).await;
    let outcome = if answer.success {
        "success"
    } else {
        answer.error_reason.as_deref().unwrap_or("failed")
    };
    state.metrics.record("settle", outcome, started.elapsed().as_secs_f64());
    tracing::info!(payer = ?answer.payer, tx = %answer.transaction, outcome, "settle");
    Json(answer).into_response()
}

pub async fn supported(State(state): State<AppState>) -> Json<SupportedResponse> {
    Json(state.settler.supported())
}

pub async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub async fn ready(State(state): State<AppState>) -> Response {
    let mut problems = Vec::new();
    if !state.settler.verifier().ledger().ping().await {
        problems.push("database unreachable".to_owned());
    }
    for chain in state.settler.verifier().chains() {
        if let Err(e) = chain.ready().await {
            problems.push(format!("{}: {e}", chain.caip2));
        }
    }
    if problems.is_empty() {
        Json(json!({"ready": true})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "problems": problems})),
        )
            .into_response()
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

pub async fn settlement_status(
    State(state): State<AppState>,
    Path((payer, nonce)): Path<(String, String)>,
) -> Response {
    let Ok(payer) = payer.parse::<Address>() else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_payer",
            "payer must be a 20-byte hex address",
        )
        .into_response();
    };
    let Ok(nonce) = nonce.parse::<B256>() else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_nonce",
            "nonce must be 32 bytes of hex",
        )
        .into_response();
    };
    let rows = match state.settler.verifier().ledger().find(payer, nonce).await {
        Ok(rows) => rows,
        Err(e) => {
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable", e.to_string()).into_response();
        }
    };
    if rows.is_empty() {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_settlement",
            "no settlement for this payer and nonce",
        )
        .into_response();
    }
    let settlements: Vec<_> = rows
        .iter()
        .map(|row| {
            let answer = crate::settle::response_for_record(row, payer);
            json!({
                "state": row.state.as_str(),
                "network": row.key.network,
                "asset": row.key.asset.to_checksum(None),
                "payer": payer.to_checksum(None),
                "nonce": row.key.nonce,
                "payTo": row.pay_to.to_checksum(None),
                "amount": row.amount.to_string(),
                "transaction": answer.transaction,
                "errorReason": row.error_reason,
                "errorMessage": row.error_message,
                "settleResponse": answer,
            })
        })
        .collect();
    Json(json!({"settlements": settlements})).into_response()
}
