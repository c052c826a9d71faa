//! Local custody: the agent's own key holds and pays the organisation's USDC, and the treasury policy is
//! enforced off chain in the spend ledger. `propose` pays at once (a direct transfer through
//! `buyer::direct_transfer`, recorded in the ledger like `send_payment`) when the policy allows, refuses
//! with the rule when it denies, and records a proposal waiting for M of the N configured owners when it asks
//! for approval. An owner approves with an EIP-712 signature (`treasury::local_approval`), verified by
//! recovering the signer; the approval that reaches M executes the transfer at once (caps are checked again
//! then, in the reserving transaction, and the proposal is used up there). `execute` retries one whose
//! execution failed; `revoke` withdraws an owner's approval while the proposal waits; past
//! `proposal_ttl_seconds` a proposal expires. x402 proposals (an offer that needed approval) share the
//! table: once approved the agent pays by calling again with the proposal id (`X402Client::call_approved`).

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;

use crate::buyer::buyer_config::BuyerConfig;
use crate::buyer::direct_transfer::{self, TransferRequest, UnderTreasury};
use crate::buyer::spend_ledger::{SpendLedger, day_start, unix_now};
use crate::buyer::spending_policy::SpendingPolicy;
use crate::buyer::x402_client::PayError;
use crate::compliance::payment_check::PaymentScreen;
use crate::treasury::custody::{
    Custody, CustodyError, CustodyFuture, PaymentProposal, ProposalState, ProposalStatus, TreasuryStatus,
};
use crate::treasury::ledger_policy::TreasuryGuard;
use crate::treasury::local_approval::{self, ApprovalDomain, SignedFields};
use crate::treasury::policy_engine::PolicyRules;
use crate::treasury::proposals::{NewProposal, ProposalKind, ProposalRow, Proposals};

/// Everything local custody needs, when it is not read from a [`BuyerConfig`].
pub struct LocalCustodyParts {
    /// The agent's key: it holds the funds and pays. Never an owner.
    pub key: PrivateKeySigner,
    pub rules: PolicyRules,
    /// The `[policy]` section's rules, which still apply (asset, payee list, per-request maximum, budgets).
    pub spending_policy: SpendingPolicy,
    pub ledger: SpendLedger,
    pub rpc_url: String,
    /// CAIP-2 (`eip155:<chain id>`); its chain id is the approvals' EIP-712 chain id.
    pub network: String,
    pub usdc: Address,
}

/// Local custody over one agent key and one spend ledger.
pub struct LocalCustody {
    key: PrivateKeySigner,
    spending_policy: SpendingPolicy,
    guard: TreasuryGuard,
    rpc_url: String,
    network: String,
    chain_id: u64,
    usdc: Address,
    /// Screens the payee and the agent before each transfer is signed (`with_compliance`).
    screen: Option<PaymentScreen>,
}

fn ledger_error(e: impl std::fmt::Display) -> CustodyError {
    CustodyError::Ledger(e.to_string())
}

/// A payment error as custody reports it: refusals by rule, the rest by where they came from.
fn custody_error(error: PayError) -> CustodyError {
    match error {
        PayError::PolicyDenied { rule, message } => CustodyError::Refused { rule, message },
        PayError::OverBudget { ref scope, .. } => CustodyError::Refused {
            rule: format!("over_budget_{scope}"),
            message: error.to_string(),
        },
        PayError::Unpayable { .. } => CustodyError::Refused {
            rule: "unpayable".into(),
            message: error.to_string(),
        },
        PayError::ComplianceBlocked { .. } | PayError::ComplianceUnavailable { .. } => CustodyError::Compliance {
            kind: error.kind().to_owned(),
            message: error.to_string(),
        },
        PayError::Ledger(message) => CustodyError::Ledger(message),
        PayError::ApprovalDenied(message) => CustodyError::NotAllowed(message),
        other => CustodyError::Chain(other.to_string()),
    }
}

fn state_of(row: &ProposalRow) -> ProposalState {
    match row.state.as_str() {
        "executed" => ProposalState::Executed,
        "expired" => ProposalState::Expired,
        "cancelled" => ProposalState::Cancelled,
        // `approved` (M reached, execution failed or, for x402, the agent's retry awaited) still waits.
        _ => ProposalState::PendingApproval,
    }
}

