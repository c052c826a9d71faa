//! Verification: turns a `/verify` (or `/settle`) request into a [`Payment`] the facilitator can settle, or
//! the first reason it cannot. Checks that need nothing but the request run first; then the chain's facts
//! feed the rest: from the live mirror when it holds them fresh (no RPC: signature recovery and local checks
//! only), else from one coalesced read of the chain ([`crate::chain::ChainSnapshot`]). A settle of a payload
//! that passed verify moments ago reuses that verdict ([`reuse`]) instead of reading the chain again; the
//! ledger's reservation and the chain's answer to the settlement stay the authority. When a counterparty screen
//! is configured, payer and payee are screened before the chain is read (a reused verdict was screened already). Verify writes nothing
//! durable.

mod checks;
mod payment;
pub mod reuse;

pub use payment::{Invalid, Payment, payment_from_request};

use std::collections::HashMap;
use std::sync::Arc;

use alloy::primitives::{Address, U256};
use protocol::reason;
use protocol::{VerifyRequest, VerifyResponse};

use crate::chain::{ChainClient, ChainSnapshot, SnapshotRequest};
use crate::compliance::{self, CounterpartyScreen};
use crate::ledger::{Ledger, SettlementKey, SettlementState};

/// Verification settings.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// Seconds of clock difference tolerated past `now + maxTimeoutSeconds` for `validBefore`.
    pub clock_skew_secs: u64,
    /// ERC-6492 factories whose wrapped signatures are accepted (empty: every wrapped signature is refused).
    pub erc6492_factories: Vec<Address>,
    /// How long a settle may reuse the verify of the same payload instead of reading the chain (0: never).
    pub reuse_secs: u64,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            clock_skew_secs: 30,
            erc6492_factories: Vec::new(),
            reuse_secs: 10,
        }
    }
}

/// The verify engine.
#[derive(Clone)]
pub struct Verifier {
    chains: Arc<HashMap<String, ChainClient>>,
    ledger: Ledger,
    settlement_address: Address,
    config: Arc<VerifyConfig>,
    reuse: reuse::Verdicts,
    screen: Option<Arc<dyn CounterpartyScreen>>,
}

/// Whether the ledger's own reservation of this payment counts against it (it does for `/verify`; `/settle`
/// re-verifies a payment it has itself just reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerCheck {
    RefuseReserved,
    IgnoreOwnReservation,
}

impl Verifier {
    /// `chains` is keyed by CAIP-2 id and by v1 network name.
    pub fn new(chains: Vec<ChainClient>, ledger: Ledger, settlement_address: Address, config: VerifyConfig) -> Self {
        let mut map = HashMap::new();
        for chain in chains {
            map.insert(chain.caip2.to_string(), chain.clone());
            map.insert(chain.network.name.clone(), chain);
        }
        Verifier {
            chains: Arc::new(map),
            ledger,
            settlement_address,
            reuse: reuse::Verdicts::new(config.reuse_secs),
            config: Arc::new(config),
            screen: None,
        }
    }

    /// Screens the payer and the payee of every payment with `screen` (before the chain is read).
    pub fn screening_with(mut self, screen: Arc<dyn CounterpartyScreen>) -> Self {
        self.screen = Some(screen);
        self
    }

    /// Whether counterparties are screened.
    pub fn screens(&self) -> bool {
        self.screen.is_some()
    }

    /// Counts where each verify's chain facts came from into `sources` (for `/metrics`).
    pub fn counting_into(mut self, sources: reuse::VerifySources) -> Self {
        self.reuse = self.reuse.counting_into(sources);
        self
    }

    pub fn chain(&self, network: &str) -> Option<&ChainClient> {
        self.chains.get(network)
    }

    /// Every configured chain (each once).
    pub fn chains(&self) -> impl Iterator<Item = &ChainClient> {
        self.chains
            .iter()
            .filter(|(key, chain)| **key == *chain.caip2)
            .map(|(_, chain)| chain)
    }

