//! A direct USDC transfer from the buyer's own key (`send_payment`), under the same spending policy and
//! compliance screen as paid calls: the payee allow-list, the per-request maximum and the budgets (recorded in
//! the spend ledger before the transaction is broadcast, with its hash), the approval gate, the screening of
//! the payee and the sender (`screen`), and with `[treasury]` the treasury policy (`send_under`). The
//! transaction is signed locally, sent through the configured RPC and its receipt awaited.

use std::time::Duration;

use alloy::consensus::Transaction as _;
use alloy::eips::eip2718::Encodable2718;
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use alloy::transports::RpcError;
use protocol::redact::redact_in;

use crate::buyer::spend_ledger::{NewSpend, SpendKind, SpendLedger, SpendState, unix_now};
use crate::buyer::spending_policy::SpendingPolicy;
use crate::buyer::x402_client::PayError;
use crate::compliance::payment_check::PaymentScreen;
use crate::treasury::ledger_policy::TreasuryGuard;
use crate::treasury::proposals::ProposalKind;

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
    /// The spend ledger's row for it.
    #[serde(skip)]
    pub ledger_id: String,
}

pub struct TransferRequest<'a> {
    pub rpc_url: &'a str,
    pub network: &'a str,
    pub asset: Address,
    pub to: Address,
    pub amount: U256,
    pub memo: Option<&'a str>,
    /// Screens the payee and the sender before the transaction is signed.
    pub screen: Option<&'a PaymentScreen>,
}

/// Checks the policy, signs the transaction, records it (budgets checked, its hash and nonce kept) and only
/// then broadcasts it and waits for its receipt. A broadcast that got no answer leaves the payment pending: it
/// counts until `nerdcabal spend reconcile` finds the transaction by its hash (or sees its nonce used by
/// another one).
pub async fn send(
    key: &PrivateKeySigner,
    policy: &SpendingPolicy,
    ledger: &SpendLedger,
    request: TransferRequest<'_>,
) -> Result<Transfer, PayError> {
    send_under(key, policy, ledger, request, None).await
}

/// The treasury policy a transfer also meets, and the approved proposal (if any) it executes.
#[derive(Debug, Clone, Copy)]
pub struct UnderTreasury<'a> {
    pub guard: &'a TreasuryGuard,
    pub proposal: Option<u64>,
}

