//! The facilitator's counterparty screen is this screener: [`FacilitatorScreen`] implements
//! `facilitator::compliance::CounterpartyScreen` for a [`ComplianceScreen`] built from the facilitator
//! configuration's raw `[compliance]` table (the same shape as the buyer's section), with the token blocklist
//! of every network the facilitator settles on. Each decision is logged (the facilitator has no spend ledger
//! to keep an audit table in); a `blocked` answer is `compliance_blocked`, an `unavailable` one
//! `compliance_unavailable`.

use std::sync::Arc;

use alloy::primitives::Address;
use facilitator::compliance::{CounterpartyScreen, ScreenFuture, ScreenRefusal};
use facilitator::config::FacilitatorConfig;

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

    /// Builds the screen `config.compliance` describes and sets it as `config.screen`; nothing when the
    /// configuration has no `[compliance]` section.
    pub async fn install(
        config: &mut FacilitatorConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ComplianceConfigError> {
        let Some(table) = config.compliance.clone() else {
            return Ok(());
        };
        let section: ComplianceSection =
            table
                .try_into()
                .map_err(|e: toml::de::Error| ComplianceConfigError::Invalid {
                    key: "section",
                    message: e.to_string(),
                })?;
        let chains: Vec<ScreenChain> = config
            .networks
            .iter()
            .flat_map(|n| {
                let tokens: Vec<Address> = if n.assets.is_empty() {
                    vec![protocol::network::ARC_USDC]
                } else {
                    n.assets.iter().map(|a| a.address).collect()
                };
                tokens.into_iter().map(|token| ScreenChain {
                    rpc_url: n.rpc_url.clone(),
                    token,
                })
            })
            .collect();
        let screen = ComplianceScreen::from_section_on(&section, &chains, env).await?;
        config.screen = Some(Arc::new(FacilitatorScreen::new(screen)));
        Ok(())
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
