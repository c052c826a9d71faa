//! The x402 buyer client: calls a URL, and when it answers `402` pays within the spending policy and retries
//! once. It keeps only offers it can pay, lets the policy refuse, takes the cheapest, screens its payee and the
//! buyer's own address (`compliance`, when set), records the payment in the spend ledger (budgets, and with
//! `[treasury]` the treasury policy, checked in the same step), signs, and sends the payment only to the URL
//! that asked for it (redirects are not followed with a payment). When the paid attempt fails ambiguously it
//! resends the *same* signed payment — never a second signature — and reads the receipt from
//! `PAYMENT-RESPONSE` (or `X-PAYMENT-RESPONSE`). A payment without a success receipt stays counted in the
//! ledger as pending until the chain proves it unsettled (`spend_reconcile`). No more than
//! `max_response_bytes` of any answer is read.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::signers::Signer;
use protocol::header as codec;
use protocol::money::format_usd;
use protocol::{Networks, SettleResponse};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};

use crate::buyer::bounded_body::{self, Body};
use crate::buyer::fetch_guard::{self, FetchGuard, FetchRefused};
use crate::buyer::offers::{self, Offer};
use crate::buyer::spend_ledger::{NewSpend, SpendKind, SpendLedger, SpendState, unix_now};
use crate::buyer::spending_policy::{OfferRefusal, SpendingPolicy};
use crate::compliance::payment_check::PaymentScreen;
use crate::treasury::custody::CustodyError;
use crate::treasury::ledger_policy::TreasuryGuard;
use crate::treasury::proposals::ProposalKind;
use crate::treasury::treasury_payer::{TreasuryPayError, TreasuryPayer};

/// What went wrong, by kind: each maps to its own exit code and MCP tool error.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    #[error("no offer can be paid: {why}")]
    Unpayable { why: String },
    #[error("over budget ({scope}): {requested} requested, {spent} spent of {limit}")]
    OverBudget {
        scope: String,
        limit: String,
        spent: String,
        requested: String,
    },
    #[error("the server refused the payment (HTTP {status}, {reason}): {message}")]
    Refused {
        status: u16,
        reason: String,
        message: String,
        /// Set when the payment did settle (e.g. a resend of a payment already used).
        transaction: Option<String>,
    },
    #[error("settlement failed ({reason}){}", transaction.as_deref().map(|t| format!(" in transaction {t}")).unwrap_or_default())]
    SettlementFailed {
        reason: String,
        transaction: Option<String>,
    },
    #[error("network error: {0}")]
    Network(String),
    #[error("cannot sign: {0}")]
    Signer(String),
    #[error("spend ledger: {0}")]
    Ledger(String),
    #[error("a person must approve this payment of {amount}: approval request `{id}` (`nerdcabal approve {id}`)")]
    ApprovalRequired { id: String, amount: String },
    #[error("not approved: {0}")]
    ApprovalDenied(String),
    #[error("{message}")]
    FetchRefused {
        rule: String,
        host: String,
        message: String,
    },
    /// A screening source said the counterparty is blocked; nothing was signed.
    #[error("compliance: {address} is blocked by {screener}: {detail}")]
    ComplianceBlocked {
        address: Address,
        /// The source that blocked (`ofac`, `token_blocklist`, `circle`, `local_list`).
        screener: String,
        detail: String,
    },
    /// A screening source that is not advisory could not answer, so the payment is refused (fail-closed).
    #[error("compliance: {address} could not be screened ({screener} unavailable: {error}); nothing was signed")]
    ComplianceUnavailable {
        address: Address,
        screener: String,
        error: String,
    },
    /// A treasury policy rule refused the payment (`rule`: `daily_cap`, `per_tx_cap`, …).
    #[error("refused by the treasury policy ({rule}): {message}")]
    PolicyDenied { rule: String, message: String },
    /// The treasury's owners must approve it: a local proposal waits for `required` approvals.
    #[error(
        "the treasury's owners must approve this payment ({rule}): proposal {proposal_id} has {approvals} of \
         {required} approvals (`nerdcabal treasury approve {proposal_id}`)"
    )]
    NeedsApproval {
        proposal_id: u64,
        rule: String,
        approvals: u64,
        required: u64,
    },
}

