//! The compliance tool: `screen_address` (read-only) screens an address with every configured source — the
//! token's blocklist, the OFAC list, Circle's Compliance Engine, the local file — records the decision in the
//! audit table and answers `decision` (`clear`, `blocked`, `unavailable`) with each source's answer. Paying
//! tools screen their counterparties themselves; this one never pays. Its router is merged into the buyer
//! server's (`BuyerTools::compliance_router`).

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::compliance::decision::Decision;
use crate::compliance::screener::{SourceAnswer, parse_evm};
use crate::mcp::buyer_tools::{BuyerTools, bad_input, refusal};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ScreenInput {
    /// The EVM address to screen (0x and 40 hex digits).
    pub address: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SourceView {
    /// `token_blocklist`, `ofac`, `circle` or `local_list`.
    pub source: String,
    /// `clear`, `blocked` or `unavailable`.
    pub answer: String,
    /// Whether this source's unavailability is ignored.
    pub advisory: bool,
    /// Why blocked, or why it could not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The list version (the OFAC publication date).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ScreenOutput {
    pub address: String,
    /// `clear`, `blocked` or `unavailable` (payments to it are refused unless clear).
    pub decision: String,
    pub sources: Vec<SourceView>,
    /// Unix seconds.
    pub at: i64,
}

fn view(decision: &Decision) -> ScreenOutput {
    ScreenOutput {
        address: decision.address.to_checksum(None),
        decision: decision.decision.as_str().to_owned(),
        sources: decision
            .sources
            .iter()
            .map(|s| SourceView {
                source: s.source.clone(),
                answer: s.answer.as_str().to_owned(),
                advisory: s.advisory,
                detail: match &s.answer {
                    SourceAnswer::Clear => None,
                    SourceAnswer::Blocked { reason, detail } => Some(format!("{reason}: {detail}")),
                    SourceAnswer::Unavailable { error } => Some(error.clone()),
                },
                version: s.version.clone(),
            })
            .collect(),
        at: decision.at,
    }
}

#[tool_router(router = compliance_router, vis = "pub(crate)")]
impl BuyerTools {
    /// Screen an address against the sanctions and block lists this buyer is configured with (the token's
    /// on-chain blocklist, OFAC, Circle, a local file) without paying. Payments go only to `clear` addresses.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn screen_address(
        &self,
        Parameters(input): Parameters<ScreenInput>,
    ) -> Result<Json<ScreenOutput>, CallToolResult> {
        let Some(address) = parse_evm(&input.address) else {
            return Err(bad_input(format!("`{}` is not an EVM address", input.address)));
        };
        let Some(screen) = self.client().compliance() else {
            return Err(CallToolResult::structured_error(json!({
                "error": "compliance_unavailable",
                "message": "this server has no compliance screen",
            })));
        };
        let decision = screen.decide(address, "screen").await.map_err(|e| refusal(&e))?;
        Ok(Json(view(&decision)))
    }
}