    /// Runs every check. `Ok` carries the payment, ready to settle; `Err` the first failed check.
    pub async fn verify(
        &self,
        request: &VerifyRequest,
        now: u64,
        ledger_check: LedgerCheck,
    ) -> Result<Payment, Invalid> {
        let payment = payment_from_request(request, |network| self.chains.get(network).cloned())?;
        checks::eip712_domain::present(&payment)?;
        checks::recipient_value::check(&payment)?;
        checks::time_window::check(&payment, now, self.config.clock_skew_secs)?;
        checks::signature::refuse_unlisted_erc6492(&payment, &self.config.erc6492_factories)?;
        let key = payment.key();
        if ledger_check == LedgerCheck::IgnoreOwnReservation
            && let Some(balance) = self.reuse.balance_seen(&payment.payload_hash)
        {
            // The chain was read for this very payload moments ago; only the ledger may have moved since.
            let (_, in_flight) =
                self.ledger.payer_view(&key).await.map_err(|e| {
                    payment.invalid(reason::UNEXPECTED_VERIFY_ERROR, format!("reading the ledger: {e}"))
                })?;
            checks::balance::covers(&payment, balance, in_flight)?;
            self.reuse.count("reused");
            return Ok(payment);
        }

        // Screened here, after the reuse shortcut: a payload reused there passed this screen moments ago.
        if let Some(screen) = &self.screen {
            compliance::screen_parties(screen, payment.authorization.from, payment.authorization.to)
                .await
                .map_err(|refusal| payment.invalid(refusal.reason(), refusal.to_string()))?;
        }
        let mirrored = payment
            .chain
            .mirror()
            .and_then(|mirror| mirror.facts(payment.asset.address, &payment.authorization))
            .filter(|facts| !facts.from_has_code);
        self.reuse.count(if mirrored.is_some() { "mirror" } else { "chain" });
        let snapshot = async {
            match mirrored {
                Some(facts) => Ok(ChainSnapshot::from_mirror(facts)),
                None => {
                    payment
                        .chain
                        .snapshot(SnapshotRequest {
                            asset: payment.asset.address,
                            authorization: &payment.authorization,
                            signature: &payment.signature,
                            signing_hash: payment.signing_hash,
                            simulate_from: self.settlement_address,
                        })
                        .await
                }
            }
        };
        let (domain, snapshot, view) = tokio::join!(
            payment.chain.token_domain(payment.asset.address),
            snapshot,
            self.ledger.payer_view(&key),
        );
        let unexpected = |what: &str, e: &dyn std::fmt::Display| {
            payment.invalid(reason::UNEXPECTED_VERIFY_ERROR, format!("{what}: {e}"))
        };
        let domain = domain.map_err(|e| unexpected("reading the token's EIP-712 domain", &e))?;
        let snapshot = snapshot.map_err(|e| unexpected("reading the chain", &e))?;
        let (own_state, in_flight) = view.map_err(|e| unexpected("reading the ledger", &e))?;

        checks::eip712_domain::matches_token(&payment, &domain)?;
        checks::signature::check(&payment, &snapshot)?;
        checks::nonce::check(&payment, &snapshot, reserved_elsewhere(own_state, ledger_check))?;
        checks::balance::check(&payment, &snapshot, in_flight)?;
        checks::compliance::check(&payment, &snapshot)?;
        checks::simulation::check(&payment, &snapshot)?;
        self.reuse.remember(payment.payload_hash, snapshot.balance);
        Ok(payment)
    }

    /// The `/verify` answer for a request: every check, without writing anything (a payment reserved in the
    /// ledger is refused).
    pub async fn answer(&self, request: &VerifyRequest, now: u64) -> VerifyResponse {
        match self.verify(request, now, LedgerCheck::RefuseReserved).await {
            Ok(payment) => VerifyResponse::valid(payment.payer()),
            Err(invalid) => VerifyResponse::invalid(invalid.reason, invalid.message, invalid.payer),
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn settlement_address(&self) -> Address {
        self.settlement_address
    }
}

fn reserved_elsewhere(state: Option<SettlementState>, ledger_check: LedgerCheck) -> bool {
    match (state, ledger_check) {
        (None | Some(SettlementState::Failed), _) => false,
        (Some(_), LedgerCheck::RefuseReserved) => true,
        (Some(_), LedgerCheck::IgnoreOwnReservation) => false,
    }
}

/// Sum that cannot overflow silently.
pub(crate) fn total(amount: U256, in_flight: U256) -> Option<U256> {
    amount.checked_add(in_flight)
}

impl Payment {
    /// The ledger key of this payment.
    pub fn key(&self) -> SettlementKey {
        SettlementKey {
            network: self.chain.caip2.to_string(),
            asset: self.asset.address,
            payer: self.authorization.from,
            nonce: self.authorization.nonce,
        }
    }
}