impl From<TreasuryPayError> for PayError {
    fn from(error: TreasuryPayError) -> Self {
        match error {
            TreasuryPayError::NeedsApproval {
                proposal_id,
                approvals,
                required,
            } => PayError::NeedsApproval {
                proposal_id,
                rule: "needs_approval".to_owned(),
                approvals,
                required,
            },
            TreasuryPayError::Unpayable(why) => PayError::Unpayable { why },
            TreasuryPayError::Custody(CustodyError::Refused { rule, message }) => {
                PayError::PolicyDenied { rule, message }
            }
            TreasuryPayError::Custody(CustodyError::Chain(message)) => PayError::Network(message),
            TreasuryPayError::Custody(other) => PayError::Signer(format!("treasury: {other}")),
        }
    }
}

impl From<FetchRefused> for PayError {
    fn from(refused: FetchRefused) -> Self {
        PayError::FetchRefused {
            rule: refused.rule.to_owned(),
            host: refused.host.clone(),
            message: refused.to_string(),
        }
    }
}

impl From<crate::buyer::spend_ledger::BudgetExceeded> for PayError {
    fn from(exceeded: crate::buyer::spend_ledger::BudgetExceeded) -> Self {
        let usd = crate::buyer::spend_ledger::usd;
        PayError::OverBudget {
            scope: exceeded.scope.to_owned(),
            limit: usd(exceeded.limit),
            spent: usd(exceeded.spent),
            requested: usd(exceeded.requested),
        }
    }
}

impl From<OfferRefusal> for PayError {
    /// Over the per-request maximum is a budget refusal; every other rule makes the payment unpayable.
    fn from(refusal: OfferRefusal) -> Self {
        match refusal {
            OfferRefusal::OverMaximum { price, max } => PayError::OverBudget {
                scope: "per_request".into(),
                limit: max,
                spent: "$0".into(),
                requested: price,
            },
            other => PayError::Unpayable { why: other.to_string() },
        }
    }
}

impl PayError {
    /// The error as one JSON object: `error` (the kind), `message`, and the fields a program acts on.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let mut document = json!({"error": self.kind(), "message": self.to_string()});
        match self {
            PayError::OverBudget {
                scope,
                limit,
                spent,
                requested,
            } => {
                document["scope"] = json!(scope);
                document["limit"] = json!(limit);
                document["spent"] = json!(spent);
                document["requested"] = json!(requested);
            }
            PayError::Refused {
                status,
                reason,
                transaction,
                ..
            } => {
                document["status"] = json!(status);
                document["reason"] = json!(reason);
                document["transaction"] = json!(transaction);
            }
            PayError::SettlementFailed { reason, transaction } => {
                document["reason"] = json!(reason);
                document["transaction"] = json!(transaction);
            }
            PayError::FetchRefused { rule, host, .. } => {
                document["rule"] = json!(rule);
                document["host"] = json!(host);
            }
            PayError::ComplianceBlocked {
                address,
                screener,
                detail,
            } => {
                document["address"] = json!(address.to_checksum(None));
                document["source"] = json!(screener);
                document["detail"] = json!(detail);
            }
            PayError::ComplianceUnavailable {
                address,
                screener,
                error,
            } => {
                document["address"] = json!(address.to_checksum(None));
                document["source"] = json!(screener);
                document["source_error"] = json!(error);
            }
            PayError::PolicyDenied { rule, .. } => {
                document["rule"] = json!(rule);
            }
            PayError::NeedsApproval {
                proposal_id,
                rule,
                approvals,
                required,
            } => {
                document["proposal_id"] = json!(proposal_id);
                document["rule"] = json!(rule);
                document["approvals"] = json!(approvals);
                document["required"] = json!(required);
            }
            PayError::ApprovalRequired { id, amount } => {
                document["approval_id"] = json!(id);
                document["amount"] = json!(amount);
                document["how"] = json!(format!(
                    "a person runs `nerdcabal approve {id}`; then call again with approval_id"
                ));
            }
            _ => {}
        }
        document
    }

    /// The machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            PayError::Unpayable { .. } => "unpayable",
            PayError::OverBudget { .. } => "over_budget",
            PayError::Refused { .. } => "rejected",
            PayError::SettlementFailed { .. } => "settlement_failed",
            PayError::Network(_) => "network_error",
            PayError::Signer(_) => "signer_error",
            PayError::Ledger(_) => "ledger_error",
            PayError::ApprovalRequired { .. } => "approval_required",
            PayError::ApprovalDenied(_) => "approval_denied",
            PayError::FetchRefused { .. } => "fetch_refused",
            PayError::ComplianceBlocked { .. } => "compliance_blocked",
            PayError::ComplianceUnavailable { .. } => "compliance_unavailable",
            PayError::PolicyDenied { .. } => "policy_denied",
            PayError::NeedsApproval { .. } => "needs_approval",
        }
    }
}

