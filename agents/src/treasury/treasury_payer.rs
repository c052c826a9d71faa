//! Paying an x402 offer from an on-chain `Treasury` (`[wallet] treasury`): the EIP-3009 authorization names the
//! Treasury as `from`; the spender's key sends `proposeAuthorization(Transfer, payTo, amount, validAfter,
//! validBefore, nonce, keccak(url))`; below the approval threshold the contract approves its digest in the same
//! transaction (`AuthorizationApproved`), and the payment then carries empty signature bytes — the Treasury answers
//! EIP-1271 `isValidSignature` from its own approval, so USDC (and the facilitator) accept it. At or above the
//! threshold the authorization waits for M owners: `NeedsApproval` with the proposal id; once they approved it,
//! `approved_authorization` hands that very authorization back for the agent's retry (once, while it is still
//! valid). Before anything is sent the offer must be in the Treasury's token under the token's own EIP-712
//! domain, the contract digest must be the one the payment carries, and the contract's policy is checked off
//! chain (`onchain_precheck`).

use alloy::primitives::{Address, B256, Bytes, keccak256};
use alloy::signers::local::PrivateKeySigner;
use contracts::bindings::{Treasury, USDC};
use protocol::ExactEvmAuthorization;

use crate::treasury::custody::CustodyError;
use crate::treasury::onchain_custody::{OnChainCustody, event_in, mined};
use crate::treasury::onchain_revert::custody_error;

/// `AuthKind.Transfer`: the Treasury approves a `transferWithAuthorization`.
const AUTH_KIND_TRANSFER: u8 = 0;

/// Why the Treasury did not (yet) sign.
#[derive(Debug, thiserror::Error)]
pub enum TreasuryPayError {
    /// M owners must approve proposal `proposal_id` first.
    #[error("the treasury needs {required} owner approvals for this payment (proposal {proposal_id} has {approvals})")]
    NeedsApproval {
        proposal_id: u64,
        approvals: u64,
        required: u64,
    },
    /// The offer cannot be paid from this Treasury (another token, another EIP-712 domain).
    #[error("{0}")]
    Unpayable(String),
    #[error(transparent)]
    Custody(#[from] CustodyError),
}

/// The Treasury as the payer of x402 offers, with the spender key that proposes.
#[derive(Clone)]
pub struct TreasuryPayer {
    custody: OnChainCustody,
}

impl TreasuryPayer {
    pub fn new(rpc_url: &str, treasury: Address, spender: PrivateKeySigner) -> Result<Self, CustodyError> {
        Ok(TreasuryPayer {
            custody: OnChainCustody::new(rpc_url, treasury, Some(spender))?,
        })
    }

    /// The account the money leaves: the Treasury.
    pub fn address(&self) -> Address {
        self.custody.address()
    }

    /// Refuses a set-up that cannot or must not pay: the key is not one of the Treasury's spenders, or it is one
    /// of its owners (an agent's key never is). Asked once, when `pay` or `mcp` starts.
    pub async fn check_roles(&self) -> Result<(), CustodyError> {
        let agent = self.custody.sender()?.address();
        let t = Treasury::new(self.custody.address(), self.custody.reader());
        if t.isOwner(agent).call().await.map_err(|e| custody_error(&e))? {
            return Err(CustodyError::NotAllowed(format!(
                "{agent} is an owner of the treasury {}: an agent's key is never an owner",
                self.custody.address()
            )));
        }
        if !t.isSpender(agent).call().await.map_err(|e| custody_error(&e))? {
            return Err(CustodyError::NotAllowed(format!(
                "{agent} is not a spender of the treasury {}",
                self.custody.address()
            )));
        }
        Ok(())
    }

