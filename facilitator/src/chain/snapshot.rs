//! Everything a verify needs from the chain about one payment, read at once: `eth_getCode(from)`, one
//! Multicall3 `aggregate3` (nonce state, balance, both blacklist entries, pause, EIP-1271 answer), and the
//! `eth_call` simulation of the settlement from the settlement address — three requests, sent concurrently.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolCall;

use super::token::{ERC1271_MAGIC, IERC1271, IFiatToken, IMulticall3};
use super::{ChainClient, ChainError};
use protocol::ExactEvmAuthorization;

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
    /// `Err(revert reason)` when the settlement would revert.
    pub simulation: Result<(), String>,
}

impl ChainClient {
    /// Reads the snapshot for one payment.
    pub async fn snapshot(&self, request: SnapshotRequest<'_>) -> Result<ChainSnapshot, ChainError> {
        let auth = request.authorization;
        let call = |target: Address, data: Vec<u8>| IMulticall3::Call3 {
            target,
            allowFailure: true,
            callData: data.into(),
        };
        let calls = vec![
            call(
                request.asset,
                IFiatToken::authorizationStateCall {
                    authorizer: auth.from,
                    nonce: auth.nonce,
                }
                .abi_encode(),
            ),
            call(
                request.asset,
                IFiatToken::balanceOfCall { account: auth.from }.abi_encode(),
            ),
            call(
                request.asset,
                IFiatToken::isBlacklistedCall { account: auth.from }.abi_encode(),
            ),
            call(
                request.asset,
                IFiatToken::isBlacklistedCall { account: auth.to }.abi_encode(),
            ),
            call(request.asset, IFiatToken::pausedCall {}.abi_encode()),
            call(
                auth.from,
                IERC1271::isValidSignatureCall {
                    hash: request.signing_hash,
                    signature: request.signature.clone(),
                }
                .abi_encode(),
            ),
        ];
        let multicall = IMulticall3::new(self.multicall3, self.provider.clone());
        let token = IFiatToken::new(request.asset, self.provider.clone());
        let aggregate = multicall.aggregate3(calls);
        let simulation_call = token
            .transferWithAuthorization(
                auth.from,
                auth.to,
                auth.value,
                auth.valid_after,
                auth.valid_before,
                auth.nonce,
                request.signature.clone(),
            )
            .from(request.simulate_from);
        let (code, results, simulation) = tokio::join!(
            self.provider.get_code_at(auth.from),
            aggregate.call(),
            simulation_call.call()
        );
        let code = code.map_err(|e| ChainError::Rpc(e.to_string()))?;
        let results = results.map_err(|e| ChainError::Rpc(e.to_string()))?;
        if results.len() != 6 {
            return Err(ChainError::Decode(format!(
                "aggregate3 returned {} results for 6 calls",
                results.len()
            )));
        }
        let decode = |i: usize, what: &str| -> Result<Bytes, ChainError> {
            let r = &results[i];
            if r.success {
                Ok(r.returnData.clone())
            } else {
                Err(ChainError::Decode(format!("{what} reverted")))
            }
        };
        let nonce_used = IFiatToken::authorizationStateCall::abi_decode_returns(&decode(0, "authorizationState")?)
            .map_err(|e| ChainError::Decode(e.to_string()))?;
        let balance = IFiatToken::balanceOfCall::abi_decode_returns(&decode(1, "balanceOf")?)
            .map_err(|e| ChainError::Decode(e.to_string()))?;
        let from_blacklisted = IFiatToken::isBlacklistedCall::abi_decode_returns(&decode(2, "isBlacklisted")?)
            .map_err(|e| ChainError::Decode(e.to_string()))?;
        let to_blacklisted = IFiatToken::isBlacklistedCall::abi_decode_returns(&decode(3, "isBlacklisted")?)
            .map_err(|e| ChainError::Decode(e.to_string()))?;
        let paused = IFiatToken::pausedCall::abi_decode_returns(&decode(4, "paused")?)
            .map_err(|e| ChainError::Decode(e.to_string()))?;
        let erc1271_valid = results[5].success
            && IERC1271::isValidSignatureCall::abi_decode_returns(&results[5].returnData)
                .map(|magic| magic.0 == ERC1271_MAGIC)
                .unwrap_or(false);
        let simulation = match simulation {
            Ok(_) => Ok(()),
            Err(e) if e.as_revert_data().is_some() || e.to_string().contains("revert") => Err(revert_reason(&e)),
            Err(e) => return Err(ChainError::Rpc(e.to_string())),
        };
        Ok(ChainSnapshot {
            from_has_code: !code.is_empty(),
            nonce_used,
            balance,
            from_blacklisted,
            to_blacklisted,
            paused,
            erc1271_valid,
            simulation,
        })
    }
}

/// The revert string of a failed call, when the contract gave one.
pub(crate) fn revert_reason(error: &alloy::contract::Error) -> String {
    if let Some(data) = error.as_revert_data()
        && let Some(reason) = alloy::sol_types::decode_revert_reason(&data)
    {
        return reason;
    }
    error.to_string()
}