/// A last check before a chosen offer is paid (human approval of large payments): `Err` stops the payment.
pub trait PaymentGate: Send + Sync {
    fn check<'a>(
        &'a self,
        target: &'a str,
        offer: &'a Offer,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), PayError>> + Send + 'a>>;
}

/// Lets every payment through (the policy and budgets still apply).
pub struct NoGate;

impl PaymentGate for NoGate {
    fn check<'a>(
        &'a self,
        _target: &'a str,
        _offer: &'a Offer,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), PayError>> + Send + 'a>> {
        Box::pin(async { Ok(()) })
    }
}

/// Proof of a settled payment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Receipt {
    pub transaction: String,
    pub network: String,
    pub payer: Option<Address>,
    /// Atomic units.
    pub amount: String,
    pub pay_to: Address,
}

/// One request to make (and pay for if asked).
#[derive(Debug, Clone)]
pub struct CallRequest {
    pub method: Method,
    pub url: url::Url,
    pub headers: HeaderMap,
    /// Kept whole, so the same bytes can go out again.
    pub body: Option<Vec<u8>>,
    /// A per-call cap below the policy's, atomic units.
    pub max_price: Option<U256>,
    /// Read at most this much of the answer (and never more than the client's `max_response_bytes`).
    pub max_body_bytes: Option<usize>,
}

impl CallRequest {
    pub fn get(url: url::Url) -> Self {
        CallRequest {
            method: Method::GET,
            url,
            headers: HeaderMap::new(),
            body: None,
            max_price: None,
            max_body_bytes: None,
        }
    }
}

/// The server's final answer.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// Present when a payment settled for this answer.
    pub receipt: Option<Receipt>,
    /// The answer was longer than the buyer reads: `body` is its beginning.
    pub truncated: bool,
}

#[derive(Clone)]
pub struct X402Client {
    http: reqwest::Client,
    /// For paid attempts: never follows a redirect, so a payment goes only to the URL that asked for it.
    paid_http: reqwest::Client,
    signer: Arc<dyn Signer + Send + Sync>,
    policy: SpendingPolicy,
    ledger: SpendLedger,
    networks: Networks,
    resends: usize,
    max_response_bytes: usize,
    timeout: Duration,
    /// When set, every URL (and redirect, and resolved address) is screened by it.
    guard: Option<Arc<FetchGuard>>,
    /// When set, the payee and the payer are screened (and the decisions recorded) before any signature.
    compliance: Option<PaymentScreen>,
    /// When set, every payment also meets the treasury policy (read and reserved in one ledger transaction).
    treasury: Option<TreasuryGuard>,
    /// When set, offers are paid from this on-chain Treasury (the signer is its spender).
    treasury_payer: Option<TreasuryPayer>,
}

/// The client for unpaid requests (redirects followed, at most 5) and the one for paid attempts (none).
fn http_clients(
    timeout: Duration,
    guard: Option<&Arc<FetchGuard>>,
) -> Result<(reqwest::Client, reqwest::Client), PayError> {
    let build = |paid: bool| {
        let mut builder = reqwest::Client::builder().timeout(timeout);
        builder = match guard {
            None if paid => builder.redirect(reqwest::redirect::Policy::none()),
            None => builder.redirect(reqwest::redirect::Policy::limited(5)),
            // Screened: a proxy from the environment would resolve names itself, so none is used.
            Some(guard) => builder.no_proxy().dns_resolver(guard.resolver()).redirect(if paid {
                reqwest::redirect::Policy::none()
            } else {
                guard.redirects(5)
            }),
        };
        builder.build().map_err(|e| PayError::Network(e.to_string()))
    };
    Ok((build(false)?, build(true)?))
}

