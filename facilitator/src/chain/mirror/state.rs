//! One token's mirrored state, kept by the follower and read by verify: the block it is current to, the pause
//! flag, the used (or cancelled) authorization nonces seen since the start of its nonce window, and — for the
//! addresses a verify has asked about — balance, blacklisting and code presence, each with the block it was
//! loaded at. Pure: no I/O, so every rule (what counts as fresh, how a log moves an entry, when an
//! answer is "don't know") is tested here without a chain.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};

/// Blocks of decoded events kept so an entry loaded at an older block can be brought up to date.
pub const RECENT_BLOCKS: u64 = 64;

/// What the mirror is told about a block's logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Transfer {
        from: Address,
        to: Address,
        value: U256,
    },
    /// `AuthorizationUsed` or `AuthorizationCanceled`.
    NonceUsed {
        authorizer: Address,
        nonce: B256,
    },
    Blacklisted(Address),
    UnBlacklisted(Address),
    Pause,
    Unpause,
}

/// The limits that decide whether an answer may come from the mirror.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    /// The follower must have reached the node this recently.
    pub max_silence: Duration,
    /// An entry loaded longer ago than this is re-read.
    pub max_entry_age: Duration,
    /// A balance loaded more blocks ago than this is re-read (on Arc, gas paid in USDC moves balances
    /// without a log, so a balance is advisory).
    pub max_balance_age_blocks: u64,
    /// The most addresses (and, separately, used nonces) held.
    pub max_entries: usize,
}

/// Where the follower is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub number: u64,
    pub hash: B256,
    pub timestamp: u64,
}

/// The nonce window: every `AuthorizationUsed`/`Canceled` log from `start_block` on is in `used`, so an
/// authorization whose `validAfter` is at or after `start_time` (it could not be used in an earlier block:
/// the token requires `block.timestamp > validAfter`) is known unused when it is not in the set.
#[derive(Debug, Clone, Copy)]
pub struct NonceWindow {
    pub start_block: u64,
    /// 0 when the window starts at genesis (every nonce is covered).
    pub start_time: u64,
}

#[derive(Debug, Clone)]
struct Account {
    balance: U256,
    blacklisted: bool,
    has_code: bool,
    loaded_block: u64,
    loaded_at: Instant,
}

/// What verify reads for one payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirroredFacts {
    pub from_has_code: bool,
    pub nonce_used: bool,
    pub balance: U256,
    pub from_blacklisted: bool,
    pub to_blacklisted: bool,
    pub paused: bool,
}

/// Why the mirror cannot answer (counted, then verify reads the chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    NotSynced,
    Silent,
    Unloaded,
    Stale,
    NonceBeforeWindow,
}

impl Miss {
    pub fn label(self) -> &'static str {
        match self {
            Miss::NotSynced => "miss_not_synced",
            Miss::Silent => "miss_follower_silent",
            Miss::Unloaded => "miss_unloaded",
            Miss::Stale => "miss_stale",
            Miss::NonceBeforeWindow => "miss_nonce_before_window",
        }
    }
}

/// A token's mirror.
#[derive(Debug)]
pub struct TokenState {
    freshness: Freshness,
    head: Option<Head>,
    /// Bumped by every resync, so a load started before one is thrown away.
    generation: u64,
    last_contact: Option<Instant>,
    paused: bool,
    window: NonceWindow,
    used: HashSet<(Address, B256)>,
    accounts: HashMap<Address, Account>,
    recent: VecDeque<(u64, Event)>,
}

/// A load of one address, read from the chain at `block`.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    pub address: Address,
    pub block: u64,
    pub generation: u64,
    pub balance: U256,
    pub blacklisted: bool,
    pub has_code: bool,
}

impl TokenState {
    pub fn new(freshness: Freshness) -> Self {
        TokenState {
            freshness,
            head: None,
            generation: 0,
            last_contact: None,
            paused: false,
            window: NonceWindow {
                start_block: 0,
                start_time: 0,
            },
            used: HashSet::new(),
            accounts: HashMap::new(),
            recent: VecDeque::new(),
        }
    }

