//! `nerdcabal approve`: a person's decision on a payment an agent asked to make above the approval threshold
//! (or `--list` of what is waiting). It needs only the spend ledger — no key — and is the only way to approve.

use std::io::Write;

use crate::buyer::approvals::Approvals;
use crate::buyer::buyer_config::ENV_SPEND_DB;
use crate::buyer::spend_ledger::SpendLedger;

#[derive(Debug, Clone, Default)]
pub struct ApproveOptions {
    pub id: Option<String>,
    pub deny: bool,
    pub list: bool,
    pub ledger: Option<String>,
}

/// Runs the command; returns the exit code.
pub async fn run(options: ApproveOptions, stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    let url = options
        .ledger
        .clone()
        .or_else(|| std::env::var(ENV_SPEND_DB).ok())
        .unwrap_or_else(crate::buyer::buyer_config::default_ledger_url);
    let ledger = match SpendLedger::open(&url).await {
        Ok(ledger) => ledger,
        Err(e) => {
            let _ = writeln!(stderr, "error: {e}");
            return 2;
        }
    };
    let approvals = Approvals::new(ledger);
    if options.list || options.id.is_none() {
        return match approvals.pending().await {
            Ok(pending) => {
                for a in pending {
                    let price = crate::buyer::spend_ledger::usd(a.amount);
                    let _ = writeln!(stdout, "{}  {}  {}  {price} to {}", a.id, a.kind, a.target, a.pay_to);
                }
                0
            }
            Err(e) => {
                let _ = writeln!(stderr, "error: {e}");
                2
            }
        };
    }
    let id = options.id.unwrap_or_default();
    match approvals.decide(&id, !options.deny).await {
        Ok(row) => {
            let _ = writeln!(
                stdout,
                "{} {}: {} {} ({} atomic)",
                row.id, row.state, row.kind, row.target, row.amount
            );
            0
        }
        Err(e) => {
            let _ = writeln!(stderr, "error: {e}");
            1
        }
    }
}
