//! `nerdcabal spend reconcile`: asks the chain about every signed or pending payment in the spend ledger and
//! records what it proves (settled, or unsettled and so no longer counted against budgets). One line per
//! payment and a summary, or one JSON object with `--json`. It needs the ledger and the chain, not the key.

use std::io::Write;

use serde_json::json;

use crate::buyer::buyer_config::{BuyerFlags, LedgerSettings};
use crate::buyer::pay_command::exit;
use crate::buyer::spend_ledger::{OpenScope, SpendLedger};
use crate::buyer::spend_reconcile::{ReconcileError, reconcile};

/// How long the whole reconciliation may take (a chain that does not answer is a network error).
pub const RECONCILE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

#[derive(Debug, Clone, Default)]
pub struct ReconcileOptions {
    pub buyer: BuyerFlags,
    pub json: bool,
}

/// Runs the command; returns the exit code (0 done, 2 configuration or ledger, 6 the chain did not answer).
pub async fn run_reconcile(options: ReconcileOptions, stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    let fail = |stdout: &mut dyn Write, stderr: &mut dyn Write, code: i32, kind: &str, message: String| {
        if options.json {
            let _ = writeln!(stdout, "{}", json!({"error": kind, "message": message}));
        } else {
            let _ = writeln!(stderr, "error ({kind}): {message}");
        }
        code
    };
    let settings = match LedgerSettings::resolve(&options.buyer, |name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(e) => return fail(stdout, stderr, exit::CONFIG, "config_error", e.to_string()),
    };
    let ledger = match SpendLedger::open(&settings.ledger_url).await {
        Ok(ledger) => ledger,
        Err(e) => return fail(stdout, stderr, exit::CONFIG, "ledger_error", e.to_string()),
    };
    let asked = reconcile(&ledger, &settings.rpc_url, &settings.network, OpenScope::All);
    let report = match tokio::time::timeout(RECONCILE_TIMEOUT, asked).await {
        Err(_) => {
            let message = format!("no answer within {} s", RECONCILE_TIMEOUT.as_secs());
            return fail(stdout, stderr, exit::NETWORK, "network_error", message);
        }
        Ok(Ok(report)) => report,
        Ok(Err(e @ (ReconcileError::Ledger(_) | ReconcileError::BadUrl(_)))) => {
            return fail(stdout, stderr, exit::CONFIG, "ledger_error", e.to_string());
        }
        Ok(Err(e @ ReconcileError::Rpc(_))) => {
            return fail(stdout, stderr, exit::NETWORK, "network_error", e.to_string());
        }
    };
    if options.json {
        let _ = writeln!(stdout, "{}", json!(report));
        return exit::OK;
    }
    for p in &report.payments {
        let _ = writeln!(
            stdout,
            "{}  {}  {}  {}  {} ({})",
            p.id,
            p.kind,
            crate::buyer::spend_ledger::usd(p.amount),
            p.url,
            p.state,
            p.reason
        );
    }
    let _ = writeln!(
        stdout,
        "{} checked at block {} on {}: {} settled, {} unsettled, {} still pending{}",
        report.checked,
        report.block,
        report.network,
        report.settled,
        report.unsettled,
        report.pending,
        if report.other_networks > 0 {
            format!("; {} on other networks not checked", report.other_networks)
        } else {
            String::new()
        }
    );
    exit::OK
}