/// A transport error as a `PayError`: the fetch policy's refusal when it caused it.
fn fetch_error(error: reqwest::Error) -> PayError {
    match fetch_guard::refusal_in(&error) {
        Some(refused) => refused.into(),
        None => PayError::Network(error.to_string()),
    }
}

impl X402Client {
    pub fn new(
        signer: Arc<dyn Signer + Send + Sync>,
        policy: SpendingPolicy,
        ledger: SpendLedger,
        networks: Networks,
        timeout: Duration,
    ) -> Result<Self, PayError> {
        let (http, paid_http) = http_clients(timeout, None)?;
        Ok(X402Client {
            http,
            paid_http,
            signer,
            policy,
            ledger,
            networks,
            resends: 2,
            max_response_bytes: bounded_body::DEFAULT_MAX_RESPONSE_BYTES,
            timeout,
            guard: None,
            compliance: None,
            treasury: None,
            treasury_payer: None,
        })
    }

    /// Holds every payment to the treasury policy `guard` as well as the spending policy.
    pub fn with_treasury(mut self, guard: TreasuryGuard) -> Self {
        self.treasury = Some(guard);
        self
    }

    pub fn treasury(&self) -> Option<&TreasuryGuard> {
        self.treasury.as_ref()
    }

    /// Pays every offer from the on-chain `payer` (an EIP-1271 Treasury) instead of the signer's own account.
    pub fn with_treasury_payer(mut self, payer: TreasuryPayer) -> Self {
        self.treasury_payer = Some(payer);
        self
    }

    /// The account payments leave: the on-chain treasury when there is one, else the signer.
    pub fn payer(&self) -> Address {
        self.treasury_payer
            .as_ref()
            .map_or_else(|| self.signer.address(), TreasuryPayer::address)
    }

    /// Screens the payee and this buyer's own address with `screen` before every signature.
    pub fn with_compliance(mut self, screen: PaymentScreen) -> Self {
        self.compliance = Some(screen);
        self
    }

    pub fn compliance(&self) -> Option<&PaymentScreen> {
        self.compliance.as_ref()
    }

    /// Screens every URL this client fetches with `guard` (the MCP tools' fetch policy).
    pub fn with_fetch_guard(mut self, guard: FetchGuard) -> Result<Self, PayError> {
        let guard = Arc::new(guard);
        (self.http, self.paid_http) = http_clients(self.timeout, Some(&guard))?;
        self.guard = Some(guard);
        Ok(self)
    }

    fn screen(&self, url: &url::Url) -> Result<(), PayError> {
        match &self.guard {
            Some(guard) => guard.check_url(url).map_err(PayError::from),
            None => Ok(()),
        }
    }

    /// Reads at most `limit` bytes of any answer (10 MiB by default).
    pub fn with_max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// How much of an answer to `request` is read.
    fn body_limit(&self, request: Option<&CallRequest>) -> usize {
        request
            .and_then(|r| r.max_body_bytes)
            .map_or(self.max_response_bytes, |limit| limit.min(self.max_response_bytes))
    }

    pub fn address(&self) -> Address {
        self.signer.address()
    }

    pub fn policy(&self) -> &SpendingPolicy {
        &self.policy
    }

    pub fn ledger(&self) -> &SpendLedger {
        &self.ledger
    }

    /// The offers a URL asks for, without paying (an empty list when it is not priced).
    pub async fn quote(&self, method: Method, url: url::Url) -> Result<(StatusCode, Vec<Offer>), PayError> {
        self.screen(&url)?;
        let response = self.http.request(method, url).send().await.map_err(fetch_error)?;
        let status = response.status();
        if status != StatusCode::PAYMENT_REQUIRED {
            return Ok((status, Vec::new()));
        }
        Ok((status, self.offers_of(response).await?))
    }

    /// The offers of a 402 answer.
    async fn offers_of(&self, response: reqwest::Response) -> Result<Vec<Offer>, PayError> {
        let headers = response.headers().clone();
        let body = bounded_body::read(response, self.body_limit(None))
            .await
            .map_err(|e| PayError::Network(e.to_string()))?;
        offers::read(&headers, &body.bytes, &self.networks).map_err(|e| PayError::Unpayable { why: e.to_string() })
    }

