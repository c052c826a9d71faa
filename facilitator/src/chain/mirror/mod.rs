//! The live chain-state mirror: per token, what a verify reads — balances, authorization (nonce) states,
//! blacklisting, the pause flag, code presence — so a verify whose entries are fresh sends no RPC at all.
//! A token's mirror starts on the first verify that names it: a follower task ([`follow`]) syncs it and keeps
//! it current block by block from the token's logs; each address is loaded on first use (one `aggregate3`
//! and one `eth_getCode` at the mirror's own block, then brought up to the head with the recent logs) and
//! read again when it is older than the configured bounds or a payment of its payer failed. Balances are
//! advisory (on Arc gas is paid in USDC without a log): settlement stays the authority. Whatever the mirror
//! cannot answer — not synced, follower silent, address not loaded or stale, a nonce older than its window,
//! a contract wallet (EIP-1271 needs a call) — sends the verify to the chain as before.

mod follow;
pub mod state;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use alloy::eips::BlockId;
use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider};
use alloy::sol_types::SolCall;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use protocol::ExactEvmAuthorization;

use super::ChainError;
use super::token::{IFiatToken, IMulticall3};
use state::{Freshness, Loaded, MirroredFacts, TokenState};

/// How long a load waits for the token's first sync.
const SYNC_WAIT: Duration = Duration::from_secs(5);

/// Mirror settings (`[mirror]`).
#[derive(Debug, Clone, Copy)]
pub struct MirrorConfig {
    pub poll_interval: Duration,
    pub max_entry_age: Duration,
    pub max_balance_age_blocks: u64,
    pub max_gap_blocks: u64,
    pub nonce_lookback_blocks: u64,
    pub max_entries: usize,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        MirrorConfig {
            poll_interval: Duration::from_millis(200),
            max_entry_age: Duration::from_secs(60),
            max_balance_age_blocks: 120,
            max_gap_blocks: 1_000,
            nonce_lookback_blocks: 10_000,
            max_entries: 200_000,
        }
    }
}

impl MirrorConfig {
    fn freshness(&self) -> Freshness {
        Freshness {
            // Three polls missed in a row: the mirror no longer knows the chain is where it thinks.
            max_silence: (self.poll_interval * 3).max(Duration::from_secs(1)),
            max_entry_age: self.max_entry_age,
            max_balance_age_blocks: self.max_balance_age_blocks,
            max_entries: self.max_entries,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MirrorLabels {
    pub network: String,
    pub event: &'static str,
}

/// Mirror events by kind (`hit`, each miss reason, `load`, `block`, `resync`), shared with `/metrics`.
pub type MirrorEvents = Family<MirrorLabels, Counter>;

/// One token's state and its follower's identity.
pub(crate) struct TokenMirror {
    asset: Address,
    network: Arc<str>,
    state: Mutex<TokenState>,
    loading: Mutex<HashSet<Address>>,
    events: MirrorEvents,
    /// The `hit` counter, taken once: it is bumped on every verify the mirror answers.
    hits: Counter,
    /// Woken by every (re)sync.
    synced: tokio::sync::Notify,
}

impl TokenMirror {
    fn lock(&self) -> MutexGuard<'_, TokenState> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn count(&self, event: &'static str) {
        self.events
            .get_or_create(&MirrorLabels {
                network: self.network.to_string(),
                event,
            })
            .inc();
    }
}

/// Status of one token's mirror (for tests and operators).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorStatus {
    pub head: Option<u64>,
    pub generation: u64,
    pub accounts: usize,
    pub used_nonces: usize,
}

/// The mirror of one network.
#[derive(Clone)]
pub struct Mirror {
    provider: DynProvider,
    multicall3: Address,
    network: Arc<str>,
    config: MirrorConfig,
    tokens: Arc<Mutex<HashMap<Address, Arc<TokenMirror>>>>,
    events: MirrorEvents,
}

impl Mirror {
    pub(super) fn new(
        provider: DynProvider,
        multicall3: Address,
        network: Arc<str>,
        config: MirrorConfig,
        events: MirrorEvents,
    ) -> Self {
        Mirror {
            provider,
            multicall3,
            network,
            config,
            tokens: Arc::new(Mutex::new(HashMap::new())),
            events,
        }
    }

    /// The token's mirror, its follower started on first use.
    fn token(&self, asset: Address) -> Arc<TokenMirror> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens
            .entry(asset)
            .or_insert_with(|| {
                let hits = self
                    .events
                    .get_or_create(&MirrorLabels {
                        network: self.network.to_string(),
                        event: "hit",
                    })
                    .clone();
                let token = Arc::new(TokenMirror {
                    asset,
                    network: self.network.clone(),
                    state: Mutex::new(TokenState::new(self.config.freshness())),
                    loading: Mutex::new(HashSet::new()),
                    events: self.events.clone(),
                    hits,
                    synced: tokio::sync::Notify::new(),
                });
                tokio::spawn(follow::run(self.provider.clone(), token.clone(), self.config));
                token
            })
            .clone()
    }

