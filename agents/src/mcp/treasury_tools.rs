//! The treasury's MCP tools, on the same server as the buyer's and listed only when a treasury is configured:
//! `treasury_status` and `proposal_status` (read-only) and `propose_payment` (destructive: it executes at once when
//! the treasury's policy allows). The server holds only the agent's spender key, so no tool can approve, revoke or
//! execute: a payment that needs owners comes back as the tool error `needs_approval` with the proposal id and how
//! many approvals are missing, and owners approve with `nerdcabal treasury approve <id> --key-file …`. Policy
//! refusals are tool errors whose `error` is the rule (`per_tx_cap`, `daily_cap`, `payee_allow_list`, …).

use alloy::primitives::Address;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::mcp::buyer_tools::{BuyerTools, bad_input};
use crate::treasury::custody::{CustodyError, PaymentProposal, ProposalState, ProposalStatus, TreasuryStatus};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ProposeInput {
    /// The payee's address (0x…).
    pub to: String,
    /// The amount, e.g. "$2.50".
    pub amount: String,
    /// What the payment is for (only its hash is stored on chain).
    #[serde(default)]
    pub memo: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ProposalInput {
    /// The proposal id `propose_payment` (or `needs_approval`) returned.
    pub proposal_id: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TreasuryView {
    /// `on_chain` (a Treasury contract) or `local`.
    pub mode: String,
    /// The account that holds the funds.
    pub address: String,
    pub token: String,
    /// Atomic units (USDC has 6 decimals).
    pub balance: String,
    pub owners: Vec<String>,
    /// Owner approvals a payment above the approval amount needs.
    pub threshold: u64,
    pub spenders: Vec<String>,
    /// What may still leave today (UTC), atomic units.
    pub remaining_today: Option<String>,
    pub proposals: u64,
}

impl From<TreasuryStatus> for TreasuryView {
    fn from(s: TreasuryStatus) -> Self {
        let text = |list: Vec<Address>| list.iter().map(|a| a.to_checksum(None)).collect();
        TreasuryView {
            mode: s.mode.to_owned(),
            address: s.address.to_checksum(None),
            token: s.token.to_checksum(None),
            balance: s.balance,
            owners: text(s.owners),
            threshold: s.threshold,
            spenders: text(s.spenders),
            remaining_today: s.remaining_today,
            proposals: s.proposals,
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ProposalView {
    pub proposal_id: u64,
    /// `executed`, `pending_approval`, `expired` or `cancelled`.
    pub state: String,
    pub to: String,
    /// Atomic units.
    pub amount: String,
    pub approvals: u64,
    /// Approvals needed; 0 when the policy let it execute without any.
    pub required: u64,
    pub approvers: Vec<String>,
    /// The transaction that moved the money, once there is one.
    pub transaction: Option<String>,
    /// Unix seconds after which a pending proposal can no longer execute.
    pub expires_at: u64,
}

impl From<&ProposalStatus> for ProposalView {
    fn from(s: &ProposalStatus) -> Self {
        ProposalView {
            proposal_id: s.proposal_id,
            state: s.state.as_str().to_owned(),
            to: s.to.to_checksum(None),
            amount: s.amount.clone(),
            approvals: s.approvals,
            required: s.required,
            approvers: s.approvers.iter().map(|a| a.to_checksum(None)).collect(),
            transaction: s.transaction.clone(),
            expires_at: s.expires_at,
        }
    }
}

/// A custody error as a tool error naming its reason (the rule, for a policy refusal).
fn refusal(error: &CustodyError) -> CallToolResult {
    CallToolResult::structured_error(error.to_json())
}

fn no_treasury() -> CallToolResult {
    CallToolResult::structured_error(json!({
        "error": "no_treasury",
        "message": "no treasury is configured ([wallet] treasury)",
    }))
}

#[tool_router(router = treasury_router, vis = "pub(crate)")]
impl BuyerTools {
    /// The organisation's treasury: owners, approvals needed, spenders, token, balance, what may still leave
    /// today, and how many proposals it has.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn treasury_status(&self) -> Result<Json<TreasuryView>, CallToolResult> {
        let custody = self.treasury().ok_or_else(no_treasury)?;
        let status = custody.status().await.map_err(|e| refusal(&e))?;
        Ok(Json(status.into()))
    }

    /// Pay from the treasury: executes at once when its policy allows; a payment at or above its approval
    /// amount waits for owners and comes back as the error `needs_approval` with the proposal id (owners
    /// approve outside this server). Policy refusals name the rule (`daily_cap`, `per_tx_cap`, …).
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn propose_payment(
        &self,
        Parameters(input): Parameters<ProposeInput>,
    ) -> Result<Json<ProposalView>, CallToolResult> {
        let to: Address = input
            .to
            .trim()
            .parse()
            .map_err(|_| bad_input(format!("`{}` is not an address", input.to)))?;
        let amount = protocol::money::parse_price(&input.amount, 6).map_err(|e| bad_input(e.to_string()))?;
        let proposal = PaymentProposal {
            to,
            amount,
            memo: input.memo.unwrap_or_default(),
        };
        let custody = self.treasury().ok_or_else(no_treasury)?;
        let status = custody.propose(&proposal).await.map_err(|e| refusal(&e))?;
        if status.state == ProposalState::PendingApproval {
            let mut document = serde_json::to_value(ProposalView::from(&status)).unwrap_or_default();
            document["error"] = json!("needs_approval");
            document["missing"] = json!(status.required.saturating_sub(status.approvals));
            document["message"] = json!(format!(
                "proposal {} needs {} more owner approvals: owners run `nerdcabal treasury approve {} --key-file …`",
                status.proposal_id,
                status.required.saturating_sub(status.approvals),
                status.proposal_id
            ));
            return Err(CallToolResult::structured_error(document));
        }
        Ok(Json(ProposalView::from(&status)))
    }

    /// Where a treasury proposal stands: `executed` (with its transaction), `pending_approval` (approvals and
    /// required), `expired` or `cancelled`.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn proposal_status(
        &self,
        Parameters(input): Parameters<ProposalInput>,
    ) -> Result<Json<ProposalView>, CallToolResult> {
        let custody = self.treasury().ok_or_else(no_treasury)?;
        let status = custody.proposal(input.proposal_id).await.map_err(|e| refusal(&e))?;
        Ok(Json(ProposalView::from(&status)))
    }
}