    pub fn head(&self) -> Option<Head> {
        self.head
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn window(&self) -> NonceWindow {
        self.window
    }

    pub fn accounts(&self) -> usize {
        self.accounts.len()
    }

    pub fn used_nonces(&self) -> usize {
        self.used.len()
    }

    /// Starts over at `head` from what a full read found: everything loaded before is dropped.
    pub fn reset(
        &mut self,
        head: Head,
        paused: bool,
        window: NonceWindow,
        used: impl IntoIterator<Item = (Address, B256)>,
    ) {
        self.generation += 1;
        self.head = Some(head);
        self.paused = paused;
        self.window = window;
        self.used = used.into_iter().collect();
        self.accounts.clear();
        self.recent.clear();
        self.contact();
    }

    /// The follower reached the node.
    pub fn contact(&mut self) {
        self.last_contact = Some(Instant::now());
    }

    /// Applies the logs of the blocks after the head up to `head` (events in block order), and moves there.
    pub fn advance(&mut self, head: Head, events: Vec<(u64, Event)>) {
        for (block, event) in events {
            self.apply(&event);
            self.recent.push_back((block, event));
        }
        let floor = head.number.saturating_sub(RECENT_BLOCKS);
        while self.recent.front().is_some_and(|(block, _)| *block <= floor) {
            self.recent.pop_front();
        }
        self.head = Some(head);
        if self.used.len() > self.freshness.max_entries {
            // The window starts again here: older authorizations are read from the chain.
            self.used.clear();
            self.window = NonceWindow {
                start_block: head.number,
                start_time: head.timestamp,
            };
        }
        self.contact();
    }

    fn apply(&mut self, event: &Event) {
        match *event {
            Event::Transfer { from, to, value } => {
                if let Some(account) = self.accounts.get_mut(&from) {
                    match account.balance.checked_sub(value) {
                        Some(left) => account.balance = left,
                        // The mirror was wrong about this account: forget it, it is read again.
                        None => {
                            self.accounts.remove(&from);
                        }
                    }
                }
                if let Some(account) = self.accounts.get_mut(&to) {
                    account.balance = account.balance.saturating_add(value);
                }
            }
            Event::NonceUsed { authorizer, nonce } => {
                self.used.insert((authorizer, nonce));
            }
            Event::Blacklisted(who) => {
                if let Some(account) = self.accounts.get_mut(&who) {
                    account.blacklisted = true;
                }
            }
            Event::UnBlacklisted(who) => {
                if let Some(account) = self.accounts.get_mut(&who) {
                    account.blacklisted = false;
                }
            }
            Event::Pause => self.paused = true,
            Event::Unpause => self.paused = false,
        }
    }

    /// Takes in an address read from the chain at `loaded.block`, brought up to the head with the recent
    /// events. Refused (false) when a resync happened since, or the block is older than the recent events.
    pub fn insert(&mut self, loaded: Loaded) -> bool {
        let Some(head) = self.head else {
            return false;
        };
        if loaded.generation != self.generation
            || loaded.block > head.number
            || head.number - loaded.block >= RECENT_BLOCKS
        {
            return false;
        }
        if self.accounts.len() >= self.freshness.max_entries && !self.accounts.contains_key(&loaded.address) {
            let (now, freshness) = (Instant::now(), self.freshness);
            self.accounts
                .retain(|_, a| now.duration_since(a.loaded_at) <= freshness.max_entry_age);
            if self.accounts.len() >= self.freshness.max_entries {
                self.accounts.clear();
            }
        }
        let mut account = Account {
            balance: loaded.balance,
            blacklisted: loaded.blacklisted,
            has_code: loaded.has_code,
            loaded_block: loaded.block,
            loaded_at: Instant::now(),
        };
        for (block, event) in &self.recent {
            if *block <= loaded.block {
                continue;
            }
            match *event {
                Event::Transfer { from, to, value } => {
                    if from == loaded.address {
                        match account.balance.checked_sub(value) {
                            Some(left) => account.balance = left,
                            None => return false,
                        }
                    }
                    if to == loaded.address {
                        account.balance = account.balance.saturating_add(value);
                    }
                }
                Event::Blacklisted(who) if who == loaded.address => account.blacklisted = true,
                Event::UnBlacklisted(who) if who == loaded.address => account.blacklisted = false,
                _ => {}
            }
        }
        self.accounts.insert(loaded.address, account);
        true
    }

    /// Drops what is known of `who` (its payment failed: the mirror may be wrong about it).
    pub fn forget(&mut self, who: Address) {
        self.accounts.remove(&who);
    }

    /// The facts for a payment from `from` to `to` with `nonce` valid after `valid_after` — or why the mirror
    /// cannot give them. Which addresses need a load is in [`TokenState::needs_load`].
    pub fn facts(&self, from: Address, to: Address, nonce: B256, valid_after: U256) -> Result<MirroredFacts, Miss> {
        let Some(head) = self.head else {
            return Err(Miss::NotSynced);
        };
        let now = Instant::now();
        match self.last_contact {
            Some(at) if now.duration_since(at) <= self.freshness.max_silence => {}
            _ => return Err(Miss::Silent),
        }
        let payer = self.fresh(from, head, now, true)?;
        let payee = self.fresh(to, head, now, false)?;
        let nonce_used = if self.used.contains(&(from, nonce)) {
            true
        } else if self.window.start_time == 0 || valid_after >= U256::from(self.window.start_time) {
            false
        } else {
            return Err(Miss::NonceBeforeWindow);
        };
        Ok(MirroredFacts {
            from_has_code: payer.has_code,
            nonce_used,
            balance: payer.balance,
            from_blacklisted: payer.blacklisted,
            to_blacklisted: payee.blacklisted,
            paused: self.paused,
        })
    }

    fn fresh(&self, who: Address, head: Head, now: Instant, balance_matters: bool) -> Result<&Account, Miss> {
        let account = self.accounts.get(&who).ok_or(Miss::Unloaded)?;
        let too_old = now.duration_since(account.loaded_at) > self.freshness.max_entry_age
            || (balance_matters
                && head.number.saturating_sub(account.loaded_block) > self.freshness.max_balance_age_blocks);
        if too_old { Err(Miss::Stale) } else { Ok(account) }
    }

    /// Which of the payer and payee must be read from the chain before [`TokenState::facts`] can answer
    /// (before the first sync, both: their loads wait for it).
    pub fn needs_load(&self, from: Address, to: Address) -> Vec<Address> {
        let now = Instant::now();
        let missing = |who: Address, balance_matters: bool| match self.head {
            Some(head) => self.fresh(who, head, now, balance_matters).is_err(),
            None => true,
        };
        let mut out = Vec::with_capacity(2);
        if missing(from, true) {
            out.push(from);
        }
        if to != from && missing(to, false) {
            out.push(to);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::address;

    const PAYER: Address = address!("0x1111111111111111111111111111111111111111");
    const SELLER: Address = address!("0x2222222222222222222222222222222222222222");
    const OTHER: Address = address!("0x3333333333333333333333333333333333333333");

    fn freshness() -> Freshness {
        Freshness {
            max_silence: Duration::from_secs(60),
            max_entry_age: Duration::from_secs(60),
            max_balance_age_blocks: 100,
            max_entries: 1_000,
        }
    }

    fn head(number: u64) -> Head {
        Head {
            number,
            hash: B256::with_last_byte(number as u8),
            timestamp: 1_000 + number,
        }
    }

    fn synced(window_time: u64) -> TokenState {
        let mut state = TokenState::new(freshness());
        let window = NonceWindow {
            start_block: 10,
            start_time: window_time,
        };
        state.reset(head(10), false, window, [(PAYER, B256::with_last_byte(1))]);
        for (address, balance) in [(PAYER, 500u64), (SELLER, 0)] {
            assert!(state.insert(Loaded {
                address,
                block: 10,
                generation: state.generation(),
                balance: U256::from(balance),
                blacklisted: false,
                has_code: false,
            }));
        }
        state
    }

    #[test]
    fn answers_only_what_it_knows() {
        let state = synced(1_010);
        let facts = state
            .facts(PAYER, SELLER, B256::with_last_byte(9), U256::from(1_010))
            .unwrap();
        assert_eq!(facts.balance, U256::from(500));
        assert!(!facts.nonce_used);
        let used = state.facts(PAYER, SELLER, B256::with_last_byte(1), U256::ZERO).unwrap();
        assert!(used.nonce_used, "a nonce seen used is used whatever its window");
        assert_eq!(
            state.facts(PAYER, SELLER, B256::with_last_byte(9), U256::from(1_009)),
            Err(Miss::NonceBeforeWindow)
        );
        assert_eq!(
            state.facts(PAYER, OTHER, B256::with_last_byte(9), U256::from(2_000)),
            Err(Miss::Unloaded)
        );
        assert_eq!(
            TokenState::new(freshness()).facts(PAYER, SELLER, B256::ZERO, U256::ZERO),
            Err(Miss::NotSynced)
        );
        assert_eq!(state.needs_load(PAYER, OTHER), vec![OTHER]);
        assert!(state.needs_load(PAYER, SELLER).is_empty());
    }

    #[test]
    fn logs_move_entries_block_by_block() {
        let mut state = synced(0);
        let nonce = B256::with_last_byte(7);
        state.advance(
            head(11),
            vec![
                (
                    11,
                    Event::Transfer {
                        from: PAYER,
                        to: OTHER,
                        value: U256::from(200),
                    },
                ),
                (
                    11,
                    Event::NonceUsed {
                        authorizer: PAYER,
                        nonce,
                    },
                ),
                (11, Event::Blacklisted(SELLER)),
                (11, Event::Pause),
            ],
        );
        let facts = state.facts(PAYER, SELLER, nonce, U256::ZERO).unwrap();
        assert_eq!(facts.balance, U256::from(300));
        assert!(facts.nonce_used && facts.to_blacklisted && facts.paused);
        state.advance(head(12), vec![(12, Event::UnBlacklisted(SELLER)), (12, Event::Unpause)]);
        let facts = state.facts(PAYER, SELLER, nonce, U256::ZERO).unwrap();
        assert!(!facts.to_blacklisted && !facts.paused);
        // More spent than the mirror thought the payer had: it stops answering for that payer.
        state.advance(
            head(13),
            vec![(
                13,
                Event::Transfer {
                    from: PAYER,
                    to: OTHER,
                    value: U256::from(301),
                },
            )],
        );
        assert_eq!(state.facts(PAYER, SELLER, nonce, U256::ZERO), Err(Miss::Unloaded));
    }

    #[test]
    fn a_load_is_brought_up_to_the_head_or_refused() {
        let mut state = synced(0);
        state.advance(
            head(11),
            vec![(
                11,
                Event::Transfer {
                    from: OTHER,
                    to: PAYER,
                    value: U256::from(5),
                },
            )],
        );
        state.advance(
            head(12),
            vec![(
                12,
                Event::Transfer {
                    from: OTHER,
                    to: OTHER,
                    value: U256::from(1),
                },
            )],
        );
        // Read at block 10 (before both): block 11's transfer is replayed on top.
        let generation = state.generation();
        let loaded = |block, generation| Loaded {
            address: OTHER,
            block,
            generation,
            balance: U256::from(100),
            blacklisted: false,
            has_code: false,
        };
        assert!(state.insert(loaded(10, generation)));
        let facts = state.facts(OTHER, SELLER, B256::ZERO, U256::ZERO).unwrap();
        assert_eq!(facts.balance, U256::from(95), "100 - 5 (block 11) - 1 + 1 (block 12)");
        // A load from before a resync is thrown away, as is one older than the recent events.
        assert!(!state.insert(loaded(12, generation - 1)));
        state.advance(head(12 + RECENT_BLOCKS), Vec::new());
        assert!(!state.insert(loaded(12, generation)));
    }

    #[test]
    fn stale_entries_and_a_silent_follower_are_misses() {
        let mut state = synced(0);
        state.advance(head(10 + 101), Vec::new());
        assert_eq!(state.facts(PAYER, SELLER, B256::ZERO, U256::ZERO), Err(Miss::Stale));
        assert_eq!(
            state.needs_load(PAYER, SELLER),
            vec![PAYER],
            "only the balance ages by blocks"
        );
        let mut silent = TokenState::new(Freshness {
            max_silence: Duration::ZERO,
            ..freshness()
        });
        silent.reset(
            head(1),
            false,
            NonceWindow {
                start_block: 0,
                start_time: 0,
            },
            [],
        );
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(silent.facts(PAYER, SELLER, B256::ZERO, U256::ZERO), Err(Miss::Silent));
    }

    #[test]
    fn too_many_used_nonces_restart_the_window() {
        let mut state = TokenState::new(Freshness {
            max_entries: 2,
            ..freshness()
        });
        state.reset(
            head(1),
            false,
            NonceWindow {
                start_block: 0,
                start_time: 0,
            },
            [],
        );
        let events = (0..3u8)
            .map(|i| {
                (
                    2,
                    Event::NonceUsed {
                        authorizer: PAYER,
                        nonce: B256::with_last_byte(i),
                    },
                )
            })
            .collect();
        state.advance(head(2), events);
        assert_eq!(state.used_nonces(), 0);
        assert_eq!(state.window().start_time, head(2).timestamp);
    }
}
