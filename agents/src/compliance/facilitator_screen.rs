//! The facilitator's counterparty screen is this screener: [`FacilitatorScreen`] implements
//! `protocol::screening::CounterpartyScreen` (the interface the facilitator asks; agents do not depend on the
//! facilitator) for a [`ComplianceScreen`] built from the facilitator configuration's raw `[compliance]` table (the same shape as the buyer's section), with the token blocklist
//! of every network the facilitator settles on. Each decision is logged (the facilitator has no spend ledger
//! to keep an audit table in); a `blocked` answer is `compliance_blocked`, an `unavailable` one
//! `compliance_unavailable`.

use alloy::primitives::Address;
use protocol::screening::{CounterpartyScreen, ScreenFuture, ScreenRefusal};

use crate::compliance::compliance_config::{ComplianceConfigError, ComplianceSection, ScreenChain};
use crate::compliance::decision::{ComplianceScreen, Verdict};
use crate::compliance::screener::SourceAnswer;

pub struct FacilitatorScreen {
    screen: ComplianceScreen,
}

impl FacilitatorScreen {
    pub fn new(screen: ComplianceScreen) -> Self {
        FacilitatorScreen { screen }
    }

    /// Builds the screen a facilitator's `[compliance]` table describes, with the token blocklist of each
    /// `(rpc_url, token)` the facilitator settles.
    pub async fn from_table(
        table: &toml::Table,
        tokens: &[(String, Address)],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ComplianceConfigError> {
        let section: ComplianceSection =
            table
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| ComplianceConfigError::Invalid {
                    key: "section",
                    message: e.to_string(),
                })?;
        let chains: Vec<ScreenChain> = tokens
            .iter()
            .map(|(rpc_url, token)| ScreenChain {
                rpc_url: rpc_url.clone(),
                token: *token,
            })
            .collect();
        Ok(FacilitatorScreen::new(
            ComplianceScreen::from_section_on(&section, &chains, env).await?,
        ))
    }
}

impl CounterpartyScreen for FacilitatorScreen {
    fn screen(&self, address: Address) -> ScreenFuture<'_> {
        Box::pin(async move {
            let decision = self.screen.decide(address).await;
            tracing::info!(
                %address,
                decision = decision.decision.as_str(),
                sources = %serde_json::to_string(&decision.sources).unwrap_or_default(),
                "compliance screening"
            );
            match decision.decision {
                Verdict::Clear => Ok(()),
                Verdict::Blocked => {
                    let (source_name, detail) = match decision.blocking().map(|r| (&r.source, &r.answer)) {
                        Some((source, SourceAnswer::Blocked { reason, detail })) => {
                            (source.clone(), format!("{reason}: {detail}"))
                        }
                        _ => ("unknown".into(), String::new()),
                    };
                    Err(ScreenRefusal::Blocked {
                        address,
                        source_name,
                        detail,
                    })
                }
                Verdict::Unavailable => Err(ScreenRefusal::Unavailable {
                    address,
                    source_name: decision
                        .unavailable()
                        .map_or_else(|| "none".to_owned(), |r| r.source.clone()),
                }),
            }
        })
    }

    fn sources(&self) -> Vec<String> {
        self.screen.source_names().into_iter().map(str::to_owned).collect()
    }
}
