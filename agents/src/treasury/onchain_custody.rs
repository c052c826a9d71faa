//! On-chain custody: an organisation's `Treasury` contract holds the funds and its limits are authoritative.
//! The agent's key is a spender (`proposePayment`, executed in the same transaction below the approval
//! threshold); owners' keys send `approve` (the approval that reaches M also sends `execute`, at once) and
//! `revokeApproval`. Before anything is sent, the contract's policy and remaining allowance are read and the
//! payment refused early with the contract's own reasons (`onchain_precheck`); a call is simulated before it is
//! sent, so a revert is decoded (`onchain_revert`) and nothing is mined for it. Proposal ids come from the
//! `PaymentProposed` event of the mined receipt; the executing transaction of an older proposal from its
//! `PaymentExecuted` / `AuthorizationApproved` log.

use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, TxHash, U256, keccak256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, TransactionReceipt};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent};
use contracts::bindings::{IEip3009, Treasury};

use crate::compliance::payment_check::PaymentScreen;
use crate::treasury::custody::{
    Custody, CustodyError, CustodyFuture, PaymentProposal, ProposalState, ProposalStatus, TreasuryStatus,
};
use crate::treasury::onchain_precheck::{ChainFacts, Expect, precheck};
use crate::treasury::onchain_revert::custody_error;

/// How long a sent transaction may take to be mined.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// A `Treasury` at `treasury`, read over `rpc`; `sender` (a spender) proposes and executes.
#[derive(Clone)]
pub struct OnChainCustody {
    treasury: Address,
    rpc: url::Url,
    reader: DynProvider,
    sender: Option<PrivateKeySigner>,
    /// Screens the payee and the Treasury before anything is proposed or executed (`with_compliance`).
    screen: Option<PaymentScreen>,
}

fn chain(error: impl std::fmt::Display) -> CustodyError {
    CustodyError::Chain(error.to_string())
}

fn to_u64(value: U256) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// The first `E` event the treasury emitted in `receipt`.
pub(crate) fn event_in<E: SolEvent>(receipt: &TransactionReceipt, treasury: Address) -> Option<E> {
    receipt
        .inner
        .logs()
        .iter()
        .filter(|log| log.address() == treasury)
        .find_map(|log| E::decode_log(&log.inner).ok().map(|decoded| decoded.data))
}

/// Simulates `call`, then sends it and waits for a successful receipt; a revert is decoded either way.
pub(crate) async fn mined<P: Provider, C: SolCall>(
    call: alloy::contract::SolCallBuilder<P, C>,
) -> Result<TransactionReceipt, CustodyError> {
    call.call().await.map_err(|e| custody_error(&e))?;
    let pending = call.send().await.map_err(|e| custody_error(&e))?;
    let receipt = pending
        .with_timeout(Some(RECEIPT_TIMEOUT))
        .get_receipt()
        .await
        .map_err(chain)?;
    if !receipt.status() {
        return Err(CustodyError::Chain(format!(
            "transaction {} reverted",
            receipt.transaction_hash
        )));
    }
    Ok(receipt)
}

impl OnChainCustody {
    pub fn new(rpc_url: &str, treasury: Address, sender: Option<PrivateKeySigner>) -> Result<Self, CustodyError> {
        let rpc = url::Url::parse(rpc_url).map_err(|e| chain(format!("rpc_url `{rpc_url}`: {e}")))?;
        let reader = ProviderBuilder::new().connect_http(rpc.clone()).erased();
        Ok(OnChainCustody {
            treasury,
            rpc,
            reader,
            sender,
            screen: None,
        })
    }

    /// Every proposal and every execution first screens its payee and the Treasury with `screen`.
    pub fn with_compliance(mut self, screen: PaymentScreen) -> Self {
        self.screen = Some(screen);
        self
    }

    /// Compliance before money moves: the payee and the paying Treasury must both be clear.
    async fn screen_payment(&self, to: Address) -> Result<(), CustodyError> {
        let Some(screen) = &self.screen else {
            return Ok(());
        };
        screen
            .check(to, self.treasury)
            .await
            .map_err(|error| CustodyError::Compliance {
                kind: error.kind().to_owned(),
                message: error.to_string(),
            })
    }

    pub fn address(&self) -> Address {
        self.treasury
    }

