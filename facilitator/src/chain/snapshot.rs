//! Everything a verify needs from the chain about one payment: the nonce state, the balance, both blacklist
//! entries, the pause flag, (for contract wallets) the EIP-1271 answer, and a simulation of the settlement
//! itself. Whether the payer has code is cached per address, so `eth_getCode` is rarely sent.
//!
//! Concurrent verifies are coalesced: whatever is queued when the chain is free goes out as one Multicall3
//! `aggregate3` eth_call from the settlement address — every read first, then every simulated settlement —
//! so a burst of verifies costs a few round trips, not one each, and a lone verify waits for nothing. A batch
//! holds at most one payment per payer, so no simulation can see another's effects (a spent balance, a used
//! nonce). The simulation runs inside Multicall3 exactly as a batched settlement does;
//! `transferWithAuthorization` does not look at its caller.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::DynProvider;
use alloy::sol_types::SolCall;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::token::{ERC1271_MAGIC, IERC1271, IFiatToken, IMulticall3, transfer_with_authorization_calldata};
use super::{ChainClient, ChainError};
use protocol::ExactEvmAuthorization;

/// The most payments one coalesced eth_call carries (≈ 8 calls each, far below the 30M gas `eth_call` cap).
const MAX_PER_CALL: usize = 64;
/// Coalesced eth_calls in flight at once; while all are busy, new verifies gather into the next one.
const CALLS_IN_FLIGHT: usize = 4;

/// What to read.
pub struct SnapshotRequest<'a> {
    pub asset: Address,
    pub authorization: &'a ExactEvmAuthorization,
    pub signature: &'a Bytes,
    /// The EIP-712 digest, for EIP-1271 wallets.
    pub signing_hash: B256,
    /// The address the simulation sends from (a settlement signer).
    pub simulate_from: Address,
}

/// The chain's answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSnapshot {
    pub from_has_code: bool,
    pub nonce_used: bool,
    pub balance: U256,
    pub from_blacklisted: bool,
    pub to_blacklisted: bool,
    pub paused: bool,
    /// The wallet's EIP-1271 verdict (meaningful only when `from_has_code`).
    pub erc1271_valid: bool,
    /// `Err(revert reason)` when the settlement would revert; `None` when nothing was simulated (the facts
    /// came from the mirror, and settlement is the authority).
    pub simulation: Option<Result<(), String>>,
}

/// One queued snapshot.
pub(crate) struct Pending {
    asset: Address,
    authorization: ExactEvmAuthorization,
    signature: Bytes,
    signing_hash: B256,
    simulate_from: Address,
    from_has_code: bool,
    reply: oneshot::Sender<Result<ChainSnapshot, ChainError>>,
}

impl ChainSnapshot {
    /// What the mirror knows, as a snapshot: no simulation, and (the mirror never answers for a contract
    /// wallet) no EIP-1271 verdict.
    pub fn from_mirror(facts: super::mirror::state::MirroredFacts) -> Self {
        ChainSnapshot {
            from_has_code: facts.from_has_code,
            nonce_used: facts.nonce_used,
            balance: facts.balance,
            from_blacklisted: facts.from_blacklisted,
            to_blacklisted: facts.to_blacklisted,
            paused: facts.paused,
            erc1271_valid: false,
            simulation: None,
        }
    }
}

impl ChainClient {
    /// Reads the snapshot for one payment (coalesced with any others queued at the same time).
    pub async fn snapshot(&self, request: SnapshotRequest<'_>) -> Result<ChainSnapshot, ChainError> {
        let from_has_code = self.has_code(request.authorization.from).await?;
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            asset: request.asset,
            authorization: request.authorization.clone(),
            signature: request.signature.clone(),
            signing_hash: request.signing_hash,
            simulate_from: request.simulate_from,
            from_has_code,
            reply,
        };
        let queue = self.snapshot_queue.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            // The task holds the provider, not the client, so dropping the last client ends it.
            tokio::spawn(coalesce(self.provider.clone(), self.multicall3, receiver));
            sender
        });
        queue
            .send(pending)
            .map_err(|_| ChainError::Rpc("the snapshot queue has stopped".into()))?;
        answer
            .await
            .map_err(|_| ChainError::Rpc("the snapshot was dropped".into()))?
    }
}

