//! Final states from the chain's word. A payment is confirmed when a mined transaction used its authorization.
//! Before any row is written `failed`, `authorizationState` is read: a payment the token shows as used is
//! confirmed instead (with the transaction whose `AuthorizationUsed` log says so). Why an unused payment failed
//! decides whether a later settle may take it on again: a payer short of funds is final, a transaction that
//! ran out of gas or that the node refused is not.

use alloy::primitives::{B256, U256};
use protocol::reason;

use super::submit::Mined;
use crate::chain::ChainClient;
use crate::ledger::{Failure, Ledger, SettlementKey};

/// One payment a transaction carries, with what the ledger knows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub key: SettlementKey,
    pub amount: U256,
}

/// Where one payment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Confirmed(B256),
    Failed(Failure),
    /// The chain or the ledger could not be read or written: the row is left as it was, for the reconciler.
    Unknown(String),
}

/// Records the outcome of a mined transaction for every payment it carried: confirmed where it used the
/// authorization; otherwise the failure is diagnosed (`what_failed` says what went wrong) and written unless
/// the chain shows the payment used after all.
pub async fn record_mined(
    chain: &ChainClient,
    ledger: &Ledger,
    tx_hash: B256,
    mined: &Mined,
    gas_limit: u64,
    targets: &[Target],
    what_failed: &str,
) -> Vec<Verdict> {
    let confirmed: Vec<SettlementKey> = targets
        .iter()
        .filter(|t| mined.used(t.key.asset, t.key.payer, t.key.nonce))
        .map(|t| t.key.clone())
        .collect();
    let recorded = if confirmed.is_empty() {
        Ok(0)
    } else {
        ledger.mark_batch_outcomes(tx_hash, &confirmed, &[], "", "").await
    };
    let mut verdicts = Vec::with_capacity(targets.len());
    for target in targets {
        if confirmed.contains(&target.key) {
            verdicts.push(match &recorded {
                Ok(_) => Verdict::Confirmed(tx_hash),
                Err(e) => Verdict::Unknown(format!("confirmed on chain, not recorded: {e}")),
            });
            continue;
        }
        let failure = if !mined.succeeded && mined.gas_used >= gas_limit {
            Failure::transient(
                reason::UNEXPECTED_SETTLE_ERROR,
                "the settlement transaction ran out of gas",
            )
        } else {
            diagnose(chain, target, what_failed).await
        };
        verdicts.push(fail_unless_used(chain, ledger, &target.key, failure, Some(tx_hash)).await);
    }
    verdicts
}

/// Why a mined call did not use an unused authorization: the payer's balance, else the call's own failure.
/// Both are the payment's own, so final.
async fn diagnose(chain: &ChainClient, target: &Target, what_failed: &str) -> Failure {
    match chain.token_balance(target.key.asset, target.key.payer).await {
        Ok(balance) if balance < target.amount => Failure::permanent(
            reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE,
            format!(
                "the payer's balance ({balance}) was below the amount ({}) when the settlement ran",
                target.amount
            ),
        ),
        _ => Failure::permanent(reason::INVALID_EXACT_EVM_TRANSACTION_FAILED, what_failed),
    }
}

/// Writes `failure` for `key` — unless the token shows the authorization used, in which case the payment is
/// confirmed. When the chain cannot be read nothing is written.
pub async fn fail_unless_used(
    chain: &ChainClient,
    ledger: &Ledger,
    key: &SettlementKey,
    failure: Failure,
    tx_hash: Option<B256>,
) -> Verdict {
    match chain.authorization_used(key.asset, key.payer, key.nonce).await {
        Ok(true) => confirm_used(chain, ledger, key, tx_hash).await,
        Ok(false) => match ledger
            .mark_many_failed(std::slice::from_ref(key), &failure, tx_hash)
            .await
        {
            Ok(_) => Verdict::Failed(failure),
            Err(e) => Verdict::Unknown(format!("recording the failure: {e}")),
        },
        Err(e) => Verdict::Unknown(format!("reading authorizationState: {e}")),
    }
}

/// Confirms a payment the token shows as used, with the transaction that used it (`hint` if its log is not
/// found).
pub async fn confirm_used(chain: &ChainClient, ledger: &Ledger, key: &SettlementKey, hint: Option<B256>) -> Verdict {
    let found = chain
        .authorization_use(key.asset, key.payer, key.nonce)
        .await
        .ok()
        .flatten();
    let Some(tx_hash) = found.or(hint) else {
        return Verdict::Unknown("the authorization is used on chain but its transaction was not found".into());
    };
    match ledger
        .mark_batch_outcomes(tx_hash, std::slice::from_ref(key), &[], "", "")
        .await
    {
        Ok(_) => Verdict::Confirmed(tx_hash),
        Err(e) => Verdict::Unknown(format!("confirmed on chain, not recorded: {e}")),
    }
}