    /// A provider that signs with `key`.
    pub(crate) fn provider_for(&self, key: &PrivateKeySigner) -> DynProvider {
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(key.clone()))
            .connect_http(self.rpc.clone())
            .erased()
    }

    pub(crate) fn sender(&self) -> Result<&PrivateKeySigner, CustodyError> {
        self.sender
            .as_ref()
            .ok_or_else(|| CustodyError::NotAllowed("no spender key: set [wallet] key_file or --key-file".to_owned()))
    }

    /// The read-only provider.
    pub(crate) fn reader(&self) -> &DynProvider {
        &self.reader
    }

    fn reading(&self) -> Treasury::TreasuryInstance<&DynProvider> {
        Treasury::new(self.treasury, &self.reader)
    }

    /// The policy and facts the contract will check a payment of `amount` to `to` by `caller` against.
    pub async fn facts(&self, to: Address, caller: Address) -> Result<ChainFacts, CustodyError> {
        let t = self.reading();
        let policy = t.policy().call().await.map_err(|e| custody_error(&e))?;
        let remaining = t
            .remainingDailyAllowance()
            .call()
            .await
            .map_err(|e| custody_error(&e))?;
        let recipient_allowed = t.isRecipientAllowed(to).call().await.map_err(|e| custody_error(&e))?;
        let caller_is_spender = t.isSpender(caller).call().await.map_err(|e| custody_error(&e))?;
        let caller_is_owner = t.isOwner(caller).call().await.map_err(|e| custody_error(&e))?;
        Ok(ChainFacts {
            per_tx_limit: policy.perTxLimit,
            daily_limit: policy.dailyLimit,
            remaining_today: remaining,
            approval_threshold: policy.approvalThreshold,
            allow_list_enabled: policy.allowListEnabled,
            recipient_allowed,
            caller_is_spender,
            caller_is_owner,
        })
    }

    /// The early refusal for a payment from the sender, before anything is signed.
    pub async fn precheck(&self, to: Address, amount: U256) -> Result<Expect, CustodyError> {
        let sender = self.sender()?.address();
        precheck(to, amount, &self.facts(to, sender).await?)
    }

    /// The spenders, from the `SpenderSet` events (the contract keeps no list).
    async fn spenders(&self) -> Result<Vec<Address>, CustodyError> {
        let filter = Filter::new()
            .address(self.treasury)
            .event_signature(Treasury::SpenderSet::SIGNATURE_HASH)
            .from_block(0);
        let logs = self.reader.get_logs(&filter).await.map_err(chain)?;
        let mut spenders: Vec<Address> = Vec::new();
        for log in logs {
            let Ok(set) = Treasury::SpenderSet::decode_log(&log.inner) else {
                continue;
            };
            spenders.retain(|s| *s != set.spender);
            if set.allowed {
                spenders.push(set.spender);
            }
        }
        Ok(spenders)
    }

    /// The transaction that executed proposal `id` (moved the payment or approved the authorization).
    async fn execution_of(&self, id: u64) -> Result<Option<TxHash>, CustodyError> {
        let filter = Filter::new()
            .address(self.treasury)
            .event_signature(vec![
                Treasury::PaymentExecuted::SIGNATURE_HASH,
                Treasury::AuthorizationApproved::SIGNATURE_HASH,
            ])
            .topic1(B256::from(U256::from(id)))
            .from_block(0);
        let logs = self.reader.get_logs(&filter).await.map_err(chain)?;
        Ok(logs.first().and_then(|log| log.transaction_hash))
    }

    /// Proposal `id` as it stands, with `executed_in` when the caller already knows the executing transaction.
    async fn status_of(&self, id: u64, executed_in: Option<TxHash>) -> Result<ProposalStatus, CustodyError> {
        let t = self.reading();
        let view = t.proposal(U256::from(id)).call().await.map_err(|e| custody_error(&e))?;
        let approvers = t
            .approvers(U256::from(id))
            .call()
            .await
            .map_err(|e| custody_error(&e))?;
        let threshold = t.threshold().call().await.map_err(|e| custody_error(&e))?;
        let state = match view.state {
            0 => ProposalState::PendingApproval,
            1 => ProposalState::Executed,
            2 => ProposalState::Cancelled,
            _ => ProposalState::Expired,
        };
        let transaction = match (state, executed_in) {
            (ProposalState::Executed, Some(tx)) => Some(tx),
            (ProposalState::Executed, None) => self.execution_of(id).await?,
            _ => None,
        };
        Ok(ProposalStatus {
            proposal_id: id,
            state,
            to: view.to,
            amount: view.amount.to_string(),
            approvals: to_u64(view.approvals),
            required: if view.needsApproval { to_u64(threshold) } else { 0 },
            approvers,
            transaction: transaction.map(|tx| tx.to_string()),
            expires_at: view.expiresAt,
        })
    }

    async fn do_status(&self) -> Result<TreasuryStatus, CustodyError> {
        let t = self.reading();
        let token = t.token().call().await.map_err(|e| custody_error(&e))?;
        let balance = IEip3009::new(token, &self.reader)
            .balanceOf(self.treasury)
            .call()
            .await
            .map_err(|e| custody_error(&e))?;
        Ok(TreasuryStatus {
            mode: "on_chain",
            address: self.treasury,
            token,
            balance: balance.to_string(),
            owners: t.owners().call().await.map_err(|e| custody_error(&e))?,
            threshold: to_u64(t.threshold().call().await.map_err(|e| custody_error(&e))?),
            spenders: self.spenders().await?,
            remaining_today: Some(
                t.remainingDailyAllowance()
                    .call()
                    .await
                    .map_err(|e| custody_error(&e))?
                    .to_string(),
            ),
            proposals: to_u64(t.proposalCount().call().await.map_err(|e| custody_error(&e))?),
        })
    }

    async fn do_propose(&self, proposal: &PaymentProposal) -> Result<ProposalStatus, CustodyError> {
        self.screen_payment(proposal.to).await?;
        self.precheck(proposal.to, proposal.amount).await?;
        let provider = self.provider_for(self.sender()?);
        let t = Treasury::new(self.treasury, &provider);
        let receipt =
            mined(t.proposePayment(proposal.to, proposal.amount, keccak256(proposal.memo.as_bytes()))).await?;
        let proposed = event_in::<Treasury::PaymentProposed>(&receipt, self.treasury)
            .ok_or_else(|| chain("the proposal's receipt has no PaymentProposed event"))?;
        let executed = event_in::<Treasury::PaymentExecuted>(&receipt, self.treasury).map(|_| receipt.transaction_hash);
        self.status_of(to_u64(proposed.id), executed).await
    }

    async fn do_approve(&self, id: u64, owner: &PrivateKeySigner) -> Result<ProposalStatus, CustodyError> {
        let provider = self.provider_for(owner);
        let t = Treasury::new(self.treasury, &provider);
        mined(t.approve(U256::from(id))).await?;
        let status = self.status_of(id, None).await?;
        if status.state != ProposalState::PendingApproval || status.approvals < status.required {
            return Ok(status);
        }
        // A payee listed since the proposal was made is not paid (the approval stands).
        self.screen_payment(status.to).await?;
        // This approval reached M: execute at once, in the same call. The approval stands if execution is
        // refused (the day's allowance went meanwhile): `execute` retries it.
        let receipt = match mined(t.execute(U256::from(id))).await {
            Ok(receipt) => receipt,
            Err(CustodyError::Refused { rule, message }) => {
                return Err(CustodyError::Refused {
                    rule,
                    message: format!(
                        "approved ({} of {}), but execution was refused: {message}; `treasury execute {id}` retries",
                        status.approvals, status.required
                    ),
                });
            }
            Err(other) => return Err(other),
        };
        self.status_of(id, Some(receipt.transaction_hash)).await
    }

    async fn do_revoke(&self, id: u64, owner: &PrivateKeySigner) -> Result<ProposalStatus, CustodyError> {
        let provider = self.provider_for(owner);
        mined(Treasury::new(self.treasury, &provider).revokeApproval(U256::from(id))).await?;
        self.status_of(id, None).await
    }

    async fn do_execute(&self, id: u64) -> Result<ProposalStatus, CustodyError> {
        if self.screen.is_some() {
            let view = self
                .reading()
                .proposal(U256::from(id))
                .call()
                .await
                .map_err(|e| custody_error(&e))?;
            self.screen_payment(view.to).await?;
        }
        let provider = self.provider_for(self.sender()?);
        let receipt = mined(Treasury::new(self.treasury, &provider).execute(U256::from(id))).await?;
        self.status_of(id, Some(receipt.transaction_hash)).await
    }
}

impl Custody for OnChainCustody {
    fn status(&self) -> CustodyFuture<'_, TreasuryStatus> {
        Box::pin(self.do_status())
    }

    fn propose<'a>(&'a self, proposal: &'a PaymentProposal) -> CustodyFuture<'a, ProposalStatus> {
        Box::pin(self.do_propose(proposal))
    }

    fn proposal(&self, id: u64) -> CustodyFuture<'_, ProposalStatus> {
        Box::pin(self.status_of(id, None))
    }

    fn approve<'a>(&'a self, id: u64, owner: &'a PrivateKeySigner) -> CustodyFuture<'a, ProposalStatus> {
        Box::pin(self.do_approve(id, owner))
    }

    fn revoke<'a>(&'a self, id: u64, owner: &'a PrivateKeySigner) -> CustodyFuture<'a, ProposalStatus> {
        Box::pin(self.do_revoke(id, owner))
    }

    fn execute(&self, id: u64) -> CustodyFuture<'_, ProposalStatus> {
        Box::pin(self.do_execute(id))
    }
}
