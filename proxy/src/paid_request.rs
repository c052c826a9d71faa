//! A request to a priced route, from the access token to the delivered answer. Money rule: one payment runs
//! the upstream at most once, is settled at most once, and its buyer can get the answer it paid for while the
//! authorization is valid. The payment's lifecycle lives in the durable [`PaymentStore`] (shared by
//! replicas) and runs as a task of its own, so a buyer that hangs up cancels nothing:
//! claim (or wait for the copy that holds it) → verify → per-payer limit → upstream → keep the answer →
//! settle → deliver, each step recorded before the next. A resend resumes at the recorded stage: a settled
//! payment gets its stored answer again (same body, same `PAYMENT-RESPONSE`), a pending one settles
//! (idempotently) and is delivered, a paid-but-undelivered one runs the upstream until an answer is stored.
//! A 402 never carries a successful `PAYMENT-RESPONSE`.
//!
//! On a `settle = "deferred"` route a verified payment within the `[deferred]` bounds (and not from a refused
//! payer) is reserved (`reserved`), its upstream runs, and the answer is stored (`deferred`) and delivered at
//! once with `Payment-Settlement: deferred` and no receipt (nothing is settled yet); the background settler
//! ([`crate::deferred_settler`]) settles it later, and a resend then gets the answer with the real receipt.
//! An upstream failure releases the reservation: it is never settled. Over a bound the request takes the
//! settle-after path above.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, Version, header};
use axum::response::Response;
use http_body_util::BodyExt;
use protocol::{SettleResponse, header as codec, reason};
use tracing::Instrument;

use crate::access_token;
use crate::config::SettleTiming;
use crate::deferred_ledger::Admission;
use crate::error_response::{json_error, too_many};
use crate::offer::{self, EXPOSE_HEADERS, Refusal};
use crate::payment_header::{self, RoutePayment};
use crate::payment_store::{Claim, PaymentKey, PaymentMeta, PaymentRecord, Stage, StoredAnswer, Turn};
use crate::pipeline::upstream_fault;
use crate::route_table::{AccessWindow, Pricing, Route};
use crate::service::ProxyState;

mod deferred;
pub use deferred::PAYMENT_SETTLEMENT;

/// Reason for a resend of a payment that settled and whose answer cannot be sent again.
pub const PAYMENT_ALREADY_SETTLED: &str = "payment_already_settled";
/// Reason while another copy of the same payment is being served and did not finish within the wait.
pub const PAYMENT_IN_PROGRESS: &str = "payment_in_progress";
/// Stored answers are kept this long past the authorization's `validBefore`.
const KEEP_AFTER_VALIDITY: u64 = 600;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Serves a priced route: an access token, else the 402 offer, else the payment.
pub async fn serve(
    state: &Arc<ProxyState>,
    route: &Route,
    pricing: &Pricing,
    request: Request,
    upstream_url: String,
    client: SocketAddr,
) -> (&'static str, Response) {
    let (parts, body) = request.into_parts();
    let paid = PaidRequest {
        state: state.clone(),
        route: route.clone(),
        pricing: pricing.clone(),
        head: Head {
            method: parts.method,
            uri: parts.uri,
            version: parts.version,
            headers: parts.headers,
        },
        upstream_url,
        client,
    };
    let mut token_problem = None;
    if paid.pricing.access.is_some()
        && let Some(tokens) = &state.tokens
        && let Some((token, is_bearer)) = access_token::presented(&paid.head.headers, &paid.route.name)
    {
        match tokens.redeem(token, &paid.pricing.fingerprint, now()).await {
            Ok(claims) => {
                tracing::info!(route = %paid.route.name, payer = %claims.p, "access window");
                let response = paid.forward(body, is_bearer).await.unwrap_or_else(|e| e);
                return ("access_window", response);
            }
            Err(e) => token_problem = Some(e),
        }
    }
    // A HEAD shows what a payment would buy and buys nothing: it is answered like an unpaid request.
    let header_value = payment_header::find(&paid.head.headers).filter(|_| paid.head.method != Method::HEAD);
    let Some(header_value) = header_value else {
        let (reason, message) = match &token_problem {
            Some(problem) => ("access_token_invalid", format!("{problem}; pay again")),
            None => ("payment_required", "PAYMENT-SIGNATURE header is required".to_owned()),
        };
        return ("payment_required", paid.refuse(Refusal::new(reason, message)));
    };
    let resource = offer::resource_url(&paid.head.headers, &paid.head.uri);
    let payment = match payment_header::read(header_value, &paid.route, &paid.pricing, &resource) {
        Ok(payment) => payment,
        Err(e) => return ("bad_payment", paid.refuse(Refusal::new(e.reason(), e.to_string()))),
    };
    tracing::Span::current().record("payer", tracing::field::display(payment.payer));
    // The lifecycle outlives the connection: the handler only awaits its outcome.
    let task = tokio::spawn(paid.lifecycle(payment, body).instrument(tracing::Span::current()));
    let (outcome, response) = match task.await {
        Ok(done) => done,
        Err(e) => {
            tracing::error!(error = %e, "the payment task failed");
            let response = json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                PAYMENT_IN_PROGRESS,
                "the payment could not be processed now; resend the same payment",
            );
            ("internal_error", response)
        }
    };
    tracing::info!(outcome, "paid request");
    (outcome, response)
}

