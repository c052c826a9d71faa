//! Settling, from the chain, the fate of payments the buyer could not see concluded (signed or pending rows of
//! the spend ledger). An x402 payment is settled once its authorization is used (`authorizationState` true)
//! and unsettled once the chain's clock is past its `validBefore` with the authorization still unused; a
//! direct transfer is found by its transaction hash (settled, or unsettled when it reverted) or is unsettled
//! once another transaction took its account nonce. Everything else stays pending, and counted. All reads are
//! pinned to one block, so an answer cannot straddle a new block.

use std::time::Duration;

use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use protocol::redact::redact_in;

use crate::buyer::spend_ledger::{OpenScope, SpendLedger, SpendLedgerError, SpendRecord, SpendState, unix_now};

alloy::sol! {
    #[sol(rpc)]
    interface IEip3009State {
        function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
    }
}

/// How many open payments `pay` and `mcp` look at when they start, and how long they give the chain.
pub const AT_START_LIMIT: i64 = 32;
pub const AT_START_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Ledger(#[from] SpendLedgerError),
    #[error("RPC URL: {0}")]
    BadUrl(String),
    #[error("the chain did not answer: {0}")]
    Rpc(String),
}

/// What the chain said about one payment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Resolution {
    pub id: String,
    pub kind: String,
    pub url: String,
    pub amount: i64,
    /// `settled`, `unsettled`, or `pending` (not decided yet).
    pub state: &'static str,
    pub reason: String,
    pub tx_hash: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    pub network: String,
    /// The block every answer was read at, and its timestamp.
    pub block: u64,
    pub chain_time: i64,
    /// Open payments on this network that were asked about (the cheap pass skips authorizations that are
    /// still valid).
    pub checked: usize,
    pub settled: usize,
    pub unsettled: usize,
    pub pending: usize,
    /// Open payments on other networks (this RPC cannot decide them).
    pub other_networks: usize,
    pub payments: Vec<Resolution>,
}

/// Asks the chain behind `rpc_url` (CAIP-2 `network`) about the open payments in `scope`, and records every
/// answer that decides one. No RPC call is made when there is nothing to ask.
pub async fn reconcile(
    ledger: &SpendLedger,
    rpc_url: &str,
    network: &str,
    scope: OpenScope,
) -> Result<ReconcileReport, ReconcileError> {
    let open = ledger.open_payments(scope).await?;
    let (mine, other): (Vec<SpendRecord>, Vec<SpendRecord>) = open.into_iter().partition(|r| r.network == network);
    let mut report = ReconcileReport {
        network: network.to_owned(),
        other_networks: other.len(),
        ..ReconcileReport::default()
    };
    if mine.is_empty() {
        return Ok(report);
    }
    let rpc = |e: &dyn std::fmt::Display| ReconcileError::Rpc(redact_in(&e.to_string(), rpc_url));
    let url: url::Url = rpc_url
        .parse()
        .map_err(|e: url::ParseError| ReconcileError::BadUrl(e.to_string()))?;
    let provider = ProviderBuilder::new().connect_http(url).erased();
    let block = provider
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .map_err(|e| rpc(&e))?
        .ok_or_else(|| ReconcileError::Rpc("no latest block".into()))?;
    report.block = block.header.number;
    report.chain_time = i64::try_from(block.header.timestamp).unwrap_or(i64::MAX);
    let at = BlockId::number(report.block);
    let cheap = matches!(scope, OpenScope::Today { .. });
    for row in mine {
        // The cheap pass asks only about what the chain can decide now: an authorization before its
        // `validBefore` could only be found used, which changes no budget.
        if cheap && row.kind == "x402" && row.valid_before.is_some_and(|v| v > report.chain_time) {
            continue;
        }
        let (state, reason, tx_hash) = match row.kind.as_str() {
            "transfer" => decide_transfer(&provider, &row, at).await.map_err(|e| rpc(&e))?,
            _ => decide_authorization(&provider, &row, at, report.chain_time)
                .await
                .map_err(|e| rpc(&e))?,
        };
        report.checked += 1;
        let shown = match state {
            Some(state) => {
                ledger.finish(&row.id, state, tx_hash.as_deref(), Some(reason)).await?;
                if state == SpendState::Settled {
                    report.settled += 1;
                } else {
                    report.unsettled += 1;
                }
                state.as_str()
            }
            None => {
                report.pending += 1;
                "pending"
            }
        };
        report.payments.push(Resolution {
            id: row.id,
            kind: row.kind,
            url: row.url,
            amount: row.amount,
            state: shown,
            reason: reason.to_owned(),
            tx_hash: tx_hash.or(row.tx_hash),
        });
    }
    Ok(report)
}