    /// Calls the URL; pays once when asked, within policy.
    pub async fn call(&self, request: &CallRequest) -> Result<CallOutcome, PayError> {
        self.call_gated(request, &NoGate).await
    }

    /// [`Self::call`], with `gate` asked before the chosen offer is paid.
    pub async fn call_gated(&self, request: &CallRequest, gate: &dyn PaymentGate) -> Result<CallOutcome, PayError> {
        self.call_approved(request, gate, None).await
    }

    /// [`Self::call_gated`], paying under the treasury proposal `proposal` the owners approved for this URL
    /// (it answered `needs_approval` with that id before); the payment uses the proposal up.
    pub async fn call_approved(
        &self,
        request: &CallRequest,
        gate: &dyn PaymentGate,
        proposal: Option<u64>,
    ) -> Result<CallOutcome, PayError> {
        self.screen(&request.url)?;
        let first = self
            .send(&self.http, request, &request.url, None)
            .await
            .map_err(fetch_error)?;
        if first.status() != StatusCode::PAYMENT_REQUIRED {
            return read_outcome(first, self.body_limit(Some(request))).await;
        }
        // Pay the URL that answered 402 (after any redirect), and only it.
        let asked = first.url().clone();
        let offers = self.offers_of(first).await?;
        let offer = self.choose(&offers, request.max_price)?;
        // Before anything is recorded, approved or signed: a blocked or unscreenable counterparty stops here (the
        // payer is the on-chain treasury when paying from one).
        if let Some(screen) = &self.compliance {
            screen.check(offer.pay_to(), self.payer()).await?;
        }
        gate.check(asked.as_str(), offer).await?;
        let host = asked.host_str().unwrap_or("").to_owned();
        // Paying from an on-chain treasury under a proposal its owners approved: the authorization is the one
        // they approved (its nonce and validity), not a new one.
        let resumed = match (&self.treasury_payer, proposal) {
            (Some(payer), Some(id)) => Some(
                payer
                    .approved_authorization(
                        id,
                        offer.pay_to(),
                        offer.amount(),
                        offer.asset(),
                        asked.as_str(),
                        unix_now().max(0) as u64,
                    )
                    .await?,
            ),
            _ => None,
        };
        let nonce = resumed
            .as_ref()
            .map_or_else(B256::random, |(authorization, _)| authorization.nonce);
        let amount = i64::try_from(offer.amount()).map_err(|_| PayError::Unpayable {
            why: "the price does not fit the spend ledger".into(),
        })?;
        let network = offer.caip2().unwrap_or_default();
        // One clock reading for the ledger and the signature, so the recorded `validBefore` is the signed one.
        let now = unix_now();
        let spend = NewSpend {
            kind: SpendKind::X402,
            url: asked.as_str(),
            host: &host,
            network: &network,
            asset: offer.asset(),
            pay_to: offer.pay_to(),
            payer: self.payer(),
            nonce,
            amount,
            valid_before: Some(match &resumed {
                Some((authorization, _)) => i64::try_from(authorization.valid_before).unwrap_or(i64::MAX),
                None => now.saturating_add(i64::try_from(offer.max_timeout_seconds()).unwrap_or(i64::MAX)),
            }),
            tx_hash: None,
            chain_nonce: None,
        };
        // The on-chain treasury's owners approved it: the contract is the authority, not a local proposal; the
        // record of the attempt that asked for their approval (refused before anything was signed) gives way to
        // this one.
        let proposal = if resumed.is_some() {
            self.ledger
                .forget_unsent(&SpendLedger::spend_id(&spend), "needs_approval")
                .await
                .map_err(|e| PayError::Ledger(e.to_string()))?;
            None
        } else {
            proposal
        };
        let id = match &self.treasury {
            Some(treasury) => {
                let memo = format!("x402 {}", asked.as_str());
                treasury
                    .reserve(&spend, self.policy.budgets(), now, proposal, ProposalKind::X402, &memo)
                    .await?
            }
            None if proposal.is_some() => {
                return Err(PayError::ApprovalDenied(
                    "a treasury proposal was named, and this buyer has no [treasury] section".into(),
                ));
            }
            None => match self.ledger.reserve(&spend, self.policy.budgets(), now).await {
                Ok(Ok(id)) => id,
                Ok(Err(exceeded)) => return Err(exceeded.into()),
                Err(e) => return Err(PayError::Ledger(e.to_string())),
            },
        };
        let signed = match &self.treasury_payer {
            Some(payer) => {
                self.sign_from_treasury(payer, offer, nonce, now, asked.as_str(), resumed)
                    .await
            }
            None => self.sign(offer, nonce, now).await,
        };
        let (header_name, header_value) = match signed {
            Ok(header) => header,
            Err(e) => {
                self.finish(&id, SpendState::Unsettled, None, Some(e.kind())).await;
                return Err(e);
            }
        };
        let response = match self.send_paid(request, &asked, header_name, &header_value).await {
            Ok(response) => response,
            Err(unsent) if !unsent.reached => {
                // Every attempt failed to connect: the signature never left this process.
                self.finish(&id, SpendState::Unsettled, None, Some("not_sent")).await;
                if let Some(refused) = fetch_guard::refusal_in(&unsent.error) {
                    return Err(refused.into());
                }
                return Err(PayError::Network(format!(
                    "the paid request could not be sent ({}); nothing was paid",
                    unsent.error
                )));
            }
            Err(unsent) => {
                // The payment may have settled: it stays counted until the chain says otherwise, and the caller
                // can resend the same one.
                self.finish(&id, SpendState::Pending, None, Some("no_answer")).await;
                return Err(PayError::Network(format!(
                    "no answer to the paid request after {} attempts ({}); the payment may have settled and \
                     counts against budgets until `nerdcabal spend reconcile` proves otherwise",
                    self.resends + 1,
                    unsent.error
                )));
            }
        };
        self.conclude(&id, offer, response, self.body_limit(Some(request)))
            .await
    }

