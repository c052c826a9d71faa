//! Point reads the settlement path makes outside a verify snapshot: a signer's nonce counts (mined and
//! pending), whether the token has used an authorization, which transaction used it (its `AuthorizationUsed`
//! log), and a payer's token balance. The chain's answer here is what decides a payment's final state.

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;

use super::token::IFiatToken;
use super::{ChainClient, ChainError};

/// How far back [`ChainClient::authorization_use`] looks for the log (nodes bound `eth_getLogs` ranges).
const LOG_LOOKBACK_BLOCKS: u64 = 50_000;

/// A signer's transaction counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceCounts {
    /// Transactions mined: the next nonce the chain will accept.
    pub latest: u64,
    /// Mined plus those the node holds ready to mine (a gap stops the count).
    pub pending: u64,
}

impl ChainClient {
    /// The signer's mined and pending transaction counts.
    pub async fn nonce_counts(&self, signer: Address) -> Result<NonceCounts, ChainError> {
        let provider = self.provider();
        let (latest, pending) = tokio::join!(
            provider.get_transaction_count(signer).latest(),
            provider.get_transaction_count(signer).pending(),
        );
        Ok(NonceCounts {
            latest: latest.map_err(|e| ChainError::Rpc(e.to_string()))?,
            pending: pending.map_err(|e| ChainError::Rpc(e.to_string()))?,
        })
    }

    /// `authorizationState(payer, nonce)`: true once the token has used (or cancelled) the authorization.
    pub async fn authorization_used(&self, asset: Address, payer: Address, nonce: B256) -> Result<bool, ChainError> {
        IFiatToken::new(asset, self.provider().clone())
            .authorizationState(payer, nonce)
            .call()
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))
    }

    /// The transaction whose `AuthorizationUsed(payer, nonce)` log the token emitted, if it is within the last
    /// [`LOG_LOOKBACK_BLOCKS`] blocks.
    pub async fn authorization_use(
        &self,
        asset: Address,
        payer: Address,
        nonce: B256,
    ) -> Result<Option<B256>, ChainError> {
        let head = self
            .provider()
            .get_block_number()
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))?;
        let filter = Filter::new()
            .address(asset)
            .event_signature(IFiatToken::AuthorizationUsed::SIGNATURE_HASH)
            .topic1(payer.into_word())
            .topic2(nonce)
            .from_block(BlockNumberOrTag::Number(head.saturating_sub(LOG_LOOKBACK_BLOCKS)))
            .to_block(BlockNumberOrTag::Latest);
        let logs = self
            .provider()
            .get_logs(&filter)
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))?;
        Ok(logs.iter().find_map(|log| log.transaction_hash))
    }

    /// The token balance of `who`.
    pub async fn token_balance(&self, asset: Address, who: Address) -> Result<U256, ChainError> {
        IFiatToken::new(asset, self.provider().clone())
            .balanceOf(who)
            .call()
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))
    }
}
