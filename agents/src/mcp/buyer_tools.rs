//! The buyer's MCP tools: `quote`, `x402_fetch`, `send_payment`, `balance`, `spending_report` and
//! `budget_status`, with input and output schemas and honest annotations (reads are read-only; paying tools are
//! destructive). Refusals and failures are tool errors (`isError: true`) whose structured content names the
//! reason (`over_budget` with limit and spent, `unpayable`, `rejected`, `approval_required` with an id) so a
//! model can act on them. Payments above the approval threshold need a person: through MCP elicitation when the
//! client supports it, otherwise through `nerdcabal approve <id>`. Every piece of state (budgets, approvals)
//! lives in the shared spend ledger, so a handler per HTTP request sees the same limits. What `quote` and
//! `x402_fetch` may reach is the fetch policy's (`fetch_guard`): a refused URL is the tool error
//! `fetch_refused` naming the rule. The treasury's tools (`treasury_tools`) are a second router on this type.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use protocol::money::format_usd;
use reqwest::Method;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::ElicitationError;
use rmcp::{Json, Peer, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::buyer::approvals::{Approvals, Unusable};
use crate::buyer::direct_transfer::{self, TransferRequest};
use crate::buyer::fetch_guard;
use crate::buyer::offers::Offer;
use crate::buyer::pay_command::body_json;
use crate::buyer::spend_ledger::{self, day_start, unix_now};
use crate::buyer::x402_client::{CallRequest, PayError, PaymentGate, X402Client, parse_header};
use crate::treasury::custody::Custody;

/// Bodies longer than this are cut, with a note.
pub const MAX_BODY_CHARS: usize = 16_000;
/// `x402_fetch` reads this many bytes beyond what it can return, so an answer that fits is read whole (and
/// JSON stays JSON) and one that does not is known to be longer.
pub const BODY_MARGIN_BYTES: usize = 4_096;

const INSTRUCTIONS: &str = "Tools to buy HTTP API calls with USDC (x402) within a spending policy a person set. \
Use `quote` to see what a URL costs without paying; `x402_fetch` to call it and pay automatically (within the \
policy; pass `max_price` to cap one call); `send_payment` to transfer USDC directly; `balance`, `budget_status` and \
`spending_report` to see money and limits. Refusals come back as tool errors with a `error` reason: `over_budget` \
(do not retry), `unpayable`, `rejected` (the seller's reason), `approval_required` (a person must run \
`nerdcabal approve <id>`; then call again with `approval_id`), `fetch_refused` (internal and metadata addresses \
are not reachable; do not retry), `compliance_blocked` (the counterparty is sanctioned or blocked; do not retry), \
`compliance_unavailable` (a screening source could not answer; retry later). `screen_address` screens an \
address without paying. With an organisation's treasury configured, `treasury_status`, `propose_payment` \
(pays from the treasury; executes at once within its policy) and `proposal_status` work on it: `needs_approval` \
means owners must approve the proposal outside this server (check `proposal_status` later; an `x402_fetch` that \
answered `needs_approval` under local custody is paid once approved by calling it again with `proposal_id`), and a \
policy refusal names its rule (`daily_cap`, `per_tx_cap`, `payee_allow_list`). No tool can raise a limit or \
approve a payment.";

/// Everything the tools share; cheap to clone (one per HTTP session is fine).
#[derive(Clone)]
pub struct BuyerTools {
    client: Arc<X402Client>,
    approvals: Approvals,
    threshold: Option<U256>,
    local_key: Option<PrivateKeySigner>,
    rpc_url: Arc<str>,
    network: Arc<str>,
    usdc: Address,
    /// The on-chain treasury the treasury tools (`treasury_tools`) propose to, with the agent's spender key.
    treasury: Option<Arc<dyn Custody>>,
    tool_router: ToolRouter<Self>,
}

pub struct BuyerToolsConfig {
    pub client: X402Client,
    pub approval_threshold: Option<U256>,
    pub local_key: Option<PrivateKeySigner>,
    pub rpc_url: String,
    pub network: String,
    pub usdc: Address,
    /// `[wallet] treasury`, as custody the treasury tools use.
    pub treasury: Option<Arc<dyn Custody>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct QuoteInput {
    /// The URL to price.
    pub url: String,
    /// HTTP method (default GET).
    #[serde(default)]
    pub method: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct OfferView {
    pub scheme: String,
    pub network: String,
    /// Atomic units of the asset (USDC has 6 decimals).
    pub amount: String,
    /// The amount in dollars, e.g. "$0.01".
    pub price: String,
    pub asset: String,
    pub pay_to: String,
    /// Whether the spending policy would pay this offer.
    pub payable: bool,
    /// Why not, when it would not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct QuoteOutput {
    pub url: String,
    /// The status an unpaid request gets.
    pub status: u16,
    /// Whether the URL asks for payment.
    pub priced: bool,
    pub offers: Vec<OfferView>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FetchInput {
    pub url: String,
    /// HTTP method (default GET, or POST when a body is given).
    #[serde(default)]
    pub method: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    /// Request body (text).
    #[serde(default)]
    pub body: Option<String>,
    /// Most this call may cost, e.g. "$0.05" (below the policy's own maximum).
    #[serde(default)]
    pub max_price: Option<String>,
    /// The id of an approval a person granted for this payment.
    #[serde(default)]
    pub approval_id: Option<String>,
    /// The treasury proposal (from a `needs_approval` answer) its owners have since approved: the call pays
    /// under it, once.
    #[serde(default)]
    pub proposal_id: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ReceiptView {
    pub transaction: String,
    pub network: String,
    /// Atomic units.
    pub amount: String,
    pub price: String,
    pub pay_to: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FetchOutput {
    pub status: u16,
    /// The body: JSON when it is JSON, else text.
    pub body: Value,
    /// Set when the body was cut to fit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<String>,
    /// Present when a payment settled for this answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<ReceiptView>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SendInput {
    /// Recipient address.
    pub to: String,
    /// Amount in dollars ("$1.50", "1.5") or atomic units ("1500000").
    pub amount: String,
    /// A note kept in the spend ledger.
    #[serde(default)]
    pub memo: Option<String>,
    #[serde(default)]
    pub approval_id: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SendOutput {
    pub transaction: String,
    pub to: String,
    pub amount: String,
    pub price: String,
    pub network: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BalanceInput {
    /// Whose balance (default: this buyer).
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BalanceOutput {
    pub address: String,
    pub network: String,
    /// Atomic units.
    pub balance: String,
    pub usdc: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReportInput {
    /// "today", "7d" or "30d" (default today).
    #[serde(default)]
    pub period: Option<String>,
    /// "host" or "day" (default host).
    #[serde(default)]
    pub group_by: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ReportRowView {
    /// The host, or the UTC day.
    pub key: String,
    pub payments: i64,
    /// Atomic units.
    pub total: String,
    pub price: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ReportOutput {
    pub period: String,
    pub group_by: String,
    pub since: i64,
    pub total: String,
    pub rows: Vec<ReportRowView>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Limit {
    pub limit: Option<String>,
    pub spent: String,
    pub remaining: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BudgetOutput {
    pub address: String,
    pub max_per_request: String,
    pub daily: Limit,
    pub per_host_daily: Option<String>,
    pub approval_threshold: Option<String>,
    pub networks: Vec<String>,
    pub pending_approvals: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Empty {}

/// What a person answers when asked to approve a payment through the MCP client.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ApprovalAnswer {
    /// Approve this payment?
    pub approve: bool,
}
rmcp::elicit_safe!(ApprovalAnswer);

fn usd(atomic: U256) -> String {
    format_usd(atomic, 6)
}

/// A tool error the model can act on.
pub(super) fn refusal(error: &PayError) -> CallToolResult {
    CallToolResult::structured_error(error.to_json())
}

pub(super) fn bad_input(message: impl Into<String>) -> CallToolResult {
    CallToolResult::structured_error(json!({"error": "invalid_input", "message": message.into()}))
}

/// The approval gate of one tool call.
struct Gate<'a> {
    tools: &'a BuyerTools,
    peer: &'a Peer<RoleServer>,
    kind: &'static str,
    approval_id: Option<&'a str>,
}

impl Gate<'_> {
    async fn approve(&self, target: &str, amount: U256, pay_to: Address) -> Result<(), PayError> {
        let Some(threshold) = self.tools.threshold else {
            return Ok(());
        };
        if amount <= threshold {
            return Ok(());
        }
        let atomic = i64::try_from(amount).unwrap_or(i64::MAX);
        let approvals = &self.tools.approvals;
        if let Some(id) = self.approval_id {
            return match approvals.take(id, self.kind, target, atomic, pay_to).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(Unusable::Pending(id))) => Err(PayError::ApprovalRequired {
                    id,
                    amount: usd(amount),
                }),
                Ok(Err(unusable)) => Err(PayError::ApprovalDenied(unusable.to_string())),
                Err(e) => Err(PayError::Ledger(e.to_string())),
            };
        }
        let elicits = self
            .peer
            .peer_info()
            .is_some_and(|info| info.capabilities.elicitation.is_some());
        if elicits {
            let question = format!(
                "Approve paying {} to {pay_to} for {target}? It is above the {} approval threshold.",
                usd(amount),
                usd(threshold)
            );
            return match self
                .peer
                .elicit_with_timeout::<ApprovalAnswer>(question, Some(Duration::from_secs(300)))
                .await
            {
                Ok(Some(ApprovalAnswer { approve: true })) => Ok(()),
                Ok(_) | Err(ElicitationError::UserDeclined) => {
                    Err(PayError::ApprovalDenied("the person declined".into()))
                }
                Err(ElicitationError::UserCancelled) => Err(PayError::ApprovalDenied("the person cancelled".into())),
                // The client could not ask after all: fall back to an approval by command.
                Err(_) => self.request(target, atomic, amount, pay_to).await,
            };
        }
        self.request(target, atomic, amount, pay_to).await
    }

    async fn request(&self, target: &str, atomic: i64, amount: U256, pay_to: Address) -> Result<(), PayError> {
        let id = self
            .tools
            .approvals
            .request(self.kind, target, atomic, pay_to)
            .await
            .map_err(|e| PayError::Ledger(e.to_string()))?;
        Err(PayError::ApprovalRequired {
            id,
            amount: usd(amount),
        })
    }
}

impl PaymentGate for Gate<'_> {
    fn check<'a>(
        &'a self,
        target: &'a str,
        offer: &'a Offer,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), PayError>> + Send + 'a>> {
        Box::pin(self.approve(target, offer.amount(), offer.pay_to()))
    }
}

fn method_of(text: Option<&str>, has_body: bool) -> Result<Method, String> {
    match text {
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes()).map_err(|_| format!("`{m}` is not a method")),
        None if has_body => Ok(Method::POST),
        None => Ok(Method::GET),
    }
}

fn http_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{text}` is not an http(s) URL"));
    }
    Ok(url)
}

/// The body for the model: JSON or text, cut to [`MAX_BODY_CHARS`]; `truncated` says that reading stopped
/// before the end of the answer.
fn body_for_model(body: &[u8], truncated: bool) -> (Value, Option<String>) {
    let value = if truncated {
        // Cut mid-answer: JSON would not parse, and the cut may split a character.
        match std::str::from_utf8(body) {
            Ok(text) => Value::String(text.to_owned()),
            Err(e) if e.error_len().is_none() => {
                Value::String(String::from_utf8_lossy(&body[..e.valid_up_to()]).into_owned())
            }
            Err(_) => body_json(body),
        }
    } else {
        body_json(body)
    };
    let text = match &value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let chars = text.chars().count();
    if chars <= MAX_BODY_CHARS && !truncated {
        return (value, None);
    }
    let cut: String = text.chars().take(MAX_BODY_CHARS).collect();
    let note = if truncated {
        format!(
            "the answer is longer than the {} bytes read; the first {} characters are shown as text",
            body.len(),
            chars.min(MAX_BODY_CHARS)
        )
    } else {
        format!("the body has {chars} characters; the first {MAX_BODY_CHARS} are shown as text")
    };
    (Value::String(cut), Some(note))
}

#[tool_router]
impl BuyerTools {
    pub fn new(config: BuyerToolsConfig) -> Self {
        let approvals = Approvals::new(config.client.ledger().clone());
        BuyerTools {
            client: Arc::new(config.client),
            approvals,
            threshold: config.approval_threshold,
            local_key: config.local_key,
            rpc_url: config.rpc_url.into(),
            network: config.network.into(),
            usdc: config.usdc,
            // The treasury's tools only when there is a treasury to use.
            tool_router: match config.treasury {
                Some(_) => Self::tool_router() + Self::compliance_router() + Self::treasury_router(),
                None => Self::tool_router() + Self::compliance_router(),
            },
            treasury: config.treasury,
        }
    }

    /// The treasury custody, when one is configured.
    pub(crate) fn treasury(&self) -> Option<&dyn Custody> {
        self.treasury.as_deref()
    }

    /// The x402 client the tools pay with (its compliance screen too).
    pub(crate) fn client(&self) -> &X402Client {
        &self.client
    }

    /// What a URL asks to be paid, without paying: each offer in USDC and atomic units, and whether the
    /// spending policy would pay it.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn quote(&self, Parameters(input): Parameters<QuoteInput>) -> Result<Json<QuoteOutput>, CallToolResult> {
        let url = http_url(&input.url).map_err(bad_input)?;
        let method = method_of(input.method.as_deref(), false).map_err(bad_input)?;
        let (status, offers) = self.client.quote(method, url).await.map_err(|e| refusal(&e))?;
        let policy = self.client.policy();
        let offers = offers
            .iter()
            .map(|offer| {
                let verdict = policy.admits(offer);
                OfferView {
                    scheme: offer.scheme().to_owned(),
                    network: offer.caip2().unwrap_or_else(|| offer.network().to_owned()),
                    amount: offer.amount().to_string(),
                    price: usd(offer.amount()),
                    asset: offer.asset().to_checksum(None),
                    pay_to: offer.pay_to().to_checksum(None),
                    payable: verdict.is_ok(),
                    refusal: verdict.err().map(|r| r.to_string()),
                }
            })
            .collect::<Vec<_>>();
        Ok(Json(QuoteOutput {
            url: input.url,
            status: status.as_u16(),
            priced: status.as_u16() == 402,
            offers,
        }))
    }

    /// Call a URL and pay for it automatically if it asks (x402), within the spending policy. Returns the
    /// status, the body (JSON or text, cut to 16,000 characters with a note), and the payment receipt.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn x402_fetch(
        &self,
        Parameters(input): Parameters<FetchInput>,
        peer: Peer<RoleServer>,
    ) -> Result<Json<FetchOutput>, CallToolResult> {
        let url = http_url(&input.url).map_err(bad_input)?;
        let mut request = CallRequest::get(url);
        request.method = method_of(input.method.as_deref(), input.body.is_some()).map_err(bad_input)?;
        for (name, value) in input.headers.iter().flatten() {
            let (name, value) =
                parse_header(&format!("{name}: {value}")).ok_or_else(|| bad_input(format!("bad header `{name}`")))?;
            request.headers.append(name, value);
        }
        fetch_guard::drop_agent_only_headers(&mut request.headers);
        request.body = input.body.map(String::into_bytes);
        // Read only what can be returned (plus a margin), never a whole large answer.
        request.max_body_bytes = Some(MAX_BODY_CHARS + BODY_MARGIN_BYTES);
        if let Some(max) = &input.max_price {
            request.max_price =
                Some(protocol::money::parse_price(max, 6).map_err(|e| bad_input(format!("max_price: {e}")))?);
        }
        let gate = Gate {
            tools: self,
            peer: &peer,
            kind: "x402_fetch",
            approval_id: input.approval_id.as_deref(),
        };
        let outcome = self
            .client
            .call_approved(&request, &gate, input.proposal_id)
            .await
            .map_err(|e| refusal(&e))?;
        let (body, truncated) = body_for_model(&outcome.body, outcome.truncated);
        Ok(Json(FetchOutput {
            status: outcome.status.as_u16(),
            body,
            truncated,
            receipt: outcome.receipt.map(|r| ReceiptView {
                price: usd(r.amount.parse().unwrap_or(U256::ZERO)),
                transaction: r.transaction,
                network: r.network,
                amount: r.amount,
                pay_to: r.pay_to.to_checksum(None),
            }),
        }))
    }

    /// Transfer USDC directly to an address, within the same spending policy (payees, per-payment maximum,
    /// budgets, approval above the threshold).
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn send_payment(
        &self,
        Parameters(input): Parameters<SendInput>,
        peer: Peer<RoleServer>,
    ) -> Result<Json<SendOutput>, CallToolResult> {
        let to: Address = input
            .to
            .parse()
            .map_err(|_| bad_input(format!("`{}` is not an address", input.to)))?;
        let amount = protocol::money::parse_price(&input.amount, 6).map_err(|e| bad_input(format!("amount: {e}")))?;
        let Some(key) = &self.local_key else {
            return Err(refusal(&PayError::Unpayable {
                why: "direct transfers need a local key (this buyer signs with a remote wallet)".into(),
            }));
        };
        let target = to.to_checksum(None);
        let gate = Gate {
            tools: self,
            peer: &peer,
            kind: "send_payment",
            approval_id: input.approval_id.as_deref(),
        };
        gate.approve(&target, amount, to).await.map_err(|e| refusal(&e))?;
        let treasury = self
            .client
            .treasury()
            .map(|guard| direct_transfer::UnderTreasury { guard, proposal: None });
        let transfer = direct_transfer::send_under(
            key,
            self.client.policy(),
            self.client.ledger(),
            TransferRequest {
                rpc_url: &self.rpc_url,
                network: &self.network,
                asset: self.usdc,
                to,
                amount,
                memo: input.memo.as_deref(),
                screen: self.client.compliance(),
            },
            treasury,
        )
        .await
        .map_err(|e| refusal(&e))?;
        Ok(Json(SendOutput {
            transaction: transfer.transaction,
            to: target,
            price: usd(amount),
            amount: transfer.amount,
            network: transfer.network,
        }))
    }

    /// The USDC balance of an address (default: this buyer) on the configured network.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn balance(
        &self,
        Parameters(input): Parameters<BalanceInput>,
    ) -> Result<Json<BalanceOutput>, CallToolResult> {
        let who = match &input.address {
            Some(text) => text
                .parse()
                .map_err(|_| bad_input(format!("`{text}` is not an address")))?,
            None => self.client.address(),
        };
        let balance = direct_transfer::balance(&self.rpc_url, self.usdc, who)
            .await
            .map_err(|e| refusal(&e))?;
        Ok(Json(BalanceOutput {
            address: who.to_checksum(None),
            network: self.network.to_string(),
            balance: balance.to_string(),
            usdc: usd(balance),
        }))
    }

    /// What this buyer spent: totals from the spend ledger for today, 7 or 30 days, by host or by day.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn spending_report(
        &self,
        Parameters(input): Parameters<ReportInput>,
    ) -> Result<Json<ReportOutput>, CallToolResult> {
        let period = input.period.unwrap_or_else(|| "today".into());
        let today = day_start(unix_now());
        let since = match period.as_str() {
            "today" => today,
            "7d" => today - 6 * 86_400,
            "30d" => today - 29 * 86_400,
            other => return Err(bad_input(format!("period `{other}`: use today, 7d or 30d"))),
        };
        let group_by = input.group_by.unwrap_or_else(|| "host".into());
        let by_day = match group_by.as_str() {
            "host" => false,
            "day" => true,
            other => return Err(bad_input(format!("group_by `{other}`: use host or day"))),
        };
        let rows = self
            .client
            .ledger()
            .report(self.client.address(), since, by_day)
            .await
            .map_err(|e| refusal(&PayError::Ledger(e.to_string())))?;
        let total: i64 = rows.iter().map(|r| r.total).sum();
        Ok(Json(ReportOutput {
            period,
            group_by,
            since,
            total: spend_ledger::usd(total),
            rows: rows
                .into_iter()
                .map(|r| ReportRowView {
                    price: spend_ledger::usd(r.total),
                    total: r.total.to_string(),
                    key: r.key,
                    payments: r.payments,
                })
                .collect(),
        }))
    }

    /// The spending limits a person set, what was spent today, and what remains.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn budget_status(&self, Parameters(_): Parameters<Empty>) -> Result<Json<BudgetOutput>, CallToolResult> {
        let policy = self.client.policy();
        let spent = self
            .client
            .ledger()
            .spent_since(self.client.address(), day_start(unix_now()), None)
            .await
            .map_err(|e| refusal(&PayError::Ledger(e.to_string())))?;
        let spent = U256::from(spent.max(0) as u64);
        let pending = self
            .approvals
            .pending()
            .await
            .map_err(|e| refusal(&PayError::Ledger(e.to_string())))?;
        Ok(Json(BudgetOutput {
            address: self.client.address().to_checksum(None),
            max_per_request: usd(policy.max_per_request),
            daily: Limit {
                limit: policy.daily_budget.map(usd),
                spent: usd(spent),
                remaining: policy.daily_budget.map(|l| usd(l.saturating_sub(spent))),
            },
            per_host_daily: policy.per_host_daily_budget.map(usd),
            approval_threshold: self.threshold.map(usd),
            networks: policy.networks.clone(),
            pending_approvals: pending.into_iter().map(|a| a.id).collect(),
        }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for BuyerTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_gets_what_fits_and_a_note_when_the_answer_was_cut() {
        assert_eq!(
            body_for_model(br#"{"city":"paris"}"#, false),
            (json!({"city": "paris"}), None)
        );
        let long = "y".repeat(MAX_BODY_CHARS + 10);
        let (value, note) = body_for_model(long.as_bytes(), false);
        assert_eq!(value.as_str().map(str::len), Some(MAX_BODY_CHARS));
        assert!(note.unwrap().contains("16010 characters"));
        // Cut mid-answer, inside a two-byte character: the text up to it, and a note that reading stopped.
        let mut cut = "é".repeat(100).into_bytes();
        cut.pop();
        let (value, note) = body_for_model(&cut, true);
        assert_eq!(value.as_str().map(|t| t.chars().count()), Some(99));
        assert!(note.unwrap().contains("longer than the 199 bytes read"));
        let (value, _) = body_for_model(br#"{"partial": "js"#, true);
        assert_eq!(value, json!(r#"{"partial": "js"#), "a cut JSON answer is text");
    }
}
