//! `nerdcabal compliance screen <address>` (screens one address with every configured source, records the
//! decision in the audit table and prints it: `decision` = `clear | blocked | unavailable` with each source's
//! answer; exit 0 when clear, 8 otherwise) and `nerdcabal compliance audit --since <when>` (lists the recorded
//! decisions; `when` is a date `YYYY-MM-DD`, an RFC 3339 time, Unix seconds, or a duration back from now
//! such as `24h` or `7d`). Both read the buyer's configuration (`[compliance]`, the ledger, the devnet) and
//! need no key.

use std::io::Write;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::buyer::buyer_config::{BuyerFlags, LedgerSettings};
use crate::buyer::pay_command::exit;
use crate::buyer::spend_ledger::SpendLedger;
use crate::compliance::audit::{self, AuditRow};
use crate::compliance::compliance_config::ScreenChain;
use crate::compliance::decision::{ComplianceScreen, Decision, Verdict};
use crate::compliance::payment_check::PaymentScreen;
use crate::compliance::screener::{SourceAnswer, parse_evm};

/// The most rows `audit` lists.
pub const AUDIT_LIMIT: i64 = 10_000;

#[derive(Debug, Clone, Default)]
pub struct ScreenOptions {
    pub address: String,
    pub json: bool,
    pub buyer: BuyerFlags,
}

#[derive(Debug, Clone, Default)]
pub struct AuditOptions {
    pub since: String,
    pub json: bool,
    pub buyer: BuyerFlags,
}

fn fail(json: bool, stdout: &mut dyn Write, stderr: &mut dyn Write, kind: &str, message: String) -> i32 {
    if json {
        let _ = writeln!(stdout, "{}", json!({"error": kind, "message": message}));
    } else {
        let _ = writeln!(stderr, "error ({kind}): {message}");
    }
    exit::CONFIG
}

async fn open(buyer: &BuyerFlags) -> Result<(LedgerSettings, SpendLedger), (String, &'static str)> {
    let settings =
        LedgerSettings::resolve(buyer, |name| std::env::var(name).ok()).map_err(|e| (e.to_string(), "config_error"))?;
    let ledger = SpendLedger::open(&settings.ledger_url)
        .await
        .map_err(|e| (e.to_string(), "ledger_error"))?;
    Ok((settings, ledger))
}

/// One source's answer as a line.
fn answer_text(answer: &SourceAnswer) -> String {
    match answer {
        SourceAnswer::Clear => "clear".into(),
        SourceAnswer::Blocked { reason, detail } => format!("blocked ({reason}: {detail})"),
        SourceAnswer::Unavailable { error } => format!("unavailable ({error})"),
    }
}

pub async fn run_screen(options: ScreenOptions, stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    let Some(address) = parse_evm(&options.address) else {
        let message = format!("`{}` is not an EVM address (0x and 40 hex digits)", options.address);
        return fail(options.json, stdout, stderr, "bad_address", message);
    };
    let (settings, ledger) = match open(&options.buyer).await {
        Ok(opened) => opened,
        Err((message, kind)) => return fail(options.json, stdout, stderr, kind, message),
    };
    let chain = ScreenChain {
        rpc_url: settings.rpc_url.clone(),
        token: settings.usdc,
    };
    let screen =
        match ComplianceScreen::from_section(&settings.compliance, &chain, &|name| std::env::var(name).ok()).await {
            Ok(screen) => screen,
            Err(e) => return fail(options.json, stdout, stderr, "config_error", e.to_string()),
        };
    let screen = PaymentScreen::new(Arc::new(screen), ledger);
    let decision = match screen.decide(address, "screen").await {
        Ok(decision) => decision,
        Err(e) => return fail(options.json, stdout, stderr, "ledger_error", e.to_string()),
    };
    print_decision(&decision, options.json, stdout);
    if decision.decision == Verdict::Clear {
        exit::OK
    } else {
        exit::COMPLIANCE
    }
}

fn print_decision(decision: &Decision, as_json: bool, stdout: &mut dyn Write) {
    if as_json {
        let _ = writeln!(stdout, "{}", json!(decision));
        return;
    }
    let _ = writeln!(stdout, "{}: {}", decision.address, decision.decision.as_str());
    for source in &decision.sources {
        let _ = writeln!(
            stdout,
            "  {}{}: {}{}",
            source.source,
            if source.advisory { " (advisory)" } else { "" },
            answer_text(&source.answer),
            source
                .version
                .as_deref()
                .map(|v| format!(" [list {v}]"))
                .unwrap_or_default()
        );
    }
}

/// `--since`: a date, an RFC 3339 time, Unix seconds, or a duration back from `now`.
pub fn parse_since(text: &str, now: SystemTime) -> Result<i64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().map_err(|e| format!("`{text}`: {e}"));
    }
    let unix = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .map_err(|_| format!("`{text}` is before 1970"))
    };
    if let Ok(ago) = humantime::parse_duration(text) {
        return unix(now.checked_sub(ago).unwrap_or(UNIX_EPOCH));
    }
    let stamp = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    };
    match humantime::parse_rfc3339_weak(&stamp) {
        Ok(t) => unix(t),
        Err(e) => Err(format!(
            "`{text}` is not a date (YYYY-MM-DD), a time (RFC 3339), Unix seconds or a duration (24h, 7d): {e}"
        )),
    }
}

pub async fn run_audit(options: AuditOptions, stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    let since = match parse_since(&options.since, SystemTime::now()) {
        Ok(since) => since,
        Err(message) => return fail(options.json, stdout, stderr, "bad_since", message),
    };
    let (_, ledger) = match open(&options.buyer).await {
        Ok(opened) => opened,
        Err((message, kind)) => return fail(options.json, stdout, stderr, kind, message),
    };
    let rows = match audit::since(&ledger, since, AUDIT_LIMIT).await {
        Ok(rows) => rows,
        Err(e) => return fail(options.json, stdout, stderr, "ledger_error", e.to_string()),
    };
    if options.json {
        let rows: Vec<serde_json::Value> = rows.iter().map(row_json).collect();
        let _ = writeln!(stdout, "{}", json!({"since": since, "rows": rows}));
        return exit::OK;
    }
    for row in &rows {
        let sources: Vec<String> = match row.sources_json() {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|s| {
                    format!(
                        "{}={}",
                        s["source"].as_str().unwrap_or("?"),
                        s["answer"].as_str().unwrap_or("?")
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        let _ = writeln!(
            stdout,
            "{}  {}  {}  {}  {}  {}",
            crate::buyer::spend_ledger::civil_date(row.created_at),
            row.address,
            row.decision,
            row.context,
            sources.join(" "),
            row.list_version.as_deref().unwrap_or("-")
        );
    }
    let _ = writeln!(stdout, "{} decisions since {since}", rows.len());
    exit::OK
}

fn row_json(row: &AuditRow) -> serde_json::Value {
    json!({
        "id": row.id,
        "address": row.address,
        "decision": row.decision,
        "context": row.context,
        "sources": row.sources_json(),
        "list_version": row.list_version,
        "at": row.created_at,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn since_takes_unix_seconds_dates_times_and_durations() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_since("1690000000", now), Ok(1_690_000_000));
        assert_eq!(parse_since("2024-09-26", now), Ok(1_727_308_800));
        assert_eq!(parse_since("2024-09-26T12:00:00Z", now), Ok(1_727_352_000));
        assert_eq!(parse_since("24h", now), Ok(1_700_000_000 - 86_400));
        assert_eq!(parse_since("7d", now), Ok(1_700_000_000 - 7 * 86_400));
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("", now).is_err());
    }
}
