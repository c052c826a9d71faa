//! What the buyer asks before any signature: the payee and the buyer's own address are screened together,
//! both decisions are recorded in the audit table, and a `blocked` or `unavailable` decision becomes the
//! payment's refusal (`compliance_blocked`, `compliance_unavailable`). A decision that cannot be recorded
//! refuses too: no payment leaves without its audit row.

use std::sync::Arc;

use alloy::primitives::Address;

use crate::buyer::buyer_config::BuyerConfig;
use crate::buyer::spend_ledger::SpendLedger;
use crate::buyer::x402_client::PayError;
use crate::compliance::audit;
use crate::compliance::compliance_config::{ComplianceConfigError, ComplianceSection, ScreenChain};
use crate::compliance::decision::{ComplianceScreen, Decision, Verdict};
use crate::compliance::screener::SourceAnswer;

/// The screen and the ledger its decisions are recorded in.
#[derive(Clone)]
pub struct PaymentScreen {
    screen: Arc<ComplianceScreen>,
    ledger: SpendLedger,
}

impl PaymentScreen {
    pub fn new(screen: Arc<ComplianceScreen>, ledger: SpendLedger) -> Self {
        PaymentScreen { screen, ledger }
    }

    /// The buyer's screen: its `[compliance]` section on its chain (the token blocklist of its USDC), recorded
    /// in its spend ledger.
    pub async fn for_buyer(
        config: &BuyerConfig,
        ledger: SpendLedger,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ComplianceConfigError> {
        Self::for_section(&config.compliance, &config.rpc_url, config.usdc, ledger, env).await
    }

    /// The screen `section` describes on the chain at `rpc_url` (the token blocklist of `token`), recorded in
    /// `ledger`.
    pub async fn for_section(
        section: &ComplianceSection,
        rpc_url: &str,
        token: Address,
        ledger: SpendLedger,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ComplianceConfigError> {
        let chain = ScreenChain {
            rpc_url: rpc_url.to_owned(),
            token,
        };
        let screen = ComplianceScreen::from_section(section, &chain, env).await?;
        Ok(PaymentScreen::new(Arc::new(screen), ledger))
    }

    pub fn ledger(&self) -> &SpendLedger {
        &self.ledger
    }

    pub fn screen(&self) -> &ComplianceScreen {
        &self.screen
    }

    /// Screens and records one address.
    pub async fn decide(&self, address: Address, context: &str) -> Result<Decision, PayError> {
        let decision = self.screen.decide(address).await;
        audit::record(&self.ledger, &decision, context)
            .await
            .map_err(|e| PayError::Ledger(format!("the compliance decision could not be recorded: {e}")))?;
        Ok(decision)
    }

    /// Screens `payee` and `payer`; `Ok` only when both are clear.
    pub async fn check(&self, payee: Address, payer: Address) -> Result<(), PayError> {
        let (payee_decision, payer_decision) =
            futures_util::future::join(self.decide(payee, "payee"), self.decide(payer, "payer")).await;
        let decisions = [payee_decision?, payer_decision?];
        // Blocked anywhere first: it is the stronger refusal.
        for decision in &decisions {
            if decision.decision == Verdict::Blocked {
                return Err(refusal(decision));
            }
        }
        for decision in &decisions {
            if decision.decision != Verdict::Clear {
                return Err(refusal(decision));
            }
        }
        Ok(())
    }
}

/// A refusal for a decision that is not clear.
pub fn refusal(decision: &Decision) -> PayError {
    if let Some(report) = decision.blocking()
        && let SourceAnswer::Blocked { reason, detail } = &report.answer
    {
        return PayError::ComplianceBlocked {
            address: decision.address,
            screener: report.source.clone(),
            detail: format!("{reason}: {detail}"),
        };
    }
    let (source, error) = match decision.unavailable() {
        Some(report) => (
            report.source.clone(),
            match &report.answer {
                SourceAnswer::Unavailable { error } => error.clone(),
                _ => String::new(),
            },
        ),
        None => ("none".to_owned(), "no screening source is configured".to_owned()),
    };
    PayError::ComplianceUnavailable {
        address: decision.address,
        screener: source,
        error,
    }
}