    /// Has the Treasury approve `authorization` (whose `from` is the Treasury) for `url`; returns the signature
    /// bytes the payment carries. `digest` is the EIP-712 digest under the offer's domain, `asset` its token.
    pub async fn authorize(
        &self,
        authorization: &ExactEvmAuthorization,
        digest: B256,
        asset: Address,
        url: &str,
    ) -> Result<Bytes, TreasuryPayError> {
        let treasury = self.custody.address();
        if authorization.from != treasury {
            return Err(TreasuryPayError::Unpayable(format!(
                "the authorization is from {}, not the treasury {treasury}",
                authorization.from
            )));
        }
        let spender = self.custody.sender()?.clone();
        let provider = self.custody.provider_for(&spender);
        let t = Treasury::new(treasury, &provider);
        let token = t.token().call().await.map_err(|e| custody_error(&e))?;
        if token != asset {
            return Err(TreasuryPayError::Unpayable(format!(
                "the offer is in {asset}; the treasury holds {token}"
            )));
        }
        self.custody.precheck(authorization.to, authorization.value).await?;
        let call = t.proposeAuthorization(
            AUTH_KIND_TRANSFER,
            authorization.to,
            authorization.value,
            authorization.valid_after,
            authorization.valid_before,
            authorization.nonce,
            keccak256(url.as_bytes()),
        );
        // The contract computes the digest under the token's own domain: it must be the one we pay with.
        let simulated = call.call().await.map_err(|e| custody_error(&e))?;
        if simulated.digest != digest {
            let separator = USDC::new(token, &provider).DOMAIN_SEPARATOR().call().await.ok();
            return Err(TreasuryPayError::Unpayable(format!(
                "the offer's EIP-712 domain is not the token's (domain separator {separator:?}); nothing was proposed"
            )));
        }
        let receipt = mined(call).await?;
        if event_in::<Treasury::AuthorizationApproved>(&receipt, treasury).is_some() {
            return Ok(Bytes::new());
        }
        let proposed = event_in::<Treasury::AuthorizationProposed>(&receipt, treasury).ok_or_else(|| {
            CustodyError::Chain("the proposal's receipt has no AuthorizationProposed event".to_owned())
        })?;
        let threshold = t.threshold().call().await.map_err(|e| custody_error(&e))?;
        Err(TreasuryPayError::NeedsApproval {
            proposal_id: u64::try_from(proposed.id).unwrap_or(u64::MAX),
            approvals: 0,
            required: u64::try_from(threshold).unwrap_or(u64::MAX),
        })
    }
}

/// Seconds an approved authorization must still be valid for a payment to be sent under it (the facilitator
/// refuses one about to expire).
const MIN_REMAINING_SECS: u64 = 6;

/// `ProposalKind.TransferAuthorization` and `ProposalState.Executed` as the `proposal(id)` view encodes them.
const KIND_TRANSFER_AUTHORIZATION: u8 = 1;
const STATE_EXECUTED: u8 = 1;

impl TreasuryPayer {
    /// The authorization M owners approved for proposal `id` (made by an earlier payment of `url` that answered
    /// `needs_approval`), to pay it now: it must be a transfer authorization of `amount` in `asset` to `pay_to`
    /// for this URL, approved, and still valid long enough. Returns it with the digest the Treasury approved.
    pub async fn approved_authorization(
        &self,
        id: u64,
        pay_to: Address,
        amount: alloy::primitives::U256,
        asset: Address,
        url: &str,
        now: u64,
    ) -> Result<(ExactEvmAuthorization, B256), TreasuryPayError> {
        let treasury = self.custody.address();
        let t = Treasury::new(treasury, self.custody.reader());
        let token = t.token().call().await.map_err(|e| custody_error(&e))?;
        let view = t
            .proposal(alloy::primitives::U256::from(id))
            .call()
            .await
            .map_err(|e| custody_error(&e))?;
        let unusable = |why: String| TreasuryPayError::Unpayable(format!("proposal {id} cannot pay this offer: {why}"));
        if view.kind != KIND_TRANSFER_AUTHORIZATION {
            return Err(unusable("it is not an x402 payment's authorization".into()));
        }
        if view.to != pay_to || view.amount != amount || token != asset {
            return Err(unusable(format!(
                "it pays {} to {} in {token}; the offer asks {amount} to {pay_to} in {asset}",
                view.amount, view.to
            )));
        }
        if view.memoHash != keccak256(url.as_bytes()) {
            return Err(unusable("it was made for another URL".into()));
        }
        if view.state != STATE_EXECUTED {
            let threshold = t.threshold().call().await.map_err(|e| custody_error(&e))?;
            return Err(TreasuryPayError::NeedsApproval {
                proposal_id: id,
                approvals: u64::try_from(view.approvals).unwrap_or(u64::MAX),
                required: u64::try_from(threshold).unwrap_or(u64::MAX),
            });
        }
        if view.validBefore < alloy::primitives::U256::from(now.saturating_add(MIN_REMAINING_SECS)) {
            return Err(unusable(format!(
                "its authorization expired at {} (owners approved it after the offer's time ran out); pay again \
                 to propose anew",
                view.validBefore
            )));
        }
        let used = USDC::new(token, self.custody.reader())
            .authorizationState(treasury, view.nonce)
            .call()
            .await
            .map_err(|e| custody_error(&e))?;
        if used {
            return Err(unusable(
                "its authorization has already been used (it paid once)".into(),
            ));
        }
        let authorization = ExactEvmAuthorization {
            from: treasury,
            to: view.to,
            value: view.amount,
            valid_after: view.validAfter,
            valid_before: view.validBefore,
            nonce: view.nonce,
        };
        Ok((authorization, view.digest))
    }
}

/// The treasury payer a buyer configuration names (`[wallet] treasury`), with its local key as the spender —
/// refused unless the key is a spender and not an owner.
pub async fn for_config(
    config: &crate::buyer::buyer_config::BuyerConfig,
) -> Result<Option<TreasuryPayer>, CustodyError> {
    let Some(treasury) = config.onchain_treasury else {
        return Ok(None);
    };
    let key = config.local_key.clone().ok_or_else(|| {
        CustodyError::NotAllowed("paying from a treasury needs a local spender key ([wallet] key_file)".to_owned())
    })?;
    let payer = TreasuryPayer::new(&config.rpc_url, treasury, key)?;
    payer.check_roles().await?;
    Ok(Some(payer))
}