    /// The cheapest offer the policy admits (and under the call's own cap).
    fn choose<'a>(&self, offers: &'a [Offer], max_price: Option<U256>) -> Result<&'a Offer, PayError> {
        let mut refusals = Vec::new();
        let mut best: Option<&Offer> = None;
        for offer in offers {
            let verdict = self.policy.admits(offer).and_then(|()| match max_price {
                Some(max) if offer.amount() > max => Err(OfferRefusal::OverMaximum {
                    price: format_usd(offer.amount(), 6),
                    max: format_usd(max, 6),
                }),
                _ => Ok(()),
            });
            match verdict {
                Ok(()) if best.is_none_or(|b| offer.amount() < b.amount()) => best = Some(offer),
                Ok(()) => {}
                Err(refusal) => refusals.push(refusal),
            }
        }
        if let Some(best) = best {
            return Ok(best);
        }
        if let Some(index) = refusals.iter().position(OfferRefusal::is_budget) {
            return Err(refusals.swap_remove(index).into());
        }
        let why = if refusals.is_empty() {
            "the 402 lists no offers".to_owned()
        } else {
            refusals.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        };
        Err(PayError::Unpayable { why })
    }

    async fn sign(&self, offer: &Offer, nonce: B256, now: i64) -> Result<(&'static str, String), PayError> {
        let now = now.max(0) as u64;
        let signer: &(dyn Signer + Send + Sync) = self.signer.as_ref();
        match offer {
            Offer::V2 {
                requirement,
                resource,
                accepted_json,
                resource_json,
                ..
            } => {
                let payload = protocol::eip3009::pay(signer, requirement, resource.clone(), now, nonce)
                    .await
                    .map_err(|e| PayError::Signer(e.to_string()))?;
                // The chosen requirement goes back exactly as the seller wrote it.
                let echoed = payload.echoing(accepted_json, resource_json.as_ref());
                Ok((codec::PAYMENT_SIGNATURE, codec::encode(&echoed)))
            }
            Offer::V1 { requirement, chain_id } => {
                let chain_id = chain_id.ok_or_else(|| PayError::Unpayable {
                    why: format!("network `{}` is unknown", requirement.network),
                })?;
                let payload = protocol::eip3009::pay_v1(signer, requirement, chain_id, now, nonce)
                    .await
                    .map_err(|e| PayError::Signer(e.to_string()))?;
                Ok((codec::X_PAYMENT, codec::encode(&payload)))
            }
        }
    }

    /// The payment for `offer` from the treasury: the authorization names it as `from`, and its signature is
    /// the treasury's own approval of the digest (see `treasury_payer`) — proposed now, or, with `resumed`, the
    /// one its owners already approved (whose digest must be this offer's).
    async fn sign_from_treasury(
        &self,
        treasury: &TreasuryPayer,
        offer: &Offer,
        nonce: B256,
        now: i64,
        url: &str,
        resumed: Option<(protocol::ExactEvmAuthorization, B256)>,
    ) -> Result<(&'static str, String), PayError> {
        let now = now.max(0) as u64;
        let signer_error = |e: protocol::eip3009::Eip3009Error| PayError::Signer(e.to_string());
        let (domain, asset) = match offer {
            Offer::V2 { requirement, .. } => (protocol::eip3009::domain_for(requirement), requirement.asset),
            Offer::V1 { requirement, chain_id } => {
                let chain_id = chain_id.ok_or_else(|| PayError::Unpayable {
                    why: format!("network `{}` is unknown", requirement.network),
                })?;
                (
                    protocol::eip3009::domain_for_v1(requirement, chain_id),
                    requirement.asset,
                )
            }
        };
        let domain = domain.map_err(signer_error)?;
        let (authorization, signature) = match resumed {
            Some((authorization, approved)) => {
                if protocol::eip3009::signing_hash(&authorization, &domain) != approved {
                    return Err(PayError::Unpayable {
                        why: "the approved authorization was made under another EIP-712 domain than this offer's"
                            .into(),
                    });
                }
                (authorization, alloy::primitives::Bytes::new())
            }
            None => {
                let (authorization, digest) = match offer {
                    Offer::V2 { requirement, .. } => {
                        protocol::eip3009::unsigned(treasury.address(), requirement, now, nonce)
                    }
                    Offer::V1 { requirement, chain_id } => protocol::eip3009::unsigned_v1(
                        treasury.address(),
                        requirement,
                        chain_id.unwrap_or_default(),
                        now,
                        nonce,
                    ),
                }
                .map_err(signer_error)?;
                let signature = treasury.authorize(&authorization, digest, asset, url).await?;
                (authorization, signature)
            }
        };
        match offer {
            Offer::V2 {
                requirement,
                resource,
                accepted_json,
                resource_json,
                ..
            } => {
                let payload = protocol::eip3009::payload(requirement, resource.clone(), authorization, signature);
                let echoed = payload.echoing(accepted_json, resource_json.as_ref());
                Ok((codec::PAYMENT_SIGNATURE, codec::encode(&echoed)))
            }
            Offer::V1 { requirement, .. } => {
                let payload = protocol::eip3009::payload_v1(requirement, authorization, signature);
                Ok((codec::X_PAYMENT, codec::encode(&payload)))
            }
        }
    }

    async fn send(
        &self,
        client: &reqwest::Client,
        request: &CallRequest,
        url: &url::Url,
        payment: Option<(&'static str, &str)>,
    ) -> reqwest::Result<reqwest::Response> {
        let mut builder = client
            .request(request.method.clone(), url.clone())
            .headers(request.headers.clone());
        if let Some((name, value)) = payment {
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        builder.send().await
    }

    /// The paid attempt, resent with the same payment when the answer is lost.
    async fn send_paid(
        &self,
        request: &CallRequest,
        url: &url::Url,
        name: &'static str,
        value: &str,
    ) -> Result<reqwest::Response, Unsent> {
        let mut attempt = 0;
        let mut reached = false;
        loop {
            match self.send(&self.paid_http, request, url, Some((name, value))).await {
                Ok(response) => return Ok(response),
                Err(error) => {
                    // Only a failure to connect proves the request (and its payment) was not written out.
                    reached |= !error.is_connect();
                    if attempt >= self.resends {
                        return Err(Unsent { error, reached });
                    }
                    tracing::warn!(%error, attempt, "paid request got no answer; resending the same payment");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
                }
            }
        }
    }

    /// Reads the paid answer, records the outcome, and returns it (or why it failed). A success
    /// `PAYMENT-RESPONSE` is believed at any status; without one the payment is pending — a refusal, an error
    /// or a facilitator timeout does not prove that the money will not move — until the chain proves it.
    async fn conclude(
        &self,
        id: &str,
        offer: &Offer,
        response: reqwest::Response,
        limit: usize,
    ) -> Result<CallOutcome, PayError> {
        let status = response.status();
        let settlement = settlement_of(response.headers());
        let headers = response.headers().clone();
        // The receipt is in the headers: a body cut short (or broken off) changes nothing about the payment.
        let Body { bytes: body, truncated } = bounded_body::read(response, limit).await.unwrap_or_default();
        let receipt = settlement.as_ref().filter(|s| s.success).map(|s| Receipt {
            transaction: s.transaction.clone(),
            network: s.network.clone(),
            payer: s.payer,
            amount: offer.amount().to_string(),
            pay_to: offer.pay_to(),
        });
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        // A v2 seller puts its refusal in a fresh `PAYMENT-REQUIRED` (`error`), others in the body.
        let offer_error = headers
            .get(codec::PAYMENT_REQUIRED)
            .and_then(|v| codec::decode_json_header(v.as_bytes()).ok())
            .and_then(|offer| offer["error"].as_str().map(str::to_owned));
        let reason = json["reason"]
            .as_str()
            .or(settlement.as_ref().and_then(|s| s.error_reason.as_deref()))
            .or(json["error"].as_str())
            .or(offer_error.as_deref())
            .unwrap_or(if status.as_u16() < 400 { "no_receipt" } else { "refused" })
            .to_owned();
        let message = json["error"]
            .as_str()
            .or(json["message"].as_str())
            .or(offer_error.as_deref())
            .or(settlement.as_ref().and_then(|s| s.error_message.as_deref()))
            .unwrap_or("the server gave no reason")
            .to_owned();
        if let Some(receipt) = receipt {
            let note = (!status.is_success()).then(|| format!("http_{}", status.as_u16()));
            self.finish(id, SpendState::Settled, Some(&receipt.transaction), note.as_deref())
                .await;
            if status == StatusCode::PAYMENT_REQUIRED {
                // Our payment settled earlier (its answer was lost): it was charged, once.
                return Err(PayError::Refused {
                    status: status.as_u16(),
                    reason,
                    message,
                    transaction: Some(receipt.transaction),
                });
            }
            return Ok(CallOutcome {
                status,
                headers,
                body,
                receipt: Some(receipt),
                truncated,
            });
        }
        let transaction = settlement
            .as_ref()
            .map(|s| s.transaction.clone())
            .filter(|t| !t.is_empty());
        self.finish(id, SpendState::Pending, transaction.as_deref(), Some(&reason))
            .await;
        if status == StatusCode::PAYMENT_REQUIRED {
            if settlement.is_some() {
                return Err(PayError::SettlementFailed { reason, transaction });
            }
            return Err(PayError::Refused {
                status: status.as_u16(),
                reason,
                message,
                transaction: None,
            });
        }
        // Served without a receipt, or the API itself failed: its answer goes to the caller.
        Ok(CallOutcome {
            status,
            headers,
            body,
            receipt: None,
            truncated,
        })
    }

    async fn finish(&self, id: &str, state: SpendState, tx: Option<&str>, reason: Option<&str>) {
        if let Err(e) = self.ledger.finish(id, state, tx, reason).await {
            tracing::error!(error = %e, id, "cannot record a payment's outcome");
        }
    }
}

/// A paid request that got no answer: why, and whether any attempt got as far as writing it out.
struct Unsent {
    error: reqwest::Error,
    reached: bool,
}

fn settlement_of(headers: &HeaderMap) -> Option<SettleResponse> {
    let value = headers
        .get(codec::PAYMENT_RESPONSE)
        .or_else(|| headers.get(codec::X_PAYMENT_RESPONSE))?;
    codec::decode_payment_response(value.as_bytes()).ok()
}

async fn read_outcome(response: reqwest::Response, limit: usize) -> Result<CallOutcome, PayError> {
    let status = response.status();
    let headers = response.headers().clone();
    let body = bounded_body::read(response, limit)
        .await
        .map_err(|e| PayError::Network(e.to_string()))?;
    Ok(CallOutcome {
        status,
        headers,
        body: body.bytes,
        receipt: None,
        truncated: body.truncated,
    })
}

/// Parses `Name: value` as a header (for command lines and tool arguments).
pub fn parse_header(line: &str) -> Option<(HeaderName, HeaderValue)> {
    let (name, value) = line.split_once(':')?;
    Some((
        HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
        HeaderValue::from_str(value.trim()).ok()?,
    ))
}