    /// The facts for this authorization if the mirror holds them fresh; otherwise `None` (counted by reason),
    /// and the addresses it lacks are loaded in the background for the next verify.
    pub fn facts(&self, asset: Address, authorization: &ExactEvmAuthorization) -> Option<MirroredFacts> {
        let token = self.token(asset);
        let answer = token.lock().facts(
            authorization.from,
            authorization.to,
            authorization.nonce,
            authorization.valid_after,
        );
        match answer {
            Ok(facts) => {
                token.hits.inc();
                Some(facts)
            }
            Err(miss) => {
                token.count(miss.label());
                let missing = token.lock().needs_load(authorization.from, authorization.to);
                for address in missing {
                    self.spawn_load(&token, address);
                }
                None
            }
        }
    }

    /// Drops what the mirror knows of `who` for `asset` (a payment of theirs failed).
    pub fn forget(&self, asset: Address, who: Address) {
        if let Some(token) = self.tokens.lock().unwrap_or_else(|p| p.into_inner()).get(&asset) {
            token.lock().forget(who);
        }
    }

    pub fn status(&self, asset: Address) -> Option<MirrorStatus> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let state = tokens.get(&asset)?.lock();
        Some(MirrorStatus {
            head: state.head().map(|h| h.number),
            generation: state.generation(),
            accounts: state.accounts(),
            used_nonces: state.used_nonces(),
        })
    }

    /// Loads `address` unless a load of it is already running.
    fn spawn_load(&self, token: &Arc<TokenMirror>, address: Address) {
        {
            let mut loading = token.loading.lock().unwrap_or_else(|p| p.into_inner());
            if !loading.insert(address) {
                return;
            }
        }
        let (mirror, token) = (self.clone(), token.clone());
        tokio::spawn(async move {
            match mirror.load(&token, address).await {
                Ok(true) => token.count("load"),
                Ok(false) => token.count("load_discarded"),
                Err(e) => {
                    token.count("load_failed");
                    tracing::debug!(asset = %token.asset, %address, error = %e, "mirror load failed");
                }
            }
            token.loading.lock().unwrap_or_else(|p| p.into_inner()).remove(&address);
        });
    }

    /// Reads `address` at the mirror's block and hands it to the state (which refuses it if a resync came
    /// in between).
    async fn load(&self, token: &TokenMirror, address: Address) -> Result<bool, ChainError> {
        let synced = token.synced.notified();
        tokio::pin!(synced);
        synced.as_mut().enable();
        let known = {
            let state = token.lock();
            state.head().map(|head| (head, state.generation()))
        };
        let (head, generation) = match known {
            Some(known) => known,
            // Before the first sync: wait for it (a few polls at most).
            None => {
                if tokio::time::timeout(SYNC_WAIT, synced).await.is_err() {
                    return Ok(false);
                }
                let state = token.lock();
                match state.head() {
                    Some(head) => (head, state.generation()),
                    None => return Ok(false),
                }
            }
        };
        let block = BlockId::number(head.number);
        let call = |data: Vec<u8>| IMulticall3::Call3 {
            target: token.asset,
            allowFailure: false,
            callData: data.into(),
        };
        let calls = vec![
            call(IFiatToken::balanceOfCall { account: address }.abi_encode()),
            call(IFiatToken::isBlacklistedCall { account: address }.abi_encode()),
        ];
        let multicall = IMulticall3::new(self.multicall3, self.provider.clone());
        let reads = async { multicall.aggregate3(calls).block(block).call().await };
        let code = self.provider.get_code_at(address).block_id(block);
        let (reads, code) = tokio::join!(reads, code);
        let reads = reads.map_err(|e| ChainError::Rpc(e.to_string()))?;
        let code = code.map_err(|e| ChainError::Rpc(e.to_string()))?;
        let bad = |e: alloy::sol_types::Error| ChainError::Decode(e.to_string());
        let [balance, blacklisted] = reads.as_slice() else {
            return Err(ChainError::Decode(format!(
                "aggregate3 returned {} results for 2 calls",
                reads.len()
            )));
        };
        let loaded = Loaded {
            address,
            block: head.number,
            generation,
            balance: IFiatToken::balanceOfCall::abi_decode_returns(&balance.returnData).map_err(bad)?,
            blacklisted: IFiatToken::isBlacklistedCall::abi_decode_returns(&blacklisted.returnData).map_err(bad)?,
            has_code: !code.is_empty(),
        };
        Ok(token.lock().insert(loaded))
    }
}
