//! The custody trait: where an organisation's money sits and how a payment out of it is proposed, approved by
//! M of N owners and executed. Two implementations meet it: *local* (the agent's own key pays; proposals,
//! owner approvals and limits live in the spend ledger) and *on-chain* (the organisation's `Treasury` contract
//! holds the funds; the agent is a spender and the contract's limits are authoritative). Callers (the CLI, the
//! MCP tools, the x402 client) see only this trait.

use std::future::Future;
use std::pin::Pin;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use serde::Serialize;

/// A boxed future, so the trait stays object-safe.
pub type CustodyFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, CustodyError>> + Send + 'a>>;

/// A payment out of the treasury, as a spender asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentProposal {
    pub to: Address,
    /// Atomic units of the treasury's token.
    pub amount: U256,
    /// Free text; on chain only its keccak256 is stored.
    pub memo: String,
}

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalState {
    Executed,
    PendingApproval,
    Expired,
    Cancelled,
}

impl ProposalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalState::Executed => "executed",
            ProposalState::PendingApproval => "pending_approval",
            ProposalState::Expired => "expired",
            ProposalState::Cancelled => "cancelled",
        }
    }
}

/// One proposal as the CLI (`--json`) and the MCP tools print it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProposalStatus {
    pub proposal_id: u64,
    pub state: ProposalState,
    pub to: Address,
    /// Atomic units, decimal.
    pub amount: String,
    /// Owners whose approval counts now.
    pub approvals: u64,
    /// Approvals needed (the threshold M); 0 when the policy let it execute without any.
    pub required: u64,
    pub approvers: Vec<Address>,
    /// The transaction that moved the money (or approved the authorization), once there is one.
    pub transaction: Option<String>,
    /// Unix seconds after which a pending proposal can no longer execute.
    pub expires_at: u64,
}

/// The treasury as `treasury status` and `treasury_status` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreasuryStatus {
    /// `local` or `on_chain`.
    pub mode: &'static str,
    /// The account that holds the funds (the agent's key locally, the contract on chain).
    pub address: Address,
    pub token: Address,
    /// Atomic units, decimal.
    pub balance: String,
    pub owners: Vec<Address>,
    pub threshold: u64,
    pub spenders: Vec<Address>,
    /// What may still leave today (UTC), atomic units, decimal; `None` without a daily cap.
    pub remaining_today: Option<String>,
    pub proposals: u64,
}

/// Why custody said no, or could not answer.
#[derive(Debug, thiserror::Error)]
pub enum CustodyError {
    /// A policy rule refused it; `rule` is the machine-readable name (`daily_cap`, `per_tx_cap`, …).
    #[error("refused by the treasury policy ({rule}): {message}")]
    Refused { rule: String, message: String },
    #[error("proposal {0} does not exist")]
    UnknownProposal(u64),
    /// The proposal cannot do what was asked in its state (approve an executed one, …).
    #[error("proposal {id} is {state}: {message}")]
    WrongState { id: u64, state: String, message: String },
    /// The key is not an owner (approve, revoke) or not a spender (propose).
    #[error("{0}")]
    NotAllowed(String),
    /// Compliance screening refused the payee or the paying account (`compliance_blocked`), or could not answer
    /// (`compliance_unavailable`); nothing was proposed or sent.
    #[error("{message}")]
    Compliance { kind: String, message: String },
    #[error("chain: {0}")]
    Chain(String),
    #[error("spend ledger: {0}")]
    Ledger(String),
}

impl CustodyError {
    /// The error as one JSON object (CLI `--json`, MCP tool errors): `error` (the reason), `message`, and `rule`
    /// for a refusal, `proposal_id` and `state` for a proposal in the wrong state.
    pub fn to_json(&self) -> serde_json::Value {
        let mut document = serde_json::json!({"error": self.reason(), "message": self.to_string()});
        match self {
            CustodyError::Refused { rule, .. } => document["rule"] = serde_json::json!(rule),
            CustodyError::WrongState { id, state, .. } => {
                document["proposal_id"] = serde_json::json!(id);
                document["state"] = serde_json::json!(state);
            }
            _ => {}
        }
        document
    }

    /// The machine-readable kind: the rule for a refusal, else the error's own name.
    pub fn reason(&self) -> &str {
        match self {
            CustodyError::Refused { rule, .. } => rule,
            CustodyError::UnknownProposal(_) => "unknown_proposal",
            CustodyError::WrongState { .. } => "wrong_state",
            CustodyError::NotAllowed(_) => "not_allowed",
            CustodyError::Compliance { kind, .. } => kind,
            CustodyError::Chain(_) => "chain_error",
            CustodyError::Ledger(_) => "ledger_error",
        }
    }
}

/// Where the money is and how it leaves. `propose` executes at once when the policy allows and answers
/// `pending_approval` when M owners must approve first; the approval that reaches M executes it.
pub trait Custody: Send + Sync {
    fn status(&self) -> CustodyFuture<'_, TreasuryStatus>;
    fn propose<'a>(&'a self, proposal: &'a PaymentProposal) -> CustodyFuture<'a, ProposalStatus>;
    fn proposal(&self, id: u64) -> CustodyFuture<'_, ProposalStatus>;
    /// `owner` approves (an EIP-712 signature locally, an `approve` transaction on chain).
    fn approve<'a>(&'a self, id: u64, owner: &'a PrivateKeySigner) -> CustodyFuture<'a, ProposalStatus>;
    fn revoke<'a>(&'a self, id: u64, owner: &'a PrivateKeySigner) -> CustodyFuture<'a, ProposalStatus>;
    /// Executes an approved proposal whose execution failed or was deferred.
    fn execute(&self, id: u64) -> CustodyFuture<'_, ProposalStatus>;
}
