//! `nerdcabal pay <URL>`: one paid HTTP call from the command line. The body goes to stdout and the receipt to
//! stderr (or one JSON object with `--json`); each kind of failure has its own exit code so scripts can tell
//! an over-budget refusal from a network error (or a compliance refusal, 8). The payee and the buyer are
//! screened (`[compliance]`) before anything is signed.

use std::io::Write;
use std::time::Duration;

use alloy::primitives::U256;
use reqwest::Method;
use serde_json::json;

use crate::buyer::buyer_config::{BuyerConfig, BuyerFlags};
use crate::buyer::spend_ledger::SpendLedger;
use crate::buyer::x402_client::{CallOutcome, CallRequest, PayError, X402Client, parse_header};
use crate::compliance::payment_check::PaymentScreen;

/// Exit codes.
pub mod exit {
    pub const OK: i32 = 0;
    /// Configuration or usage error.
    pub const CONFIG: i32 = 2;
    pub const OVER_BUDGET: i32 = 3;
    /// The server refused the payment, or its settlement failed.
    pub const REFUSED: i32 = 4;
    pub const UNPAYABLE: i32 = 5;
    pub const NETWORK: i32 = 6;
    /// The API answered an HTTP error (nothing was charged).
    pub const HTTP_ERROR: i32 = 7;
    /// A compliance screen refused the counterparty (`compliance_blocked`) or could not screen it
    /// (`compliance_unavailable`); nothing was signed.
    pub const COMPLIANCE: i32 = 8;
}

#[derive(Debug, Clone, Default)]
pub struct PayOptions {
    pub url: String,
    pub method: Option<String>,
    pub data: Option<String>,
    pub headers: Vec<String>,
    /// Most this one call may cost (`$0.05`).
    pub max: Option<String>,
    pub json: bool,
    /// The approved treasury proposal this payment is made under (`--proposal`).
    pub proposal: Option<u64>,
    pub timeout: Duration,
    pub buyer: BuyerFlags,
}

/// The exit code of a failure.
pub fn exit_code(error: &PayError) -> i32 {
    match error {
        PayError::OverBudget { .. } => exit::OVER_BUDGET,
        PayError::Refused { .. } | PayError::SettlementFailed { .. } => exit::REFUSED,
        PayError::Unpayable { .. } => exit::UNPAYABLE,
        PayError::Network(_) => exit::NETWORK,
        PayError::Signer(_) | PayError::Ledger(_) => exit::CONFIG,
        PayError::ApprovalRequired { .. } | PayError::ApprovalDenied(_) => exit::OVER_BUDGET,
        // The treasury policy (off chain or the Treasury contract's): a refusal is over budget, a proposal
        // waiting for owners as approval_required.
        PayError::PolicyDenied { .. } | PayError::NeedsApproval { .. } => exit::OVER_BUDGET,
        // Only the MCP tools fetch under a fetch policy; were `pay` to, a refused URL cannot be paid.
        PayError::FetchRefused { .. } => exit::UNPAYABLE,
        PayError::ComplianceBlocked { .. } | PayError::ComplianceUnavailable { .. } => exit::COMPLIANCE,
    }
}

/// Runs the command; returns the exit code. Output goes to the given writers.
pub async fn run(options: PayOptions, stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    let prepared = match prepare(&options).await {
        Ok(prepared) => prepared,
        Err(message) => {
            let _ = writeln!(stderr, "error: {message}");
            return exit::CONFIG;
        }
    };
    let (client, request) = prepared;
    let result = client
        .call_approved(&request, &crate::buyer::x402_client::NoGate, options.proposal)
        .await;
    if options.json {
        let (code, document) = match &result {
            Ok(outcome) => (status_code(outcome), outcome_json(outcome)),
            Err(e) => (exit_code(e), e.to_json()),
        };
        let _ = writeln!(stdout, "{document}");
        return code;
    }
    match result {
        Ok(outcome) => {
            let _ = stdout.write_all(&outcome.body);
            if outcome.truncated {
                let _ = writeln!(
                    stderr,
                    "warning: the answer was cut after {} bytes ([fetch] max_response_bytes)",
                    outcome.body.len()
                );
            }
            match &outcome.receipt {
                Some(r) => {
                    let _ = writeln!(
                        stderr,
                        "paid {} (atomic {}) to {} on {}: transaction {}",
                        protocol::money::format_usd(r.amount.parse().unwrap_or(U256::ZERO), 6),
                        r.amount,
                        r.pay_to,
                        r.network,
                        r.transaction
                    );
                }
                None => {
                    let _ = writeln!(stderr, "HTTP {} (nothing paid)", outcome.status.as_u16());
                }
            }
            status_code(&outcome)
        }
        Err(e) => {
            let _ = writeln!(stderr, "error ({}): {e}", e.kind());
            exit_code(&e)
        }
    }
}

