//! The follower of one token: every poll it asks the node for the latest block, checks that the block it
//! stopped at is still the chain's (same hash), and applies the token's logs of every block since, in order.
//! It reads everything again from scratch — resyncs — when the node went back (restarted, reorganised), the
//! block it stood on changed, or more blocks passed than `max_gap_blocks` (a missed stretch is never
//! guessed over). A resync reads the pause flag and every `AuthorizationUsed`/`Canceled` log of the nonce
//! window at one block, and drops every loaded address.

use std::sync::Arc;

use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, Log};
use alloy::sol_types::SolEvent;

use super::state::{Event, Head, NonceWindow};
use super::{MirrorConfig, TokenMirror};
use crate::chain::ChainError;
use crate::chain::token::IFiatToken;

/// The widest block range one `eth_getLogs` asks for (nodes bound it).
const LOG_RANGE: u64 = 5_000;

fn rpc(e: impl std::fmt::Display) -> ChainError {
    ChainError::Rpc(e.to_string())
}

/// Follows until the mirror is dropped.
pub(super) async fn run(provider: DynProvider, token: Arc<TokenMirror>, config: MirrorConfig) {
    let mut tick = tokio::time::interval(config.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // The follower's own reference is the last one: nobody reads this mirror any more.
        if Arc::strong_count(&token) == 1 {
            return;
        }
        if let Err(e) = step(&provider, &token, &config).await {
            tracing::debug!(asset = %token.asset, error = %e, "mirror poll failed");
        }
    }
}

/// One poll.
async fn step(provider: &DynProvider, token: &TokenMirror, config: &MirrorConfig) -> Result<(), ChainError> {
    let latest = header(provider, BlockNumberOrTag::Latest).await?;
    let known = token.lock().head();
    let Some(known) = known else {
        return resync(provider, token, config, latest, "first sync").await;
    };
    if latest.number < known.number {
        return resync(provider, token, config, latest, "the node went back").await;
    }
    if latest.number == known.number {
        if latest.hash != known.hash {
            return resync(provider, token, config, latest, "the head block changed").await;
        }
        token.lock().contact();
        return Ok(());
    }
    if latest.number - known.number > config.max_gap_blocks {
        return resync(provider, token, config, latest, "too many blocks since the last poll").await;
    }
    let topics = all_topics();
    let (stood_on, logs) = tokio::join!(
        header(provider, BlockNumberOrTag::Number(known.number)),
        logs(provider, token.asset, known.number + 1, latest.number, &topics),
    );
    if stood_on?.hash != known.hash {
        return resync(provider, token, config, latest, "the block the mirror stood on changed").await;
    }
    let events = logs?.iter().filter_map(decode).collect();
    token.lock().advance(latest, events);
    token.count("block");
    Ok(())
}

async fn resync(
    provider: &DynProvider,
    token: &TokenMirror,
    config: &MirrorConfig,
    at: Head,
    why: &str,
) -> Result<(), ChainError> {
    let start_block = at.number.saturating_sub(config.nonce_lookback_blocks);
    let start_time = if start_block == 0 {
        0
    } else {
        header(provider, BlockNumberOrTag::Number(start_block)).await?.timestamp
    };
    let contract = IFiatToken::new(token.asset, provider.clone());
    let paused = async { contract.paused().block(BlockId::number(at.number)).call().await };
    let nonce_topics = [
        IFiatToken::AuthorizationUsed::SIGNATURE_HASH,
        IFiatToken::AuthorizationCanceled::SIGNATURE_HASH,
    ];
    let (paused, used) = tokio::join!(
        paused,
        logs(provider, token.asset, start_block, at.number, &nonce_topics)
    );
    let used: Vec<(Address, B256)> = used?
        .iter()
        .filter_map(decode)
        .filter_map(|(_, event)| match event {
            Event::NonceUsed { authorizer, nonce } => Some((authorizer, nonce)),
            _ => None,
        })
        .collect();
    let window = NonceWindow {
        start_block,
        start_time,
    };
    token.lock().reset(at, paused.map_err(rpc)?, window, used);
    token.synced.notify_waiters();
    token.count("resync");
    tracing::info!(asset = %token.asset, block = at.number, why, "mirror resynced");
    Ok(())
}

async fn header(provider: &DynProvider, tag: BlockNumberOrTag) -> Result<Head, ChainError> {
    let block = provider
        .get_block_by_number(tag)
        .await
        .map_err(rpc)?
        .ok_or_else(|| ChainError::Rpc(format!("the node has no block {tag}")))?;
    Ok(Head {
        number: block.header.number,
        hash: block.header.hash,
        timestamp: block.header.timestamp,
    })
}

fn all_topics() -> [B256; 7] {
    [
        IFiatToken::Transfer::SIGNATURE_HASH,
        IFiatToken::AuthorizationUsed::SIGNATURE_HASH,
        IFiatToken::AuthorizationCanceled::SIGNATURE_HASH,
        IFiatToken::Blacklisted::SIGNATURE_HASH,
        IFiatToken::UnBlacklisted::SIGNATURE_HASH,
        IFiatToken::Pause::SIGNATURE_HASH,
        IFiatToken::Unpause::SIGNATURE_HASH,
    ]
}

/// The token's logs with one of `topics` in `from..=to`, in chain order.
async fn logs(
    provider: &DynProvider,
    asset: Address,
    from: u64,
    to: u64,
    topics: &[B256],
) -> Result<Vec<Log>, ChainError> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let end = to.min(start + LOG_RANGE - 1);
        let filter = Filter::new()
            .address(asset)
            .event_signature(topics.to_vec())
            .from_block(start)
            .to_block(end);
        out.extend(provider.get_logs(&filter).await.map_err(rpc)?);
        start = end + 1;
    }
    Ok(out)
}

/// A log as the mirror's event (with its block), or nothing for a log it does not follow.
fn decode(log: &Log) -> Option<(u64, Event)> {
    let block = log.block_number?;
    let topic = *log.topic0()?;
    let event = if topic == IFiatToken::Transfer::SIGNATURE_HASH {
        let e = IFiatToken::Transfer::decode_log(&log.inner).ok()?;
        Event::Transfer {
            from: e.from,
            to: e.to,
            value: e.value,
        }
    } else if topic == IFiatToken::AuthorizationUsed::SIGNATURE_HASH {
        let e = IFiatToken::AuthorizationUsed::decode_log(&log.inner).ok()?;
        Event::NonceUsed {
            authorizer: e.authorizer,
            nonce: e.nonce,
        }
    } else if topic == IFiatToken::AuthorizationCanceled::SIGNATURE_HASH {
        let e = IFiatToken::AuthorizationCanceled::decode_log(&log.inner).ok()?;
        Event::NonceUsed {
            authorizer: e.authorizer,
            nonce: e.nonce,
        }
    } else if topic == IFiatToken::Blacklisted::SIGNATURE_HASH {
        Event::Blacklisted(IFiatToken::Blacklisted::decode_log(&log.inner).ok()?._account)
    } else if topic == IFiatToken::UnBlacklisted::SIGNATURE_HASH {
        Event::UnBlacklisted(IFiatToken::UnBlacklisted::decode_log(&log.inner).ok()?._account)
    } else if topic == IFiatToken::Pause::SIGNATURE_HASH {
        Event::Pause
    } else if topic == IFiatToken::Unpause::SIGNATURE_HASH {
        Event::Unpause
    } else {
        return None;
    };
    Some((block, event))
}