/// [`send`], also held to the treasury policy: the history is read and the spend reserved in one ledger
/// transaction; `needs_approval` records a transfer proposal the owners' approvals execute.
pub async fn send_under(
    key: &PrivateKeySigner,
    policy: &SpendingPolicy,
    ledger: &SpendLedger,
    request: TransferRequest<'_>,
    treasury: Option<UnderTreasury<'_>>,
) -> Result<Transfer, PayError> {
    if request.amount.is_zero() {
        return Err(PayError::Unpayable {
            why: "the amount is zero".into(),
        });
    }
    policy.admits_payment(request.asset, request.to, request.amount)?;
    if let Some(screen) = request.screen {
        screen.check(request.to, key.address()).await?;
    }
    let amount = i64::try_from(request.amount).map_err(|_| PayError::Unpayable {
        why: "the amount does not fit the spend ledger".into(),
    })?;
    let target = format!(
        "transfer:{}{}",
        request.to,
        request.memo.map(|m| format!("?memo={m}")).unwrap_or_default()
    );
    if let Some(UnderTreasury { guard, proposal: None }) = treasury {
        // Refused or sent to the owners before anything is prepared on chain (the reservation decides again).
        let early = NewSpend {
            kind: SpendKind::Transfer,
            url: &target,
            host: "direct-transfer",
            network: request.network,
            asset: request.asset,
            pay_to: request.to,
            payer: key.address(),
            nonce: B256::ZERO,
            amount,
            valid_before: None,
            tx_hash: None,
            chain_nonce: None,
        };
        guard
            .precheck(&early, unix_now(), ProposalKind::Transfer, request.memo.unwrap_or(""))
            .await?;
    }
    let rpc_error = |e: &dyn std::fmt::Display| redact_in(&e.to_string(), request.rpc_url);
    let url: url::Url = request
        .rpc_url
        .parse()
        .map_err(|e| PayError::Network(format!("RPC URL: {e}")))?;
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key.clone()))
        .connect_http(url);
    let call = IErc20::transferCall {
        to: request.to,
        value: request.amount,
    };
    let unsigned = TransactionRequest::default()
        .with_from(key.address())
        .with_to(request.asset)
        .with_input(call.abi_encode());
    let envelope = provider
        .fill(unsigned)
        .await
        .map_err(|e| PayError::Network(format!("cannot prepare the transfer: {}", rpc_error(&e))))?
        .try_into_envelope()
        .map_err(|e| PayError::Signer(e.to_string()))?;
    let tx = format!("{:#x}", envelope.tx_hash());
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
        tx_hash: Some(&tx),
        chain_nonce: Some(i64::try_from(envelope.nonce()).unwrap_or(i64::MAX)),
    };
    let id = match treasury {
        Some(under) => {
            let memo = request.memo.unwrap_or("");
            under
                .guard
                .reserve(
                    &spend,
                    policy.budgets(),
                    unix_now(),
                    under.proposal,
                    ProposalKind::Transfer,
                    memo,
                )
                .await?
        }
        None => match ledger.reserve(&spend, policy.budgets(), unix_now()).await {
            Ok(Ok(id)) => id,
            Ok(Err(exceeded)) => return Err(exceeded.into()),
            Err(e) => return Err(PayError::Ledger(e.to_string())),
        },
    };
    let finish = |state: SpendState, reason: Option<&'static str>| {
        let (ledger, id, tx) = (ledger, id.clone(), tx.clone());
        async move {
            ledger
                .finish(&id, state, Some(&tx), reason)
                .await
                .map_err(|e| PayError::Ledger(e.to_string()))
        }
    };
    let pending = match provider.send_raw_transaction(&envelope.encoded_2718()).await {
        Ok(pending) => pending,
        Err(RpcError::ErrorResp(refusal)) => {
            // The node refused it: it is in no mempool, and nobody else has the signed bytes.
            finish(SpendState::Unsettled, Some("rejected")).await?;
            return Err(PayError::Network(format!("the node refused the transfer: {refusal}")));
        }
        Err(e) => {
            finish(SpendState::Pending, Some("broadcast_unknown")).await?;
            return Err(PayError::Network(format!(
                "the transfer's broadcast got no answer ({}); it may still be mined, and counts against budgets \
                 until `nerdcabal spend reconcile` finds transaction {tx}",
                rpc_error(&e)
            )));
        }
    };
    let receipt = match pending.with_timeout(Some(Duration::from_secs(30))).get_receipt().await {
        Ok(receipt) => receipt,
        Err(e) => {
            finish(SpendState::Pending, Some("no_receipt")).await?;
            return Err(PayError::Network(format!(
                "no receipt for transaction {tx} ({}); it may still be mined",
                rpc_error(&e)
            )));
        }
    };
    if !receipt.status() {
        finish(SpendState::Unsettled, Some("reverted")).await?;
        return Err(PayError::SettlementFailed {
            reason: "transfer_reverted".into(),
            transaction: Some(tx),
        });
    }
    finish(SpendState::Settled, None).await?;
    Ok(Transfer {
        transaction: tx,
        to: request.to,
        amount: request.amount.to_string(),
        network: request.network.to_owned(),
        ledger_id: id,
    })
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
        .map_err(|e| PayError::Network(redact_in(&e.to_string(), rpc_url)))
}

/// Whether the RPC answers (for start-up checks).
pub async fn reachable(rpc_url: &str) -> bool {
    match rpc_url.parse::<url::Url>() {
        Ok(url) => ProviderBuilder::new().connect_http(url).get_chain_id().await.is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_rpc_failure_does_not_repeat_the_rpc_key() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let key = "Ab3dEf9hIjKlMn0pQrStUvWx";
        let rpc = format!("http://127.0.0.1:1/v2/{key}");
        let error = balance(&rpc, protocol::network::ARC_USDC, Address::ZERO)
            .await
            .unwrap_err();
        let shown = error.to_string();
        assert!(!shown.contains(key), "{shown}");
        let policy = SpendingPolicy::default();
        let ledger = SpendLedger::open("sqlite::memory:").await.unwrap();
        let request = TransferRequest {
            rpc_url: &rpc,
            network: "eip155:5042002",
            asset: protocol::network::ARC_USDC,
            to: Address::repeat_byte(9),
            amount: U256::from(1_000),
            memo: None,
            screen: None,
        };
        let error = send(&PrivateKeySigner::random(), &policy, &ledger, request)
            .await
            .unwrap_err();
        assert!(!error.to_string().contains(key), "{error}");
        assert!(
            ledger.recent(10).await.unwrap().is_empty(),
            "nothing signed, nothing recorded"
        );
    }
}