/// Forms batches: waits for a free call slot, then takes everything queued (at most one per payer and one
/// settlement address per batch; the rest waits for the next).
async fn coalesce(provider: DynProvider, multicall3: Address, mut queue: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(Semaphore::new(CALLS_IN_FLIGHT));
    let mut deferred: VecDeque<Pending> = VecDeque::new();
    loop {
        let first = match deferred.pop_front() {
            Some(p) => p,
            None => match queue.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let simulate_from = first.simulate_from;
        let mut payers = HashSet::from([first.authorization.from]);
        let mut batch = vec![first];
        let mut admit = |p: Pending, batch: &mut Vec<Pending>, later: &mut VecDeque<Pending>| {
            if batch.len() < MAX_PER_CALL && p.simulate_from == simulate_from && payers.insert(p.authorization.from) {
                batch.push(p);
            } else {
                later.push_back(p);
            }
        };
        let mut later = VecDeque::new();
        while let Some(p) = deferred.pop_front() {
            admit(p, &mut batch, &mut later);
        }
        while batch.len() < MAX_PER_CALL {
            match queue.try_recv() {
                Ok(p) => admit(p, &mut batch, &mut later),
                Err(_) => break,
            }
        }
        deferred = later;
        let provider = provider.clone();
        tokio::spawn(async move {
            read_batch(&provider, multicall3, batch).await;
            drop(slot);
        });
    }
}

/// One eth_call for a batch; each payment gets its own snapshot (or the shared error).
async fn read_batch(provider: &DynProvider, multicall3: Address, batch: Vec<Pending>) {
    let call = |target: Address, data: Vec<u8>| IMulticall3::Call3 {
        target,
        allowFailure: true,
        callData: data.into(),
    };
    const READS: usize = 5;
    let mut calls = Vec::with_capacity(batch.len() * (READS + 2));
    for p in &batch {
        let a = &p.authorization;
        calls.push(call(
            p.asset,
            IFiatToken::authorizationStateCall {
                authorizer: a.from,
                nonce: a.nonce,
            }
            .abi_encode(),
        ));
        calls.push(call(
            p.asset,
            IFiatToken::balanceOfCall { account: a.from }.abi_encode(),
        ));
        calls.push(call(
            p.asset,
            IFiatToken::isBlacklistedCall { account: a.from }.abi_encode(),
        ));
        calls.push(call(
            p.asset,
            IFiatToken::isBlacklistedCall { account: a.to }.abi_encode(),
        ));
        calls.push(call(p.asset, IFiatToken::pausedCall {}.abi_encode()));
    }
    let mut erc1271_index = vec![None; batch.len()];
    for (i, p) in batch.iter().enumerate() {
        if p.from_has_code {
            erc1271_index[i] = Some(calls.len());
            calls.push(call(
                p.authorization.from,
                IERC1271::isValidSignatureCall {
                    hash: p.signing_hash,
                    signature: p.signature.clone(),
                }
                .abi_encode(),
            ));
        }
    }
    let first_simulation = calls.len();
    for p in &batch {
        calls.push(call(
            p.asset,
            transfer_with_authorization_calldata(&p.authorization, &p.signature).into(),
        ));
    }
    let expected = calls.len();
    let simulate_from = batch[0].simulate_from;
    let multicall = IMulticall3::new(multicall3, provider.clone());
    let results = match multicall.aggregate3(calls).from(simulate_from).call().await {
        Ok(results) if results.len() == expected => results,
        Ok(results) => {
            let e = ChainError::Decode(format!(
                "aggregate3 returned {} results for {expected} calls",
                results.len()
            ));
            return reply_all(batch, e);
        }
        Err(e) => return reply_all(batch, ChainError::Rpc(e.to_string())),
    };
    for (i, p) in batch.into_iter().enumerate() {
        let base = i * READS;
        let snapshot = decode(&results, base, erc1271_index[i], first_simulation + i, p.from_has_code);
        let _ = p.reply.send(snapshot);
    }
}

fn reply_all(batch: Vec<Pending>, error: ChainError) {
    for p in batch {
        let _ = p.reply.send(Err(error.clone()));
    }
}

fn decode(
    results: &[IMulticall3::Result],
    base: usize,
    erc1271: Option<usize>,
    simulation: usize,
    from_has_code: bool,
) -> Result<ChainSnapshot, ChainError> {
    let read = |i: usize, what: &str| -> Result<&Bytes, ChainError> {
        let r = &results[i];
        if r.success {
            Ok(&r.returnData)
        } else {
            Err(ChainError::Decode(format!("{what} reverted")))
        }
    };
    let bad = |e: alloy::sol_types::Error| ChainError::Decode(e.to_string());
    let nonce_used =
        IFiatToken::authorizationStateCall::abi_decode_returns(read(base, "authorizationState")?).map_err(bad)?;
    let balance = IFiatToken::balanceOfCall::abi_decode_returns(read(base + 1, "balanceOf")?).map_err(bad)?;
    let from_blacklisted =
        IFiatToken::isBlacklistedCall::abi_decode_returns(read(base + 2, "isBlacklisted")?).map_err(bad)?;
    let to_blacklisted =
        IFiatToken::isBlacklistedCall::abi_decode_returns(read(base + 3, "isBlacklisted")?).map_err(bad)?;
    let paused = IFiatToken::pausedCall::abi_decode_returns(read(base + 4, "paused")?).map_err(bad)?;
    let erc1271_valid = erc1271.is_some_and(|i| {
        results[i].success
            && IERC1271::isValidSignatureCall::abi_decode_returns(&results[i].returnData)
                .map(|magic| magic.0 == ERC1271_MAGIC)
                .unwrap_or(false)
    });
    let simulation = Some(if results[simulation].success {
        Ok(())
    } else {
        Err(alloy::sol_types::decode_revert_reason(&results[simulation].returnData)
            .unwrap_or_else(|| "reverted without a reason".to_owned()))
    });
    Ok(ChainSnapshot {
        from_has_code,
        nonce_used,
        balance,
        from_blacklisted,
        to_blacklisted,
        paused,
        erc1271_valid,
        simulation,
    })
}