fn status_code(outcome: &CallOutcome) -> i32 {
    if outcome.status.is_success() || outcome.status.is_redirection() {
        exit::OK
    } else {
        exit::HTTP_ERROR
    }
}

async fn prepare(options: &PayOptions) -> Result<(X402Client, CallRequest), String> {
    let config = BuyerConfig::resolve(&options.buyer, |name| std::env::var(name).ok()).map_err(|e| e.to_string())?;
    let url = url::Url::parse(&options.url).map_err(|e| format!("`{}` is not a URL: {e}", options.url))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{url}` is not an http(s) URL"));
    }
    let method = match &options.method {
        Some(m) => {
            Method::from_bytes(m.to_ascii_uppercase().as_bytes()).map_err(|_| format!("`{m}` is not a method"))?
        }
        None if options.data.is_some() => Method::POST,
        None => Method::GET,
    };
    let mut request = CallRequest::get(url);
    request.method = method;
    for line in &options.headers {
        let (name, value) = parse_header(line).ok_or_else(|| format!("`{line}` is not `Name: value`"))?;
        request.headers.append(name, value);
    }
    request.body = options.data.as_ref().map(|d| d.as_bytes().to_vec());
    if let Some(max) = &options.max {
        request.max_price = Some(protocol::money::parse_price(max, 6).map_err(|e| format!("--max: {e}"))?);
    }
    let ledger = SpendLedger::open(&config.ledger_url).await.map_err(|e| e.to_string())?;
    crate::buyer::spend_reconcile::at_start(&ledger, &config.rpc_url, &config.network).await;
    let screen = PaymentScreen::for_buyer(&config, ledger.clone(), &|name| std::env::var(name).ok())
        .await
        .map_err(|e| e.to_string())?;
    let networks = config.networks();
    let treasury = config
        .treasury
        .clone()
        .map(|rules| crate::treasury::ledger_policy::TreasuryGuard::new(rules, ledger.clone()));
    let mut client = X402Client::new(
        config.signer.clone(),
        config.policy.clone(),
        ledger,
        networks,
        options.timeout,
    )
    .map_err(|e| e.to_string())?
    .with_max_response_bytes(config.max_response_bytes)
    .with_compliance(screen);
    if let Some(treasury) = treasury {
        client = client.with_treasury(treasury);
    }
    let client = match crate::treasury::treasury_payer::for_config(&config)
        .await
        .map_err(|e| e.to_string())?
    {
        Some(payer) => client.with_treasury_payer(payer),
        None => client,
    };
    Ok((client, request))
}

/// The body as JSON when it is JSON, else as text (lossy), else base64.
pub fn body_json(body: &[u8]) -> serde_json::Value {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        return value;
    }
    match std::str::from_utf8(body) {
        Ok(text) => json!(text),
        Err(_) => {
            use base64::Engine as _;
            json!({"base64": base64::engine::general_purpose::STANDARD.encode(body)})
        }
    }
}

fn outcome_json(outcome: &CallOutcome) -> serde_json::Value {
    json!({
        "ok": outcome.status.is_success(),
        "status": outcome.status.as_u16(),
        "body": body_json(&outcome.body),
        "receipt": outcome.receipt,
        "truncated": outcome.truncated,
    })
}
