//! Settlement, exactly once per (network, asset, payer, nonce). Each settle runs as a task that outlives the
//! request. The key is reserved in the ledger before anything is signed; each signer's nonces
//! have one owner ([`signer`]) that stores the signed transaction before it is broadcast and acts on the
//! node's refusals by kind ([`node_error`]); the receipt is awaited for a bounded time, and the chain's word
//! decides the final state ([`verdict`]). A second settle of the same payload gets the same outcome and
//! transaction; a different payload that reuses the nonce gets `duplicate_settlement`; a payment the chain has
//! not confirmed in time gets `settlement_pending` with its transaction, and the [`reconcile`] loop finishes it
//! in the background. A payment that failed for a reason that was not its own may be settled again later.

mod answer;
pub mod batch;
pub mod calls;
mod drive;
pub mod node_error;
pub mod reconcile;
pub mod signer;
pub mod submit;
pub mod verdict;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use protocol::{SettleResponse, SupportedKind, SupportedResponse, VerifyRequest, reason};

use crate::verify::Verifier;
use signer::SignerPool;

pub use answer::response_for_record;

/// Settlement settings.
#[derive(Debug, Clone)]
pub struct SettleConfig {
    /// How long a settle waits for the receipt before answering `settlement_pending`.
    pub receipt_timeout: Duration,
    /// A reservation this old that never got a signed transaction is released by the reconciler.
    pub stale_reservation_secs: i64,
    /// Batch settlement through Multicall3 (on by default; `None`: single transactions).
    pub batch: Option<batch::BatchConfig>,
}

impl Default for SettleConfig {
    fn default() -> Self {
        SettleConfig {
            receipt_timeout: Duration::from_secs(10),
            stale_reservation_secs: 120,
            batch: Some(batch::BatchConfig::default()),
        }
    }
}

/// The settle engine.
#[derive(Clone)]
pub struct Settler {
    verifier: Verifier,
    pools: Arc<HashMap<String, SignerPool>>,
    batchers: Arc<HashMap<String, batch::Batcher>>,
    config: Arc<SettleConfig>,
}

impl Settler {
    /// `pools` maps each CAIP-2 network to its settlement signers (see [`SignerPool::spawn`]). With batching
    /// configured this spawns one batching task per network (so it needs a Tokio runtime).
    pub fn new(verifier: Verifier, pools: HashMap<String, SignerPool>, config: SettleConfig) -> Self {
        let mut batchers = HashMap::new();
        if let Some(batch_config) = config.batch {
            for chain in verifier.chains() {
                if let Some(pool) = pools.get(&*chain.caip2) {
                    let batcher = batch::Batcher::spawn(
                        chain.clone(),
                        pool.clone(),
                        verifier.ledger().clone(),
                        batch_config,
                        config.receipt_timeout,
                    );
                    batchers.insert(chain.caip2.to_string(), batcher);
                }
            }
        }
        Settler {
            verifier,
            pools: Arc::new(pools),
            batchers: Arc::new(batchers),
            config: Arc::new(config),
        }
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    pub fn pool(&self, network: &str) -> Option<&SignerPool> {
        self.pools.get(network)
    }

    pub fn pools(&self) -> &HashMap<String, SignerPool> {
        &self.pools
    }

    pub fn config(&self) -> &SettleConfig {
        &self.config
    }

    /// The `/supported` answer: both protocol versions for every configured network, and the settlement
    /// signers' addresses.
    pub fn supported(&self) -> SupportedResponse {
        let mut answer = SupportedResponse::default();
        for chain in self.verifier.chains() {
            answer.kinds.push(SupportedKind {
                x402_version: 2,
                scheme: protocol::SCHEME_EXACT.into(),
                network: chain.caip2.to_string(),
                extra: None,
            });
            answer.kinds.push(SupportedKind {
                x402_version: 1,
                scheme: protocol::SCHEME_EXACT.into(),
                network: chain.network.name.clone(),
                extra: None,
            });
        }
        answer
            .kinds
            .sort_by(|a, b| (b.x402_version, &a.network).cmp(&(a.x402_version, &b.network)));
        let mut signers: Vec<String> = self
            .pools
            .values()
            .flat_map(|pool| pool.addresses())
            .map(|a| a.to_checksum(None))
            .collect();
        signers.sort();
        signers.dedup();
        answer.signers.insert("eip155:*".into(), signers);
        if self.verifier.screens() {
            answer
                .extensions
                .push(crate::compliance::SUPPORTED_EXTENSION.to_owned());
        }
        answer
    }

    /// After a settlement that failed on chain (it has a transaction) or for the payer's balance, the mirror
    /// may be wrong about the payer (a balance spent by gas, say): it reads the payer again on its next
    /// verify. A refusal that never reached the chain (a bad signature, say) changes nothing, so nobody can
    /// make the mirror drop a payer by sending payloads in its name.
    fn forget_payer(&self, request: &VerifyRequest, answer: &SettleResponse) {
        let balance = answer.error_reason.as_deref() == Some(reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE);
        if answer.success || (answer.transaction.is_empty() && !balance) {
            return;
        }
        if let Ok(payment) = crate::verify::payment_from_request(request, |n| self.verifier.chain(n).cloned())
            && let Some(mirror) = payment.chain.mirror()
        {
            mirror.forget(payment.asset.address, payment.authorization.from);
        }
    }

    /// Settles a payment (or reports how an earlier settle of it went). The settlement runs as a task of its
    /// own that outlives this future: a caller that goes away (a client hanging up) cancels nothing, and the
    /// payment still ends in a final state (or `submitted`, for the reconciler).
    pub async fn settle(&self, request: &VerifyRequest, now: u64) -> SettleResponse {
        let (settler, owned) = (self.clone(), request.clone());
        let task = tokio::spawn(async move {
            let answer = settler.settle_to_end(&owned, now).await;
            settler.forget_payer(&owned, &answer);
            answer
        });
        match task.await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::error!(error = %e, "the settlement task failed");
                SettleResponse {
                    success: false,
                    error_reason: Some(reason::UNEXPECTED_SETTLE_ERROR.into()),
                    error_message: Some("the settlement task failed; query the settlement's status".into()),
                    payer: None,
                    transaction: String::new(),
                    network: answer::network_of(request).to_owned(),
                    amount: None,
                }
            }
        }
    }
}