impl LocalCustody {
    /// Local custody for a resolved buyer configuration: its local key (a Circle wallet cannot sign the
    /// transfers), its `[treasury]` rules (owners and threshold among them), `[policy]`, RPC, network and
    /// USDC, over `ledger` (opened from `config.ledger_url`).
    pub fn open(config: &BuyerConfig, ledger: SpendLedger) -> Result<Self, CustodyError> {
        let key = config.local_key.clone().ok_or_else(|| {
            CustodyError::NotAllowed("local custody needs a local key ([wallet] key_file), not a remote wallet".into())
        })?;
        let rules = config
            .treasury
            .clone()
            .ok_or_else(|| CustodyError::NotAllowed("local custody needs a [treasury] section".into()))?;
        Self::new(LocalCustodyParts {
            key,
            rules,
            spending_policy: config.policy.clone(),
            ledger,
            rpc_url: config.rpc_url.clone(),
            network: config.network.clone(),
            usdc: config.usdc,
        })
    }

    /// Local custody from its parts; refuses an agent key among the owners and a network that is not CAIP-2.
    pub fn new(parts: LocalCustodyParts) -> Result<Self, CustodyError> {
        if parts.rules.owners().contains(&parts.key.address()) {
            return Err(CustodyError::NotAllowed(format!(
                "{} is the agent's own key; an agent's key is never a treasury owner",
                parts.key.address()
            )));
        }
        let chain_id =
            protocol::network::parse_caip2(&parts.network).map_err(|e| CustodyError::Chain(format!("network: {e}")))?;
        Ok(LocalCustody {
            guard: TreasuryGuard::new(parts.rules, parts.ledger),
            key: parts.key,
            spending_policy: parts.spending_policy,
            rpc_url: parts.rpc_url,
            network: parts.network,
            chain_id,
            usdc: parts.usdc,
            screen: None,
        })
    }

    /// Every transfer out of this custody first screens its payee and the agent's key with `screen`.
    pub fn with_compliance(mut self, screen: PaymentScreen) -> Self {
        self.screen = Some(screen);
        self
    }

    fn proposals(&self) -> &Proposals {
        self.guard.proposals()
    }

    fn rules(&self) -> &PolicyRules {
        self.guard.rules()
    }

    fn domain(&self) -> ApprovalDomain {
        ApprovalDomain {
            chain_id: self.chain_id,
            agent: self.key.address(),
        }
    }

    async fn row(&self, id: u64) -> Result<ProposalRow, CustodyError> {
        self.proposals()
            .get(id, unix_now())
            .await
            .map_err(ledger_error)?
            .filter(|row| row.agent == self.key.address().to_checksum(None))
            .ok_or(CustodyError::UnknownProposal(id))
    }

    /// The approvals that count: those of owners still configured.
    async fn counted_approvers(&self, id: u64) -> Result<Vec<Address>, CustodyError> {
        let approvers = self.proposals().approvers(id).await.map_err(ledger_error)?;
        Ok(approvers
            .into_iter()
            .filter(|a| self.rules().owners().contains(a))
            .collect())
    }

    async fn status_of(&self, row: &ProposalRow) -> Result<ProposalStatus, CustodyError> {
        let approvers = self.counted_approvers(row.id()).await?;
        let mut transaction = row.tx_hash.clone();
        if transaction.is_none()
            && let Some(payment) = &row.payment_id
        {
            transaction = self
                .proposals()
                .ledger()
                .get(payment)
                .await
                .map_err(ledger_error)?
                .and_then(|p| p.tx_hash);
        }
        Ok(ProposalStatus {
            proposal_id: row.id(),
            state: state_of(row),
            to: row.to(),
            amount: row.amount().to_string(),
            approvals: approvers.len() as u64,
            required: row.required.max(0) as u64,
            approvers,
            transaction,
            expires_at: row.expires_at.max(0) as u64,
        })
    }

