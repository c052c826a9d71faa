//! The request pipeline, in the order x402.md §5 gives: match the route; pass free routes; answer 402 without
//! a payment; decode and match the payment to this route; hold the (payer, nonce) lock; verify; run the
//! upstream; settle only when it answered < 400; deliver with `PAYMENT-RESPONSE`. Content is never served
//! unless its payment settled: any settlement failure, pending settlement or facilitator fault discards the
//! upstream answer and replies 402 with the failed settlement.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use protocol::{SettleResponse, header as codec, reason};
use tracing::Instrument;

use crate::access_token;
use crate::error_response::{json_error, too_many};
use crate::offer::{self, EXPOSE_HEADERS, Refusal};
use crate::payment_header::{self, RoutePayment};
use crate::payment_state::Outcome;
use crate::route_table::{AccessWindow, Pricing, Route, join};
use crate::service::ProxyState;
use crate::upstream::UpstreamError;

/// Reason for a resend of a payment that already paid for a delivery.
pub const PAYMENT_ALREADY_SETTLED: &str = "payment_already_settled";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The one handler behind every path.
pub async fn handle(
    State(state): State<Arc<ProxyState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let ip = crate::client_ip::client_ip(client, request.headers(), &state.trusted_proxies);
    if let Err(wait) = state.limits.check_ip(ip) {
        return too_many(wait, "address");
    }
    if let Some(length) = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && length > state.body_limit
    {
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is over {} bytes", state.body_limit),
        );
    }
    let routes = state.routes();
    let host = request.headers().get(header::HOST).and_then(|v| v.to_str().ok());
    let uri = request.uri().clone();
    // A CORS preflight is matched as the request it announces.
    let preflight_for = (request.method() == Method::OPTIONS)
        .then(|| request.headers().get(header::ACCESS_CONTROL_REQUEST_METHOD))
        .flatten()
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok());
    let method = preflight_for.as_ref().unwrap_or(request.method());
    let Some(matched) = routes.table.find(host, method, uri.path(), uri.query()) else {
        return match &routes.table.unmatched_upstream {
            Some(base) => {
                let url = join(base, uri.path(), uri.query());
                forward_or_error(&state, request, url, client, false).await
            }
            None => json_error(StatusCode::NOT_FOUND, "no_route", "no route matches this request"),
        };
    };
    let route = matched.route;
    if let Err(wait) = routes.limits.check(matched.index, ip) {
        return too_many(wait, "address on this route");
    }
    let Some(pricing) = &route.pricing else {
        let response = forward_or_error(&state, request, matched.upstream_url, client, false).await;
        state
            .metrics
            .record(&route.name, "free", started.elapsed().as_secs_f64());
        return response;
    };
    if preflight_for.is_some() {
        return preflight();
    }
    // One span per paid request: route, payer, amount and outcome (the payer once the payment is read).
    let span = tracing::info_span!(
        "paid_request",
        route = %route.name,
        amount = %pricing.requirement.amount,
        payer = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let (outcome, response) = paid(&state, route, pricing, request, matched.upstream_url, client)
        .instrument(span.clone())
        .await;
    span.record("outcome", outcome);
    state
        .metrics
        .record(&route.name, outcome, started.elapsed().as_secs_f64());
    response
}

/// The request line and headers, kept to answer a 402 after the body went upstream.
struct Head {
    method: Method,
    uri: axum::http::Uri,
    version: axum::http::Version,
    headers: axum::http::HeaderMap,
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

/// Everything one paid request needs.
struct Paid<'a> {
    state: &'a ProxyState,
    route: &'a Route,
    pricing: &'a Pricing,
    head: Head,
    upstream_url: String,
    client: SocketAddr,
}

