//! The deferred part of a paid request (`settle = "deferred"`): reserving a verified payment within the
//! `[deferred]` bounds ([`crate::deferred_ledger`]), running the upstream, storing the answer as `deferred` and
//! delivering it at once — marked `Payment-Settlement: deferred`, with no receipt, since nothing is settled
//! yet — or releasing the reservation when the upstream fails, so that payment is never settled; and, once the
//! background settler has settled it, turning the stored answer's mark into the real receipt for a resend.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use protocol::header as codec;

use super::{PaidRequest, busy, now};
use crate::deferred_ledger::{Admission, Reservation};
use crate::offer::EXPOSE_HEADERS;
use crate::payment_header::RoutePayment;
use crate::payment_store::{Claim, PaymentRecord, Stage};

/// Marks an answer served before its payment settled.
pub const PAYMENT_SETTLEMENT: &str = "payment-settlement";

impl PaidRequest {
    /// Reserves the payment within the deferred bounds (see [`crate::deferred_ledger`]).
    pub(super) async fn admit_deferred(
        &self,
        claim: &Claim,
        payment: &RoutePayment,
    ) -> Result<Admission, crate::payment_store::StoreError> {
        let Ok(amount) = u64::try_from(self.pricing.requirement.amount) else {
            return Ok(Admission::OverPayerBound);
        };
        // A buyer that signs a short window cannot make the settler miss it: it pays before it is served.
        if !self.state.deferred.outlives_settlement(payment.valid_before, now()) {
            return Ok(Admission::TooShort);
        }
        let reservation = Reservation {
            network: self.pricing.requirement.network.clone(),
            asset: self.pricing.requirement.asset,
            payer: payment.payer,
            amount,
            request: payment.request.clone(),
        };
        self.state
            .deferred_ledger
            .admit(claim, &reservation, self.state.deferred.settings())
            .await
    }

    /// A reserved payment: run the upstream, store the answer as `deferred`, deliver it without a receipt.
    /// An upstream failure releases the reservation, so the payment is never settled.
    pub(super) async fn serve_deferred(
        &self,
        claim: Claim,
        payment: &RoutePayment,
        body: Body,
    ) -> (&'static str, Response) {
        let upstream = match self.forward(body, false).await {
            Ok(upstream) if upstream.status().as_u16() < 400 => upstream,
            Ok(refused) => {
                self.release_deferred(&claim).await;
                return ("upstream_refused", refused);
            }
            Err(fault) => {
                self.release_deferred(&claim).await;
                return ("upstream_error", fault);
            }
        };
        let mut captured = match self.capture(upstream).await {
            Ok(captured) => captured,
            Err(fault) => {
                self.release_deferred(&claim).await;
                return ("upstream_error", fault);
            }
        };
        deferred_headers(&mut captured.headers);
        let stored = captured.stored();
        match self
            .state
            .store
            .advance(&claim, Stage::Deferred, Some(&stored), None, false)
            .await
        {
            Ok(true) => {}
            Ok(false) => return ("busy", busy("this payment was taken over by another request")),
            // The reservation stays; a resend after the lease runs the upstream again and stores its answer.
            Err(e) => return ("state_error", self.store_fault(&e)),
        }
        self.state.deferred.delivered();
        tracing::info!(payer = %payment.payer, "served deferred; settles in the background");
        ("deferred", captured.into_response())
    }

    async fn release_deferred(&self, claim: &Claim) {
        if let Err(e) = self.state.deferred_ledger.release(claim).await {
            // The reservation keeps counting until it is pruned; it is never settled (nothing was delivered).
            tracing::warn!(error = %e, "cannot release a deferred reservation");
        }
    }
}

/// An answer served before settlement: marked, never cacheable for others, readable by browser code.
fn deferred_headers(headers: &mut HeaderMap) {
    headers.insert(PAYMENT_SETTLEMENT, HeaderValue::from_static("deferred"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
}

/// A stored answer served deferred whose payment has settled since: the mark goes, the real receipt comes.
pub(super) fn settled_since(headers: &mut HeaderMap, payment: &RoutePayment, record: &PaymentRecord) {
    if headers.remove(PAYMENT_SETTLEMENT).is_none() {
        return;
    }
    let Some(settlement) = &record.settlement else {
        return;
    };
    let name = if payment.v1 {
        codec::X_PAYMENT_RESPONSE
    } else {
        codec::PAYMENT_RESPONSE
    };
    if let Ok(value) = HeaderValue::from_str(&codec::encode(settlement)) {
        headers.insert(name, value);
    }
}