    fn fields<'a>(&self, row: &'a ProposalRow) -> SignedFields<'a> {
        SignedFields {
            id: row.id(),
            to: row.to(),
            amount: row.amount(),
            memo: &row.memo,
            expires_at: row.expires_at.max(0) as u64,
        }
    }

    fn transfer<'a>(&'a self, to: Address, amount: U256, memo: &'a str) -> TransferRequest<'a> {
        TransferRequest {
            rpc_url: &self.rpc_url,
            network: &self.network,
            asset: self.usdc,
            to,
            amount,
            memo: Some(memo),
            screen: self.screen.as_ref(),
        }
    }

    /// The EIP-712 digest owners sign for proposal `id` (for signing elsewhere, e.g. a hardware wallet).
    pub async fn approval_digest(&self, id: u64) -> Result<alloy::primitives::B256, CustodyError> {
        let row = self.row(id).await?;
        Ok(local_approval::signing_hash(self.domain(), &self.fields(&row)))
    }

    /// Records an owner's approval given as a signature (hex) of the proposal's typed data: the signer is
    /// recovered and must be a configured owner. The approval that reaches the threshold executes a transfer
    /// proposal at once.
    pub async fn approve_signed(&self, id: u64, signature: &str) -> Result<ProposalStatus, CustodyError> {
        let row = self.row(id).await?;
        if row.state != "pending_approval" {
            return Err(CustodyError::WrongState {
                id,
                state: state_of(&row).as_str().to_owned(),
                message: format!("only a pending proposal can be approved (it is {})", row.state),
            });
        }
        let signer = local_approval::recover(signature, self.domain(), &self.fields(&row))
            .map_err(|e| CustodyError::NotAllowed(e.to_string()))?;
        if !self.rules().owners().contains(&signer) {
            return Err(CustodyError::NotAllowed(format!(
                "{signer} signed, and is not an owner of this treasury"
            )));
        }
        let now = unix_now();
        self.proposals()
            .add_approval(id, signer, signature, now)
            .await
            .map_err(ledger_error)?;
        let approvals = self.counted_approvers(id).await?.len() as u64;
        // The threshold as configured now counts (raised since the proposal was made, it applies to it too).
        let required = (row.required.max(0) as u64).max(u64::from(self.rules().threshold()));
        if approvals >= required {
            // Only the approval that moves it executes it (two owners approving at once execute it once).
            let moved = self
                .proposals()
                .transition(id, "pending_approval", "approved", None, None, now)
                .await
                .map_err(ledger_error)?;
            if moved && row.kind == ProposalKind::Transfer.as_str() {
                return self.execute_now(id).await;
            }
        }
        self.status_of(&self.row(id).await?).await
    }

    /// Pays an approved transfer proposal, using it up in the reserving transaction. A transfer proven not
    /// to have happened (refused by the node, reverted) leaves the proposal approved for another `execute`.
    async fn execute_now(&self, id: u64) -> Result<ProposalStatus, CustodyError> {
        let row = self.row(id).await?;
        if row.state != "approved" || row.kind != ProposalKind::Transfer.as_str() {
            return Err(CustodyError::WrongState {
                id,
                state: state_of(&row).as_str().to_owned(),
                message: format!(
                    "only an approved transfer proposal can be executed (it is a {} proposal, {})",
                    row.kind, row.state
                ),
            });
        }
        let under = UnderTreasury {
            guard: &self.guard,
            proposal: Some(id),
        };
        let sent = direct_transfer::send_under(
            &self.key,
            &self.spending_policy,
            self.proposals().ledger(),
            self.transfer(row.to(), row.amount(), &row.memo),
            Some(under),
        )
        .await;
        let now = unix_now();
        match sent {
            Ok(transfer) => {
                self.proposals()
                    .transition(id, "executed", "executed", Some(&transfer.transaction), None, now)
                    .await
                    .map_err(ledger_error)?;
                self.status_of(&self.row(id).await?).await
            }
            Err(error) => {
                let after = self.row(id).await?;
                if let (Some(payment), "executed") = (&after.payment_id, after.state.as_str()) {
                    let proven_unsent = self
                        .proposals()
                        .ledger()
                        .get(payment)
                        .await
                        .map_err(ledger_error)?
                        .is_some_and(|p| p.state == "unsettled");
                    if proven_unsent {
                        self.proposals()
                            .transition(id, "executed", "approved", None, Some(&error.to_string()), now)
                            .await
                            .map_err(ledger_error)?;
                    }
                }
                Err(custody_error(error))
            }
        }
    }

    async fn propose_now(&self, proposal: &PaymentProposal) -> Result<ProposalStatus, CustodyError> {
        let under = UnderTreasury {
            guard: &self.guard,
            proposal: None,
        };
        let sent = direct_transfer::send_under(
            &self.key,
            &self.spending_policy,
            self.proposals().ledger(),
            self.transfer(proposal.to, proposal.amount, &proposal.memo),
            Some(under),
        )
        .await;
        match sent {
            Ok(transfer) => {
                let amount = i64::try_from(proposal.amount).unwrap_or(i64::MAX);
                let record = NewProposal {
                    agent: self.key.address(),
                    kind: ProposalKind::Transfer,
                    to: proposal.to,
                    amount,
                    asset: self.usdc,
                    network: &self.network,
                    memo: &proposal.memo,
                    url: None,
                    rule: "allow",
                    required: 0,
                    ttl_seconds: self.rules().proposal_ttl_seconds(),
                };
                let row = self
                    .proposals()
                    .record_executed(&record, &transfer.ledger_id, &transfer.transaction, unix_now())
                    .await
                    .map_err(ledger_error)?;
                self.status_of(&row).await
            }
            Err(PayError::NeedsApproval { proposal_id, .. }) => self.status_of(&self.row(proposal_id).await?).await,
            Err(error) => Err(custody_error(error)),
        }
    }

    async fn revoke_now(&self, id: u64, owner: Address) -> Result<ProposalStatus, CustodyError> {
        if !self.rules().owners().contains(&owner) {
            return Err(CustodyError::NotAllowed(format!(
                "{owner} is not an owner of this treasury"
            )));
        }
        let row = self.row(id).await?;
        if row.state != "pending_approval" {
            return Err(CustodyError::WrongState {
                id,
                state: state_of(&row).as_str().to_owned(),
                message: format!(
                    "only a pending proposal's approvals can be revoked (it is {})",
                    row.state
                ),
            });
        }
        if !self
            .proposals()
            .remove_approval(id, owner)
            .await
            .map_err(ledger_error)?
        {
            return Err(CustodyError::WrongState {
                id,
                state: state_of(&row).as_str().to_owned(),
                message: format!("{owner} has not approved it"),
            });
        }
        self.status_of(&self.row(id).await?).await
    }

    async fn status_now(&self) -> Result<TreasuryStatus, CustodyError> {
        let agent = self.key.address();
        let balance = direct_transfer::balance(&self.rpc_url, self.usdc, agent)
            .await
            .map_err(|e| CustodyError::Chain(e.to_string()))?;
        let remaining_today = match self.rules().daily_cap() {
            Some(cap) => {
                let spent = self
                    .proposals()
                    .ledger()
                    .spent_since(agent, day_start(unix_now()), None)
                    .await
                    .map_err(ledger_error)?;
                Some(cap.saturating_sub(U256::from(spent.max(0) as u64)).to_string())
            }
            None => None,
        };
        Ok(TreasuryStatus {
            mode: "local",
            address: agent,
            token: self.usdc,
            balance: balance.to_string(),
            owners: self.rules().owners().to_vec(),
            threshold: u64::from(self.rules().threshold()),
            spenders: vec![agent],
            remaining_today,
            proposals: self.proposals().count().await.map_err(ledger_error)?,
        })
    }
}