impl Paid<'_> {
    fn refuse(&self, refusal: Refusal<'_>) -> Response {
        offer::respond_402(
            self.route,
            self.pricing,
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
}

/// A priced route: access token, else payment. Returns the outcome label and the answer.
async fn paid(
    state: &ProxyState,
    route: &Route,
    pricing: &Pricing,
    request: Request,
    upstream_url: String,
    client: SocketAddr,
) -> (&'static str, Response) {
    let (parts, body) = request.into_parts();
    let paid = Paid {
        state,
        route,
        pricing,
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
    if pricing.access.is_some()
        && let Some(tokens) = &state.tokens
        && let Some((token, is_bearer)) = access_token::presented(&paid.head.headers, &route.name)
    {
        match tokens.redeem(token, &pricing.fingerprint, now()).await {
            Ok(claims) => {
                tracing::info!(route = %route.name, payer = %claims.p, "access window");
                let response = paid.forward(body, is_bearer).await.unwrap_or_else(|e| e);
                return ("access_window", response);
            }
            Err(e) => token_problem = Some(e),
        }
    }
    let Some(header_value) = payment_header::find(&paid.head.headers) else {
        let (reason, message) = match &token_problem {
            Some(problem) => ("access_token_invalid", format!("{problem}; pay again")),
            None => ("payment_required", "PAYMENT-SIGNATURE header is required".to_owned()),
        };
        return ("payment_required", paid.refuse(Refusal::new(reason, message)));
    };
    let resource = offer::resource_url(&paid.head.headers, &paid.head.uri);
    let payment = match payment_header::read(header_value, route, pricing, &resource) {
        Ok(payment) => payment,
        Err(e) => return ("bad_payment", paid.refuse(Refusal::new(e.reason(), e.to_string()))),
    };
    if let Err(wait) = state.limits.check_payer(payment.payer) {
        return ("rate_limited", too_many(wait, "payer"));
    }
    tracing::Span::current().record("payer", tracing::field::display(payment.payer));
    let key = (payment.payer, payment.nonce);
    let _lock = state.payments.lock(key).await;
    let (outcome, response) = match state.payments.outcome(&key).await {
        Some(Outcome::Settled(settlement)) => ("replayed", paid.already_settled(&payment, &settlement)),
        // The buyer resends a payment whose settlement we could not confirm: settle (idempotent) first.
        Some(Outcome::Pending) => paid.settle_then_serve(body, &payment).await,
        None => paid.first_use(body, &payment).await,
    };
    tracing::info!(outcome, "paid request");
    (outcome, response)
}

impl Paid<'_> {
    fn already_settled(&self, payment: &RoutePayment, settlement: &SettleResponse) -> Response {
        let message = format!(
            "this payment already settled in transaction {}; sign a new payment",
            settlement.transaction
        );
        let mut refusal = Refusal::new(PAYMENT_ALREADY_SETTLED, message);
        refusal.settlement = Some(settlement);
        refusal.v1 = payment.v1;
        self.refuse(refusal)
    }

    async fn first_use(&self, body: Body, payment: &RoutePayment) -> (&'static str, Response) {
        let verdict = match self.state.facilitator.verify(&payment.request).await {
            Ok(verdict) => verdict,
            Err(e) => {
                tracing::warn!(error = %e, "verify failed");
                return ("facilitator_error", facilitator_fault(&e));
            }
        };
        if !verdict.is_valid {
            let reason_text = verdict.invalid_reason.as_deref().unwrap_or(reason::INVALID_PAYLOAD);
            // A used nonce may be this very payment, settled earlier (by another replica, or before a
            // restart): settle is idempotent for the same payload, so it names the transaction.
            if reason_text == reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED
                && let Ok(earlier) = self.state.facilitator.settle(&payment.request).await
                && earlier.success
            {
                return ("replayed", self.already_settled(payment, &earlier));
            }
            let message = verdict
                .invalid_message
                .clone()
                .unwrap_or_else(|| reason_text.to_owned());
            return ("invalid_payment", self.refuse(Refusal::new(reason_text, message)));
        }
        if self.head.method == Method::HEAD {
            // A paid HEAD shows the headers it would buy and is not settled.
            return ("head", self.forward(body, false).await.unwrap_or_else(|e| e));
        }
        if self.pricing.settle == crate::config::SettleTiming::Before {
            return self.settle_then_serve(body, payment).await;
        }
        let upstream = match self.forward(body, false).await {
            Ok(response) => response,
            Err(fault) => return ("upstream_error", fault),
        };
        if upstream.status().as_u16() >= 400 {
            // The upstream failed: nothing is settled and its answer goes back as it was.
            return ("upstream_refused", upstream);
        }
        match self.settle(payment).await {
            Ok(settlement) => ("paid", self.deliver(upstream, payment, &settlement).await),
            Err(refused) => ("settle_failed", refused),
        }
    }

    /// Settle first, then run the upstream (routes with `settle = "before"`, and resends of a payment whose
    /// settlement was pending).
    async fn settle_then_serve(&self, body: Body, payment: &RoutePayment) -> (&'static str, Response) {
        let settlement = match self.settle(payment).await {
            Ok(settlement) => settlement,
            Err(refused) => return ("settle_failed", refused),
        };
        match self.forward(body, false).await {
            Ok(upstream) => ("paid", self.deliver(upstream, payment, &settlement).await),
            Err(fault) => {
                tracing::error!(tx = %settlement.transaction, "settled, but the upstream failed");
                ("paid_upstream_error", fault)
            }
        }
    }

    /// Settles; `Err` is the 402 to send instead of the content.
    async fn settle(&self, payment: &RoutePayment) -> Result<SettleResponse, Response> {
        let key = (payment.payer, payment.nonce);
        let settlement = match self.state.facilitator.settle(&payment.request).await {
            Ok(settlement) => settlement,
            Err(e) => {
                tracing::warn!(error = %e, "settle failed");
                // The facilitator may have settled it anyway: a resend settles again (idempotent) first.
                let unknown = SettleResponse {
                    success: false,
                    error_reason: Some(e.reason().to_owned()),
                    error_message: Some(e.to_string()),
                    payer: Some(payment.payer),
                    transaction: String::new(),
                    network: self.pricing.requirement.network.clone(),
                    amount: Some(self.pricing.requirement.amount),
                };
                self.state.payments.record(key, Outcome::Pending).await;
                return Err(self.settle_refusal(payment, &unknown));
            }
        };
        if settlement.success {
            self.state
                .payments
                .record(key, Outcome::Settled(settlement.clone()))
                .await;
            if let Ok(amount) = u64::try_from(self.pricing.requirement.amount) {
                self.state.metrics.settled(
                    &self.pricing.requirement.network,
                    self.pricing.requirement.asset,
                    amount,
                );
            }
            return Ok(settlement);
        }
        if settlement.error_reason.as_deref() == Some(reason::SETTLEMENT_PENDING) {
            self.state.payments.record(key, Outcome::Pending).await;
        }
        Err(self.settle_refusal(payment, &settlement))
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

    /// The upstream's answer with the settlement receipt, never cacheable for others, plus an access token
    /// when the route sells a window.
    async fn deliver(&self, mut upstream: Response, payment: &RoutePayment, settlement: &SettleResponse) -> Response {
        let name = if payment.v1 {
            codec::X_PAYMENT_RESPONSE
        } else {
            codec::PAYMENT_RESPONSE
        };
        let receipt = codec::encode(settlement);
        let window = self.pricing.access;
        let token = match (window, &self.state.tokens) {
            (Some(window), Some(tokens)) => Some((
                tokens
                    .issue(&self.pricing.fingerprint, payment.payer, payment.nonce, window, now())
                    .await,
                window,
            )),
            _ => None,
        };
        let headers = upstream.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&receipt) {
            headers.insert(name, value);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
        if let Some(((token, claims), window)) = token {
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
        upstream
    }
}

fn preflight() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("PAYMENT-SIGNATURE, X-PAYMENT, Content-Type, Authorization"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

async fn forward_or_error(
    state: &ProxyState,
    request: Request,
    url: String,
    client: SocketAddr,
    strip_authorization: bool,
) -> Response {
    state
        .upstream
        .forward(request, url, client, strip_authorization)
        .await
        .unwrap_or_else(|e| upstream_fault(&e))
}

fn upstream_fault(error: &UpstreamError) -> Response {
    match error {
        UpstreamError::Timeout(_) => json_error(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", error),
        UpstreamError::BodyTooLarge(_) => json_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", error),
        UpstreamError::Unreachable(_) => json_error(StatusCode::BAD_GATEWAY, "upstream_unavailable", error),
    }
}

/// The facilitator could not say whether the payment is good: nothing is served, the buyer may retry.
fn facilitator_fault(error: &crate::facilitator_link::LinkError) -> Response {
    let mut response = json_error(StatusCode::SERVICE_UNAVAILABLE, error.reason(), error);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