/// The request line and headers, kept to answer a 402 after the body went upstream.
struct Head {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

impl Head {
    fn request(&self, body: Body) -> Request {
        let mut request = Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// Everything one paid request needs, owned so its lifecycle can run as a task of its own.
struct PaidRequest {
    state: Arc<ProxyState>,
    route: Route,
    pricing: Pricing,
    head: Head,
    upstream_url: String,
    client: SocketAddr,
}

/// The upstream's answer with its body read up to the replay limit.
struct Captured {
    status: StatusCode,
    headers: HeaderMap,
    body: CapturedBody,
}

enum CapturedBody {
    /// The whole body, its length within the replay limit: stored with the payment.
    Whole(Bytes),
    /// Of unknown or larger length: streamed to the buyer after settlement (stored when it ends within
    /// the limit).
    Streaming(Body),
}

/// What a settlement attempt came to.
enum Settled {
    Yes(SettleResponse),
    /// Unknown or not final: the payment stays answered and a resend settles again.
    Pending(SettleResponse),
    /// Refused for good.
    No(SettleResponse),
}

impl PaidRequest {
    /// The payment's lifecycle, step by step (see the module doc).
    async fn lifecycle(self, payment: RoutePayment, body: Body) -> (&'static str, Response) {
        let key = PaymentKey {
            network: self.pricing.requirement.network.clone(),
            asset: self.pricing.requirement.asset,
            payer: payment.payer,
            nonce: payment.nonce,
        };
        let meta = PaymentMeta {
            route: self.route.name.to_string(),
            amount: self.pricing.requirement.amount.to_string(),
            expires_at: payment.valid_before.saturating_add(KEEP_AFTER_VALIDITY),
        };
        let turn = self
            .state
            .store
            .claim(&key, &meta, self.state.lease, self.state.lease + Duration::from_secs(1))
            .await;
        let claim = match turn {
            Ok(Turn::Owned(claim)) => claim,
            Ok(Turn::Finished(record)) => return ("replayed", self.replay(&payment, &record)),
            Ok(Turn::Busy) => return ("busy", busy("another copy of this payment is still being served")),
            Err(e) => return ("state_error", self.store_fault(&e)),
        };
        match claim.resumed.stage {
            Stage::Claimed => self.first_use(claim, payment, body).await,
            Stage::Answered => self.resume_settlement(claim, payment, body).await,
            Stage::PaidUndelivered => match claim.resumed.settlement.clone() {
                Some(settlement) => self.deliver_paid(claim, &payment, body, settlement).await,
                None => self.resume_settlement(claim, payment, body).await,
            },
            // A reservation whose server went away before its answer was stored: run the upstream.
            Stage::Reserved => self.serve_deferred(claim, &payment, body).await,
            Stage::Settled | Stage::Failed | Stage::Deferred | Stage::SettlementFailedAfterDelivery => {
                let record = claim.resumed.clone();
                ("replayed", self.replay(&payment, &record))
            }
        }
    }

    /// A payment seen for the first time (or taken over from an owner that died before any charge).
    async fn first_use(&self, claim: Claim, payment: RoutePayment, body: Body) -> (&'static str, Response) {
        // 1. Verify.
        let verdict = match self.state.facilitator.verify(&payment.request).await {
            Ok(verdict) => verdict,
            Err(e) => {
                tracing::warn!(error = %e, "verify failed");
                self.release(&claim).await;
                return ("facilitator_error", facilitator_fault(&e));
            }
        };
        if !verdict.is_valid {
            return self.invalid(claim, &payment, body, &verdict).await;
        }
        // 2. The per-payer limit, for a payment whose signature checked out (a forged header spends no
        // real payer's quota).
        if let Err(wait) = self.state.limits.check_payer(payment.payer) {
            self.release(&claim).await;
            return ("rate_limited", too_many(wait, "payer"));
        }
        // 3. Deferred routes serve now within the bounds; over them, the payment settles after the upstream.
        if self.pricing.settle == SettleTiming::Deferred {
            match self.admit_deferred(&claim, &payment).await {
                Ok(Admission::Admitted) => return self.serve_deferred(claim, &payment, body).await,
                Ok(Admission::Lost) => return ("busy", busy("this payment was taken over by another request")),
                Ok(over) => tracing::info!(why = ?over, "not deferred: settling after the upstream"),
                Err(e) => {
                    self.release(&claim).await;
                    return ("state_error", self.store_fault(&e));
                }
            }
        }
        // 4. Settle-first routes record the attempt, then settle before the upstream runs.
        if self.pricing.settle == SettleTiming::Before {
            return match self
                .state
                .store
                .advance(&claim, Stage::Answered, None, None, true)
                .await
            {
                Ok(true) => self.resume_settlement(claim, payment, body).await,
                Ok(false) => ("busy", busy("this payment was taken over by another request")),
                Err(e) => {
                    self.release(&claim).await;
                    ("state_error", self.store_fault(&e))
                }
            };
        }
        // 5. The upstream, whose failure charges nothing.
        let upstream = match self.forward(body, false).await {
            Ok(upstream) => upstream,
            Err(fault) => {
                self.release(&claim).await;
                return ("upstream_error", fault);
            }
        };
        if upstream.status().as_u16() >= 400 {
            self.release(&claim).await;
            return ("upstream_refused", upstream);
        }
        // 6. Keep the answer before any money moves.
        let captured = match self.capture(upstream).await {
            Ok(captured) => captured,
            Err(fault) => {
                self.release(&claim).await;
                return ("upstream_error", fault);
            }
        };
        let stored = captured.stored();
        match self
            .state
            .store
            .advance(&claim, Stage::Answered, Some(&stored), None, true)
            .await
        {
            Ok(true) => {}
            Ok(false) => return ("busy", busy("this payment was taken over by another request")),
            Err(e) => {
                self.release(&claim).await;
                return ("state_error", self.store_fault(&e));
            }
        }
        // 7. Settle, then deliver.
        self.settle_and_deliver(claim, &payment, captured).await
    }

    /// Verify said no. A used nonce may be this very payment settled where this store cannot see it (a
    /// store that was reset): settle is idempotent for the same payload and says so, and then the buyer is
    /// owed its answer while the authorization is valid.
    async fn invalid(
        &self,
        claim: Claim,
        payment: &RoutePayment,
        body: Body,
        verdict: &protocol::VerifyResponse,
    ) -> (&'static str, Response) {
        let reason_text = verdict.invalid_reason.as_deref().unwrap_or(reason::INVALID_PAYLOAD);
        if reason_text == reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED
            && let Ok(earlier) = self.state.facilitator.settle(&payment.request).await
            && earlier.success
        {
            if now() < payment.valid_before
                && let Ok(true) = self
                    .state
                    .store
                    .advance(&claim, Stage::PaidUndelivered, None, Some(&earlier), true)
                    .await
            {
                return self.deliver_paid(claim, payment, body, earlier).await;
            }
            self.release(&claim).await;
            return ("replayed", self.already_settled(payment, &earlier));
        }
        self.release(&claim).await;
        let message = verdict
            .invalid_message
            .clone()
            .unwrap_or_else(|| reason_text.to_owned());
        ("invalid_payment", self.refuse(Refusal::new(reason_text, message)))
    }

    /// A payment whose settlement is not confirmed (pending, the owner died mid-settle, or a settle-first
    /// route): settle (idempotent), then deliver the stored answer, or run the upstream when none was kept.
    async fn resume_settlement(&self, claim: Claim, payment: RoutePayment, body: Body) -> (&'static str, Response) {
        let stored = claim.resumed.answer.clone();
        match self.settle(&claim, &payment).await {
            Settled::Yes(settlement) => match stored.as_ref().and_then(captured_from) {
                Some(captured) => self.finish(claim, &payment, captured, settlement).await,
                None => {
                    if let Err(e) = self
                        .state
                        .store
                        .advance(&claim, Stage::PaidUndelivered, None, Some(&settlement), true)
                        .await
                    {
                        tracing::error!(error = %e, tx = %settlement.transaction, "cannot record a paid, undelivered payment");
                    }
                    self.deliver_paid(claim, &payment, body, settlement).await
                }
            },
            Settled::Pending(response) | Settled::No(response) => {
                ("settle_failed", self.settle_refusal(&payment, &response))
            }
        }
    }

    /// Settles a claimed payment and records the outcome: pending leaves it resumable, a refusal final.
    async fn settle(&self, claim: &Claim, payment: &RoutePayment) -> Settled {
        let outcome = match self.state.facilitator.settle(&payment.request).await {
            Ok(settlement) if settlement.success => Settled::Yes(settlement),
            Ok(settlement)
                if matches!(
                    settlement.error_reason.as_deref(),
                    Some(reason::SETTLEMENT_PENDING | reason::UNEXPECTED_SETTLE_ERROR)
                ) =>
            {
                Settled::Pending(settlement)
            }
            Ok(settlement) => Settled::No(settlement),
            Err(e) => {
                tracing::warn!(error = %e, "settle failed");
                // The facilitator may have settled it anyway: a resend settles again (idempotent) first.
                Settled::Pending(SettleResponse {
                    success: false,
                    error_reason: Some(e.reason().to_owned()),
                    error_message: Some(e.to_string()),
                    payer: Some(payment.payer),
                    transaction: String::new(),
                    network: self.pricing.requirement.network.clone(),
                    amount: Some(self.pricing.requirement.amount),
                })
            }
        };
        let recorded = match &outcome {
            Settled::Yes(_) => Ok(()),
            Settled::Pending(_) => self.state.store.unlease(claim).await,
            Settled::No(refused) => self
                .state
                .store
                .advance(claim, Stage::Failed, None, Some(refused), false)
                .await
                .map(|_| ()),
        };
        if let Err(e) = recorded {
            tracing::error!(error = %e, "cannot record a settlement outcome");
        }
        if let Settled::Yes(_) = &outcome
            && let Ok(amount) = u64::try_from(self.pricing.requirement.amount)
        {
            self.state.metrics.settled(
                &self.pricing.requirement.network,
                self.pricing.requirement.asset,
                amount,
            );
        }
        outcome
    }

    async fn settle_and_deliver(
        &self,
        claim: Claim,
        payment: &RoutePayment,
        captured: Captured,
    ) -> (&'static str, Response) {
        match self.settle(&claim, payment).await {
            Settled::Yes(settlement) => self.finish(claim, payment, captured, settlement).await,
            Settled::Pending(response) | Settled::No(response) => {
                ("settle_failed", self.settle_refusal(payment, &response))
            }
        }
    }

    /// The settled payment's answer: receipt headers added, stored, sent. A streamed body is pumped by a
    /// task of its own that reads the upstream to the end whether or not the buyer stays, and stores the
    /// answer when it ended within the replay limit.
    async fn finish(
        &self,
        claim: Claim,
        payment: &RoutePayment,
        mut captured: Captured,
        settlement: SettleResponse,
    ) -> (&'static str, Response) {
        self.receipt_headers(&mut captured.headers, payment, &settlement).await;
        let body = match captured.body {
            CapturedBody::Whole(bytes) => {
                let stored = StoredAnswer::new(captured.status, &captured.headers, Some(&bytes));
                self.record_settled(&claim, &stored, &settlement).await;
                Body::from(bytes)
            }
            CapturedBody::Streaming(upstream) => {
                let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, axum::Error>>(8);
                let pump = Pump {
                    state: self.state.clone(),
                    claim,
                    status: captured.status,
                    headers: captured.headers.clone(),
                    settlement,
                };
                tokio::spawn(pump.run(upstream, tx).instrument(tracing::Span::current()));
                Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
            }
        };
        let mut response = Response::new(body);
        *response.status_mut() = captured.status;
        *response.headers_mut() = captured.headers;
        ("paid", response)
    }

    async fn record_settled(&self, claim: &Claim, stored: &StoredAnswer, settlement: &SettleResponse) {
        match self
            .state
            .store
            .advance(claim, Stage::Settled, Some(stored), Some(settlement), false)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the settled payment's claim was taken over; delivering anyway"),
            Err(e) => tracing::error!(error = %e, "cannot record a settled payment's answer"),
        }
    }

    /// A payment that settled and has no stored answer: run the upstream until one answer < 400 is kept.
    async fn deliver_paid(
        &self,
        claim: Claim,
        payment: &RoutePayment,
        body: Body,
        settlement: SettleResponse,
    ) -> (&'static str, Response) {
        let upstream = match self.forward(body, false).await {
            Ok(upstream) if upstream.status().as_u16() < 400 => upstream,
            Ok(mut refused) => {
                self.undelivered(&claim, &settlement, "the upstream refused").await;
                // Not a 402: the buyer learns it paid, and that a resend of the same payment runs it again.
                self.receipt_headers(refused.headers_mut(), payment, &settlement).await;
                return ("paid_undelivered", refused);
            }
            Err(fault) => {
                self.undelivered(&claim, &settlement, "the upstream failed").await;
                return ("paid_undelivered", fault);
            }
        };
        match self.capture(upstream).await {
            Ok(captured) => self.finish(claim, payment, captured, settlement).await,
            Err(fault) => {
                self.undelivered(&claim, &settlement, "the upstream's body failed")
                    .await;
                ("paid_undelivered", fault)
            }
        }
    }

    /// Leaves a paid payment resumable: a resend within its validity runs the upstream again.
    async fn undelivered(&self, claim: &Claim, settlement: &SettleResponse, why: &str) {
        tracing::error!(tx = %settlement.transaction, why, "paid, not delivered: a resend runs the upstream again");
        if let Err(e) = self.state.store.unlease(claim).await {
            tracing::error!(error = %e, "cannot release a paid, undelivered payment");
        }
    }

    /// A finished payment asked for again: its stored answer, or why there is none.
    fn replay(&self, payment: &RoutePayment, record: &PaymentRecord) -> Response {
        match (record.stage, record.answer.as_ref().and_then(captured_from)) {
            (Stage::Settled, Some(mut captured)) => {
                deferred::settled_since(&mut captured.headers, payment, record);
                captured.into_response()
            }
            (Stage::Deferred, Some(captured)) => captured.into_response(),
            (Stage::Deferred, None) => {
                busy("this payment was served and awaits settlement; its answer was too large to keep")
            }
            (Stage::Settled, None) => match &record.settlement {
                Some(settlement) => self.already_settled(payment, settlement),
                None => busy("this payment settled; its record is incomplete"),
            },
            (_, _) => {
                let failed = record.settlement.clone().unwrap_or_else(|| SettleResponse {
                    success: false,
                    error_reason: Some(reason::INVALID_EXACT_EVM_TRANSACTION_FAILED.into()),
                    error_message: None,
                    payer: Some(payment.payer),
                    transaction: String::new(),
                    network: self.pricing.requirement.network.clone(),
                    amount: None,
                });
                self.settle_refusal(payment, &failed)
            }
        }
    }

    /// 402 `payment_already_settled`: the transaction in the JSON body, no `PAYMENT-RESPONSE` (a 402 never
    /// carries a successful one).
    fn already_settled(&self, payment: &RoutePayment, settlement: &SettleResponse) -> Response {
        let message = format!(
            "this payment already settled in transaction {}; its answer was too large to keep, sign a new payment",
            settlement.transaction
        );
        let mut refusal = Refusal::new(PAYMENT_ALREADY_SETTLED, message);
        refusal.settlement = Some(settlement);
        refusal.v1 = payment.v1;
        self.refuse(refusal)
    }

    fn settle_refusal(&self, payment: &RoutePayment, settlement: &SettleResponse) -> Response {
        let reason_text = settlement
            .error_reason
            .as_deref()
            .unwrap_or(reason::INVALID_EXACT_EVM_TRANSACTION_FAILED);
        let message = match settlement.error_reason.as_deref() {
            Some(reason::SETTLEMENT_PENDING) => format!(
                "settlement is pending in transaction {}; resend the same payment to receive the content once it confirms",
                settlement.transaction
            ),
            _ => format!(
                "settlement failed: {}",
                settlement.error_message.as_deref().unwrap_or(reason_text)
            ),
        };
        let mut refusal = Refusal::new(reason_text, message);
        refusal.settlement = Some(settlement);
        refusal.v1 = payment.v1;
        self.refuse(refusal)
    }

    fn refuse(&self, refusal: Refusal<'_>) -> Response {
        offer::respond_402(
            &self.route,
            &self.pricing,
            &self.head.method,
            &self.head.headers,
            &self.head.uri,
            refusal,
        )
    }

    async fn forward(&self, body: Body, strip_authorization: bool) -> Result<Response, Response> {
        self.state
            .upstream
            .forward(
                self.head.request(body),
                self.upstream_url.clone(),
                self.client,
                strip_authorization,
            )
            .await
            .map_err(|e| upstream_fault(&e))
    }

    /// The upstream's answer, its body read whole when its `Content-Length` is within the replay limit;
    /// any other body (chunked, event streams, large files) streams to the buyer after settlement.
    async fn capture(&self, upstream: Response) -> Result<Captured, Response> {
        let (parts, body) = upstream.into_parts();
        let limit = self.state.replay_body_limit;
        let length = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let body = match length {
            Some(length) if length <= limit => {
                let whole = http_body_util::Limited::new(body, limit)
                    .collect()
                    .await
                    .map_err(|e| {
                        json_error(
                            StatusCode::BAD_GATEWAY,
                            "upstream_unavailable",
                            format!("the upstream's body failed: {e}"),
                        )
                    })?
                    .to_bytes();
                CapturedBody::Whole(whole)
            }
            _ => CapturedBody::Streaming(body),
        };
        Ok(Captured {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// The settlement receipt, never cacheable for others, plus an access token when the route sells a window.
    async fn receipt_headers(&self, headers: &mut HeaderMap, payment: &RoutePayment, settlement: &SettleResponse) {
        let name = if payment.v1 {
            codec::X_PAYMENT_RESPONSE
        } else {
            codec::PAYMENT_RESPONSE
        };
        if let Ok(value) = HeaderValue::from_str(&codec::encode(settlement)) {
            headers.insert(name, value);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
        let (Some(window), Some(tokens)) = (self.pricing.access, &self.state.tokens) else {
            return;
        };
        let (token, claims) = tokens
            .issue(&self.pricing.fingerprint, payment.payer, payment.nonce, window, now())
            .await;
        let max_age = match window {
            AccessWindow::Seconds(s) => s,
            AccessWindow::Calls(_) => claims.e.saturating_sub(now()),
        };
        let cookie = format!(
            "{}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax",
            access_token::cookie_name(&self.route.name)
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
        if let Ok(value) = HeaderValue::from_str(&token) {
            headers.insert("x-access-token", value);
        }
    }

    async fn release(&self, claim: &Claim) {
        if let Err(e) = self.state.store.release(claim).await {
            // The lease still runs out, and then a resend takes the payment over.
            tracing::warn!(error = %e, "cannot release a payment claim");
        }
    }

    fn store_fault(&self, error: &crate::payment_store::StoreError) -> Response {
        tracing::error!(error = %error, "the proxy state database failed");
        busy("the proxy cannot record payments now; resend the same payment")
    }
}

impl Captured {
    /// As stored before settlement: the body only when it is whole.
    fn stored(&self) -> StoredAnswer {
        let body = match &self.body {
            CapturedBody::Whole(bytes) => Some(bytes.as_ref()),
            CapturedBody::Streaming(_) => None,
        };
        StoredAnswer::new(self.status, &self.headers, body)
    }

    fn into_response(self) -> Response {
        let body = match self.body {
            CapturedBody::Whole(bytes) => Body::from(bytes),
            CapturedBody::Streaming(body) => body,
        };
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

/// Streams a settled payment's body from the upstream to the buyer and records the outcome at its end.
struct Pump {
    state: Arc<ProxyState>,
    claim: Claim,
    status: StatusCode,
    headers: HeaderMap,
    settlement: SettleResponse,
}

impl Pump {
    async fn run(self, mut upstream: Body, buyer: tokio::sync::mpsc::Sender<Result<Bytes, axum::Error>>) {
        let limit = self.state.replay_body_limit;
        let mut kept: Option<Vec<u8>> = Some(Vec::new());
        let mut buyer = Some(buyer);
        let failed = loop {
            match upstream.frame().await {
                None => break false,
                Some(Err(e)) => {
                    tracing::error!(error = %e, tx = %self.settlement.transaction, "the upstream's body failed after settlement");
                    if let Some(buyer) = buyer.take() {
                        let _ = buyer.send(Err(e)).await;
                    }
                    break true;
                }
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if let Some(bytes) = kept.as_mut() {
                        if bytes.len() + data.len() <= limit {
                            bytes.extend_from_slice(&data);
                        } else {
                            kept = None;
                        }
                    }
                    // A buyer that went away stops receiving; the upstream is still read to its end.
                    if let Some(sender) = &buyer
                        && sender.send(Ok(data)).await.is_err()
                    {
                        buyer = None;
                    }
                }
            }
        };
        let (stage, stored) = if failed {
            (Stage::PaidUndelivered, None)
        } else {
            (
                Stage::Settled,
                Some(StoredAnswer::new(self.status, &self.headers, kept.as_deref())),
            )
        };
        if let Err(e) = self
            .state
            .store
            .advance(&self.claim, stage, stored.as_ref(), Some(&self.settlement), false)
            .await
        {
            tracing::error!(error = %e, "cannot record a streamed payment's outcome");
        }
    }
}

/// A stored answer with its body, ready to send again.
fn captured_from(answer: &StoredAnswer) -> Option<Captured> {
    let body = answer.body_bytes()?;
    Some(Captured {
        status: answer.status(),
        headers: answer.header_map(),
        body: CapturedBody::Whole(Bytes::from(body)),
    })
}

/// 503 with `Retry-After`: nothing was charged by this answer; the same payment may be resent.
fn busy(message: &str) -> Response {
    let mut response = json_error(StatusCode::SERVICE_UNAVAILABLE, PAYMENT_IN_PROGRESS, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// The facilitator could not say whether the payment is good: nothing is served, the buyer may retry.
fn facilitator_fault(error: &crate::facilitator_link::LinkError) -> Response {
    let mut response = json_error(StatusCode::SERVICE_UNAVAILABLE, error.reason(), error);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
