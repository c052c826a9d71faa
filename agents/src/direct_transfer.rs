//! A direct USDC transfer from the buyer's own key (`send_payment`), under the same spending policy as paid
//! calls: the payee allow-list, the per-request maximum and the budgets (recorded in the spend ledger before
//! the transaction is signed), and the approval gate. The transaction is sent through the configured RPC and
//! its receipt awaited.

use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;

use crate::spend_ledger::{NewSpend, SpendKind, SpendLedger, SpendState, unix_now};
use crate::spending_policy::SpendingPolicy;
use crate::x402_client::PayError;

alloy::sol! {
    #[sol(rpc)]
    interface IErc20 {
        function transfer(address to, uint256 value) external returns (bool);
        function balanceOf(address who) external view returns (uint256);
    }
}

/// A sent transfer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Transfer {
    pub transaction: String,
    pub to: Address,
    /// Atomic units.
    pub amount: String,
    pub network: String,
}

pub struct TransferRequest<'a> {
    pub rpc_url: &'a str,
    pub network: &'a str,
    pub asset: Address,
    pub to: Address,
    pub amount: U256,
    pub memo: Option<&'a str>,
}

/// Checks the policy and budgets, records the payment, sends it, and waits for its receipt.
pub async fn send(
    key: &PrivateKeySigner,
    policy: &SpendingPolicy,
    ledger: &SpendLedger,
    request: TransferRequest<'_>,
) -> Result<Transfer, PayError> {
    if request.amount.is_zero() {
        return Err(PayError::Unpayable {
            why: "the amount is zero".into(),
        });
    }
    policy.admits_payment(request.asset, request.to, request.amount)?;
    let amount = i64::try_from(request.amount).map_err(|_| PayError::Unpayable {
        why: "the amount does not fit the spend ledger".into(),
    })?;
    let target = format!(
        "transfer:{}{}",
        request.to,
        request.memo.map(|m| format!("?memo={m}")).unwrap_or_default()
    );
    let spend = NewSpend {
        kind: SpendKind::Transfer,
        url: &target,
        host: "direct-transfer",
        network: request.network,
        asset: request.asset,
        pay_to: request.to,
        payer: key.address(),
        nonce: B256::random(),
        amount,
        valid_before: None,
        tx_hash: None,
        chain_nonce: None,
    };
    let id = match ledger.reserve(&spend, policy.budgets(), unix_now()).await {
        Ok(Ok(id)) => id,
        Ok(Err(exceeded)) => return Err(exceeded.into()),
        Err(e) => return Err(PayError::Ledger(e.to_string())),
    };
    let outcome = submit(key, &request).await;
    let (state, tx, reason) = match &outcome {
        Ok(tx) => (SpendState::Settled, Some(tx.clone()), None),
        Err(TransferFailure::Reverted(tx)) => (SpendState::Unsettled, Some(tx.clone()), Some("reverted")),
        Err(TransferFailure::Unknown(_)) => (SpendState::Pending, None, Some("no_receipt")),
        Err(TransferFailure::NotSent(_)) => (SpendState::Unsettled, None, Some("not_sent")),
    };
    ledger
        .finish(&id, state, tx.as_deref(), reason)
        .await
        .map_err(|e| PayError::Ledger(e.to_string()))?;
    match outcome {
        Ok(transaction) => Ok(Transfer {
            transaction,
            to: request.to,
            amount: request.amount.to_string(),
            network: request.network.to_owned(),
        }),
        Err(TransferFailure::Reverted(tx)) => Err(PayError::SettlementFailed {
            reason: "transfer_reverted".into(),
            transaction: Some(tx),
        }),
        Err(TransferFailure::Unknown(e)) => Err(PayError::Network(format!(
            "no receipt for the transfer ({e}); it may still be mined"
        ))),
        Err(TransferFailure::NotSent(e)) => Err(PayError::Network(e)),
    }
}

enum TransferFailure {
    NotSent(String),
    Unknown(String),
    Reverted(String),
}

async fn submit(key: &PrivateKeySigner, request: &TransferRequest<'_>) -> Result<String, TransferFailure> {
    let url: url::Url = request
        .rpc_url
        .parse()
        .map_err(|e| TransferFailure::NotSent(format!("RPC URL: {e}")))?;
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key.clone()))
        .connect_http(url);
    let token = IErc20::new(request.asset, &provider);
    let pending = token
        .transfer(request.to, request.amount)
        .send()
        .await
        .map_err(|e| TransferFailure::NotSent(e.to_string()))?;
    let tx = format!("{:#x}", pending.tx_hash());
    let receipt = pending
        .with_timeout(Some(Duration::from_secs(30)))
        .get_receipt()
        .await
        .map_err(|e| TransferFailure::Unknown(e.to_string()))?;
    if receipt.status() {
        Ok(tx)
    } else {
        Err(TransferFailure::Reverted(tx))
    }
}

/// The USDC balance of `who`.
pub async fn balance(rpc_url: &str, asset: Address, who: Address) -> Result<U256, PayError> {
    let url: url::Url = rpc_url
        .parse()
        .map_err(|e| PayError::Network(format!("RPC URL: {e}")))?;
    let provider = ProviderBuilder::new().connect_http(url);
    IErc20::new(asset, &provider)
        .balanceOf(who)
        .call()
        .await
        .map_err(|e| PayError::Network(e.to_string()))
}

/// Whether the RPC answers (for start-up checks).
pub async fn reachable(rpc_url: &str) -> bool {
    match rpc_url.parse::<url::Url>() {
        Ok(url) => ProviderBuilder::new().connect_http(url).get_chain_id().await.is_ok(),
        Err(_) => false,
    }
}