type Decision = (Option<SpendState>, &'static str, Option<String>);

async fn decide_authorization(
    provider: &DynProvider,
    row: &SpendRecord,
    at: BlockId,
    chain_time: i64,
) -> Result<Decision, alloy::contract::Error> {
    let (Ok(asset), Ok(payer), Ok(nonce)) = (
        row.asset.parse::<Address>(),
        row.payer.parse::<Address>(),
        row.nonce.parse::<B256>(),
    ) else {
        return Ok((None, "unreadable_row", None));
    };
    let used = IEip3009State::new(asset, provider)
        .authorizationState(payer, nonce)
        .block(at)
        .call()
        .await?;
    if used {
        return Ok((Some(SpendState::Settled), "authorization_used", None));
    }
    match row.valid_before {
        Some(valid_before) if chain_time >= valid_before => {
            Ok((Some(SpendState::Unsettled), "authorization_expired_unused", None))
        }
        Some(_) => Ok((None, "authorization_unused_still_valid", None)),
        None => Ok((None, "no_valid_before", None)),
    }
}

async fn decide_transfer(
    provider: &DynProvider,
    row: &SpendRecord,
    at: BlockId,
) -> Result<Decision, alloy::transports::TransportError> {
    let Some(hash) = row.tx_hash.as_deref().and_then(|h| h.parse::<B256>().ok()) else {
        return Ok((None, "no_transaction_hash", None));
    };
    let Ok(payer) = row.payer.parse::<Address>() else {
        return Ok((None, "unreadable_row", None));
    };
    // The nonce as of the pinned block first, then the receipt: a transaction mined by that block has one.
    let used_nonces = provider.get_transaction_count(payer).block_id(at).await?;
    if let Some(receipt) = provider.get_transaction_receipt(hash).await? {
        return Ok(if receipt.status() {
            (
                Some(SpendState::Settled),
                "transaction_mined",
                Some(format!("{hash:#x}")),
            )
        } else {
            (Some(SpendState::Unsettled), "reverted", Some(format!("{hash:#x}")))
        });
    }
    match row.chain_nonce {
        Some(nonce) if used_nonces > u64::try_from(nonce).unwrap_or(u64::MAX) => {
            Ok((Some(SpendState::Unsettled), "nonce_used_by_another_transaction", None))
        }
        _ => Ok((None, "transaction_not_mined", None)),
    }
}

/// The cheap check `pay` and `mcp` make as they start: today's open payments (a few at most) that the chain
/// can decide now, within a few seconds; nothing is asked when none is open. It never stops the command: a silent chain is logged and left for later.
pub async fn at_start(ledger: &SpendLedger, rpc_url: &str, network: &str) {
    let scope = OpenScope::Today {
        now: unix_now(),
        limit: AT_START_LIMIT,
    };
    match tokio::time::timeout(AT_START_TIMEOUT, reconcile(ledger, rpc_url, network, scope)).await {
        Ok(Ok(report)) if report.checked > 0 => tracing::info!(
            checked = report.checked,
            settled = report.settled,
            unsettled = report.unsettled,
            pending = report.pending,
            "reconciled open payments"
        ),
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(%error, "cannot reconcile open payments now"),
        Err(_) => tracing::warn!("reconciling open payments took too long; left for later"),
    }
}