impl Custody for LocalCustody {
    fn status(&self) -> CustodyFuture<'_, TreasuryStatus> {
        Box::pin(self.status_now())
    }

    fn propose<'a>(&'a self, proposal: &'a PaymentProposal) -> CustodyFuture<'a, ProposalStatus> {
        Box::pin(self.propose_now(proposal))
    }

    fn proposal(&self, id: u64) -> CustodyFuture<'_, ProposalStatus> {
        Box::pin(async move { self.status_of(&self.row(id).await?).await })
    }

    fn approve<'a>(&'a self, id: u64, owner: &'a PrivateKeySigner) -> CustodyFuture<'a, ProposalStatus> {
        Box::pin(async move {
            let row = self.row(id).await?;
            let signature = local_approval::sign(owner, self.domain(), &self.fields(&row))
                .map_err(|e| CustodyError::NotAllowed(e.to_string()))?;
            self.approve_signed(id, &signature).await
        })
    }

    fn revoke<'a>(&'a self, id: u64, owner: &'a PrivateKeySigner) -> CustodyFuture<'a, ProposalStatus> {
        Box::pin(self.revoke_now(id, owner.address()))
    }

    fn execute(&self, id: u64) -> CustodyFuture<'_, ProposalStatus> {
        Box::pin(self.execute_now(id))
    }
}
