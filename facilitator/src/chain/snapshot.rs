//! Everything a verify needs from the chain about one payment in one round trip: a single Multicall3
//! `aggregate3` eth_call from the settlement address with the nonce state, the balance, both blacklist
//! entries, the pause flag, the settlement itself as a simulation, and (for contract wallets) the EIP-1271
//! answer. Whether the payer has code is cached per address, so `eth_getCode` is rarely sent.
//!
//! The simulation runs inside Multicall3, exactly as a batched settlement does; `transferWithAuthorization`
//! does not look at its caller, so this is the settlement's own outcome.

use alloy::primitives::{Address, B256, Bytes, U256};
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
    /// Reads the snapshot for one payment: whether `from` has code (cached per address), then one
    /// `aggregate3` eth_call from the settlement address holding every read and, last, the settlement itself
    /// (reads come first, so the simulated transfer cannot change what they see).
    pub async fn snapshot(&self, request: SnapshotRequest<'_>) -> Result<ChainSnapshot, ChainError> {
        let auth = request.authorization;
        let from_has_code = self.has_code(auth.from).await?;
        let call = |target: Address, data: Vec<u8>| IMulticall3::Call3 {
            target,
            allowFailure: true,
            callData: data.into(),
        };
        let mut calls = Vec::with_capacity(7);
        calls.push(call(
            request.asset,
            IFiatToken::authorizationStateCall {
                authorizer: auth.from,
                nonce: auth.nonce,
            }
            .abi_encode(),
        ));
        calls.push(call(
            request.asset,
            IFiatToken::balanceOfCall { account: auth.from }.abi_encode(),
        ));
        calls.push(call(
            request.asset,
            IFiatToken::isBlacklistedCall { account: auth.from }.abi_encode(),
        ));
        calls.push(call(
            request.asset,
            IFiatToken::isBlacklistedCall { account: auth.to }.abi_encode(),
        ));
        calls.push(call(request.asset, IFiatToken::pausedCall {}.abi_encode()));
        calls.push(call(
            request.asset,
            IFiatToken::transferWithAuthorizationCall {
                from: auth.from,
                to: auth.to,
                value: auth.value,
                validAfter: auth.valid_after,
                validBefore: auth.valid_before,
                nonce: auth.nonce,
                signature: request.signature.clone(),
            }
            .abi_encode(),
        ));
        if from_has_code {
            calls.push(call(
                auth.from,
                IERC1271::isValidSignatureCall {
                    hash: request.signing_hash,
                    signature: request.signature.clone(),
                }
                .abi_encode(),
            ));
        }
        let expected = calls.len();
        let multicall = IMulticall3::new(self.multicall3, self.provider.clone());
        let results = multicall
            .aggregate3(calls)
            .from(request.simulate_from)
            .call()
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))?;
        if results.len() != expected {
            return Err(ChainError::Decode(format!(
                "aggregate3 returned {} results for {expected} calls",
                results.len()
            )));
        }
        let read = |i: usize, what: &str| -> Result<&Bytes, ChainError> {
            let r = &results[i];
            if r.success {
                Ok(&r.returnData)
            } else {
                Err(ChainError::Decode(format!("{what} reverted")))
            }
        };
        let decode_err = |e: alloy::sol_types::Error| ChainError::Decode(e.to_string());
        let nonce_used = IFiatToken::authorizationStateCall::abi_decode_returns(read(0, "authorizationState")?)
            .map_err(decode_err)?;
        let balance = IFiatToken::balanceOfCall::abi_decode_returns(read(1, "balanceOf")?).map_err(decode_err)?;
        let from_blacklisted =
            IFiatToken::isBlacklistedCall::abi_decode_returns(read(2, "isBlacklisted")?).map_err(decode_err)?;
        let to_blacklisted =
            IFiatToken::isBlacklistedCall::abi_decode_returns(read(3, "isBlacklisted")?).map_err(decode_err)?;
        let paused = IFiatToken::pausedCall::abi_decode_returns(read(4, "paused")?).map_err(decode_err)?;
        let simulation = if results[5].success {
            Ok(())
        } else {
            Err(alloy::sol_types::decode_revert_reason(&results[5].returnData)
                .unwrap_or_else(|| "reverted without a reason".to_owned()))
        };
        let erc1271_valid = from_has_code
            && results[6].success
            && IERC1271::isValidSignatureCall::abi_decode_returns(&results[6].returnData)
                .map(|magic| magic.0 == ERC1271_MAGIC)
                .unwrap_or(false);
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
}
