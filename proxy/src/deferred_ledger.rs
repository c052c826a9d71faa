//! The durable side of deferred settlement (`settle = "deferred"`), in the proxy's state database next to
//! [`crate::payment_store`]: one row per payment served (or being served) before it settled — its payer,
//! amount and the facilitator request that settles it — so the exposure it adds is counted until it settles
//! or is released; the settler's lease on each row (so two replicas, or a restarted proxy, never both settle
//! one payment); and the payers whose deferred payment failed to settle after delivery, who are refused
//! deferred service from then on. Admissions are decided in groups ([`crate::admission_group`]), each group one
//! transaction serialised on a gate row (SQLite's single writer; PostgreSQL's row lock) that checks its
//! admissions in order against the sums, so the bounds hold under concurrency and across replicas.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::primitives::Address;
use protocol::{SettleResponse, VerifyRequest};
use sqlx::AnyPool;

use crate::admission_group::{AdmissionGroup, Pending};
use crate::config::DeferredSettings;
use crate::payment_store::{Claim, StoreError};

mod outcomes;
pub use outcomes::Outcome;

const SCHEMA: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS proxy_deferred (\
        pkey TEXT NOT NULL PRIMARY KEY, network TEXT NOT NULL, asset TEXT NOT NULL, payer TEXT NOT NULL, \
        amount BIGINT NOT NULL, request TEXT NOT NULL, lease_owner TEXT NOT NULL, lease_until BIGINT NOT NULL, \
        attempts BIGINT NOT NULL, next_attempt_at BIGINT NOT NULL, created_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS proxy_deferred_payer ON proxy_deferred (network, asset, payer)",
    "CREATE TABLE IF NOT EXISTS proxy_refused_payers (\
        network TEXT NOT NULL, asset TEXT NOT NULL, payer TEXT NOT NULL, pkey TEXT NOT NULL, reason TEXT NOT NULL, \
        created_at BIGINT NOT NULL, PRIMARY KEY (network, asset, payer))",
    "CREATE TABLE IF NOT EXISTS proxy_deferred_gate (id BIGINT NOT NULL PRIMARY KEY, admissions BIGINT NOT NULL)",
    "INSERT INTO proxy_deferred_gate (id, admissions) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
];

/// What asking to serve a payment before settling it gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Reserved: serve now, the settler settles it later.
    Admitted,
    /// The payer's unsettled total would pass `max_unsettled_per_payer`.
    OverPayerBound,
    /// The proxy's unsettled total would pass `max_unsettled_total`.
    OverTotalBound,
    /// An earlier deferred payment of this payer failed to settle after delivery.
    RefusedPayer,
    /// The authorization expires too soon to wait for the settler.
    TooShort,
    /// The claim was lost (its lease expired and someone took the payment over).
    Lost,
}

/// The bounds' arithmetic: may `amount` join a payer owing `payer_unsettled` on a proxy owing
/// `total_unsettled`? A sum that overflows is over the bound.
pub fn admits(payer_unsettled: u64, total_unsettled: u64, amount: u64, bounds: &DeferredSettings) -> Admission {
    let within = |owed: u64, bound: u64| owed.checked_add(amount).is_some_and(|sum| sum <= bound);
    if !within(payer_unsettled, bounds.max_unsettled_per_payer) {
        Admission::OverPayerBound
    } else if !within(total_unsettled, bounds.max_unsettled_total) {
        Admission::OverTotalBound
    } else {
        Admission::Admitted
    }
}

/// Who is paying what, for the reservation.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub network: String,
    pub asset: Address,
    pub payer: Address,
    pub amount: u64,
    /// The facilitator request that settles the payment.
    pub request: VerifyRequest,
}

/// A served payment the settler has taken under its lease.
#[derive(Debug, Clone)]
pub struct DueSettlement {
    pub pkey: String,
    pub network: String,
    pub asset: Address,
    pub payer: String,
    pub amount: u64,
    pub attempts: u32,
    pub request: VerifyRequest,
    owner: String,
}

/// Served-and-unsettled payments now: how many and their sum in atomic units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exposure {
    pub payments: u64,
    pub atomic_units: u64,
}

#[derive(Clone, Debug)]
pub struct DeferredLedger {
    pool: AnyPool,
    /// Admissions, decided in groups under the gate.
    admissions: AdmissionGroup,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn corrupt(pkey: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{pkey}: {what}"))
}

type DueRow = (String, String, String, String, i64, i64, String);

impl DeferredLedger {
    /// Creates its tables in the state database (the payment store's pool).
    pub async fn open(pool: AnyPool) -> Result<Self, StoreError> {
        for statement in SCHEMA {
            sqlx::query(statement).execute(&pool).await?;
        }
        Ok(DeferredLedger {
            admissions: AdmissionGroup::spawn(pool.clone()),
            pool,
        })
    }

    /// Reserves a claimed, verified payment within the bounds and moves it to `reserved`, in one
    /// transaction shared with the admissions waiting at that moment ([`crate::admission_group`]); anything
    /// but [`Admission::Admitted`] changes nothing.
    pub async fn admit(
        &self,
        claim: &Claim,
        reservation: &Reservation,
        bounds: &DeferredSettings,
    ) -> Result<Admission, StoreError> {
        let pkey = claim.key.text();
        let request = serde_json::to_string(&reservation.request).map_err(|e| corrupt(&pkey, e))?;
        let amount = i64::try_from(reservation.amount).map_err(|_| corrupt(&pkey, "amount too large"))?;
        self.admissions
            .admit(Pending {
                pkey,
                owner: claim.owner().to_owned(),
                network: reservation.network.clone(),
                asset: format!("{:#x}", reservation.asset),
                payer: format!("{:#x}", reservation.payer),
                amount,
                request,
                bounds: *bounds,
            })
            .await
    }

    /// The upstream failed: nothing was delivered, so the payment is never settled. Its reservation and
    /// its row go (a resend starts afresh, as a settle-after payment whose upstream failed).
    pub async fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        let pkey = claim.key.text();
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query("DELETE FROM proxy_payments WHERE pkey = $1 AND owner = $2 AND stage = 'reserved'")
            .bind(&pkey)
            .bind(claim.owner())
            .execute(&mut *tx)
            .await?;
        if gone.rows_affected() == 1 {
            sqlx::query("DELETE FROM proxy_deferred WHERE pkey = $1")
                .bind(&pkey)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Takes up to `limit` delivered payments that are due (no live lease, past their backoff), leased to a
    /// fresh owner for `lease`: a replica or a restarted proxy takes a row only once its lease ran out.
    pub async fn take_due(&self, limit: usize, lease: Duration) -> Result<Vec<DueSettlement>, StoreError> {
        let owner = uuid::Uuid::new_v4().to_string();
        let t = now_ms();
        let rows: Vec<DueRow> = sqlx::query_as(
            "UPDATE proxy_deferred SET lease_owner = $1, lease_until = $2 WHERE lease_until < $3 AND pkey IN (\
               SELECT d.pkey FROM proxy_deferred d JOIN proxy_payments p ON p.pkey = d.pkey \
               WHERE p.stage = 'deferred' AND d.lease_until < $3 AND d.next_attempt_at <= $3 \
               ORDER BY d.created_at LIMIT $4) \
             RETURNING pkey, network, asset, payer, amount, attempts, request",
        )
        .bind(&owner)
        .bind(t.saturating_add(millis(lease)))
        .bind(t)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        // A row that cannot be read is left under its lease (and logged each time it comes round), never
        // settled blind; the others go on.
        let mut due = Vec::with_capacity(rows.len());
        for (pkey, network, asset, payer, amount, attempts, request) in rows {
            let parsed = asset
                .parse::<Address>()
                .map_err(|_| corrupt(&pkey, format!("asset `{asset}`")))
                .and_then(|asset| {
                    let request = serde_json::from_str(&request).map_err(|e| corrupt(&pkey, e))?;
                    Ok((asset, request))
                });
            match parsed {
                Ok((asset, request)) => due.push(DueSettlement {
                    network,
                    asset,
                    payer,
                    amount: unsigned(amount),
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    request,
                    owner: owner.clone(),
                    pkey,
                }),
                Err(e) => tracing::error!(error = %e, "a deferred payment cannot be read; it is not settled"),
            }
        }
        Ok(due)
    }

    /// Settled: the reservation goes and the payment is `settled` with its receipt. `false`: the lease was
    /// lost (the row was taken over), and nothing changed.
    pub async fn settled(&self, due: &DueSettlement, settlement: &SettleResponse) -> Result<bool, StoreError> {
        let done = self
            .record(&[Outcome {
                due,
                settlement,
                failed: None,
            }])
            .await?;
        Ok(done.first().copied().unwrap_or(false))
    }

    /// Refused for good after delivery: the payment is `settlement_failed_after_delivery` and (`blame`) its
    /// payer is refused deferred service from then on.
    pub async fn failed(
        &self,
        due: &DueSettlement,
        settlement: &SettleResponse,
        blame: bool,
    ) -> Result<bool, StoreError> {
        let outcome = Outcome {
            due,
            settlement,
            failed: Some(blame),
        };
        let done = self.record(&[outcome]).await?;
        Ok(done.first().copied().unwrap_or(false))
    }

    /// Not settled yet (unknown, pending, the facilitator unreachable): the lease ends and the row is due
    /// again after `backoff`; it keeps counting against the bounds.
    pub async fn retry_later(&self, due: &DueSettlement, backoff: Duration) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE proxy_deferred SET lease_until = 0, attempts = attempts + 1, next_attempt_at = $1 \
             WHERE pkey = $2 AND lease_owner = $3",
        )
        .bind(now_ms().saturating_add(millis(backoff)))
        .bind(&due.pkey)
        .bind(&due.owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether `payer` is refused deferred service on this network and asset.
    pub async fn is_refused(&self, network: &str, asset: Address, payer: Address) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM proxy_refused_payers WHERE network = $1 AND asset = $2 AND payer = $3")
                .bind(network)
                .bind(format!("{asset:#x}"))
                .bind(format!("{payer:#x}"))
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    /// What is reserved now (served or being served, not settled).
    pub async fn exposure(&self) -> Result<Exposure, StoreError> {
        let (payments, units): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM proxy_deferred")
                .fetch_one(&self.pool)
                .await?;
        Ok(Exposure {
            payments: unsigned(payments),
            atomic_units: unsigned(units),
        })
    }

    /// Drops reservations whose payment row was pruned (a reservation whose upstream never finished and whose
    /// authorization expired). Returns how many went.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM proxy_deferred WHERE pkey NOT IN (SELECT pkey FROM proxy_payments)")
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payment_store::{PaymentKey, PaymentMeta, PaymentStore, Stage, StoredAnswer, Turn, database_url};
    use alloy::primitives::B256;
    use axum::http::{HeaderMap, StatusCode};

    const NETWORK: &str = "eip155:31337";

    fn request() -> VerifyRequest {
        serde_json::from_value(serde_json::json!({
            "x402Version": 2,
            "paymentPayload": {
                "x402Version": 2,
                "accepted": {"scheme": "exact", "network": NETWORK, "amount": "300000",
                    "asset": format!("{:#x}", Address::repeat_byte(1)), "payTo": format!("{:#x}", Address::repeat_byte(9)),
                    "maxTimeoutSeconds": 60},
                "payload": {"signature": format!("0x{}", "11".repeat(65)), "authorization": {"from": format!("{:#x}", Address::repeat_byte(2)),
                    "to": format!("{:#x}", Address::repeat_byte(9)), "value": "300000", "validAfter": "0",
                    "validBefore": "99999999999", "nonce": format!("{:#x}", B256::ZERO)}}
            },
            "paymentRequirements": {"scheme": "exact", "network": NETWORK, "amount": "300000",
                "asset": format!("{:#x}", Address::repeat_byte(1)), "payTo": format!("{:#x}", Address::repeat_byte(9)),
                "maxTimeoutSeconds": 60}
        }))
        .unwrap()
    }

    async fn claim(store: &PaymentStore, payer: u8, nonce: u8) -> Claim {
        let key = PaymentKey {
            network: NETWORK.into(),
            asset: Address::repeat_byte(1),
            payer: Address::repeat_byte(payer),
            nonce: B256::repeat_byte(nonce),
        };
        let meta = PaymentMeta {
            route: "/r".into(),
            amount: "300000".into(),
            expires_at: u64::MAX / 2,
        };
        match store
            .claim(&key, &meta, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap()
        {
            Turn::Owned(claim) => claim,
            other => panic!("{other:?}"),
        }
    }

    fn reservation(payer: u8) -> Reservation {
        Reservation {
            network: NETWORK.into(),
            asset: Address::repeat_byte(1),
            payer: Address::repeat_byte(payer),
            amount: 300_000,
            request: request(),
        }
    }

    #[tokio::test]
    async fn reservations_hold_the_bounds_and_leave_them_when_released_settled_or_failed() {
        let dir = std::env::temp_dir().join(format!("nerdcabal-deferred-{}", B256::random()));
        let url = database_url(Some(dir.join("state.db").to_str().unwrap())).unwrap();
        let store = PaymentStore::open(&url).await.unwrap();
        let ledger = DeferredLedger::open(store.pool().clone()).await.unwrap();
        let b = bounds(1_000_000, 1_500_000);
        // Payer 2: three of $0.30 fit under $1, the fourth does not.
        let mut claims = Vec::new();
        for nonce in 1..=3 {
            let c = claim(&store, 2, nonce).await;
            assert_eq!(
                ledger.admit(&c, &reservation(2), &b).await.unwrap(),
                Admission::Admitted
            );
            assert_eq!(store.get(&c.key).await.unwrap().unwrap().stage, Stage::Reserved);
            claims.push(c);
        }
        let fourth = claim(&store, 2, 4).await;
        assert_eq!(
            ledger.admit(&fourth, &reservation(2), &b).await.unwrap(),
            Admission::OverPayerBound
        );
        assert_eq!(store.get(&fourth.key).await.unwrap().unwrap().stage, Stage::Claimed);
        // Payer 3: $0.90 + $0.30 + $0.30 = $1.50 fits the total, one more does not.
        let other = claim(&store, 3, 1).await;
        assert_eq!(
            ledger.admit(&other, &reservation(3), &b).await.unwrap(),
            Admission::Admitted
        );
        let other2 = claim(&store, 3, 2).await;
        assert_eq!(
            ledger.admit(&other2, &reservation(3), &b).await.unwrap(),
            Admission::Admitted
        );
        let over_total = claim(&store, 3, 3).await;
        assert_eq!(
            ledger.admit(&over_total, &reservation(3), &b).await.unwrap(),
            Admission::OverTotalBound
        );
        assert_eq!(
            ledger.exposure().await.unwrap(),
            Exposure {
                payments: 5,
                atomic_units: 1_500_000
            }
        );
        // A failed upstream releases its reservation; the row goes.
        ledger.release(&claims[2]).await.unwrap();
        assert!(store.get(&claims[2].key).await.unwrap().is_none());
        assert_eq!(ledger.exposure().await.unwrap().payments, 4);
        // Only delivered (`deferred`) payments are due.
        assert!(ledger.take_due(10, Duration::from_secs(30)).await.unwrap().is_empty());
        let answer = StoredAnswer::new(StatusCode::OK, &HeaderMap::new(), Some(b"served"));
        for c in [&claims[0], &claims[1], &other] {
            assert!(
                store
                    .advance(c, Stage::Deferred, Some(&answer), None, false)
                    .await
                    .unwrap()
            );
        }
        let due = ledger.take_due(10, Duration::from_secs(30)).await.unwrap();
        assert_eq!(due.len(), 3);
        // Leased: nobody else takes them until the lease runs out.
        assert!(ledger.take_due(10, Duration::from_secs(30)).await.unwrap().is_empty());
        let settled = SettleResponse {
            success: true,
            error_reason: None,
            error_message: None,
            payer: None,
            transaction: format!("{:#x}", B256::repeat_byte(7)),
            network: NETWORK.into(),
            amount: None,
        };
        let refused = SettleResponse {
            success: false,
            error_reason: Some(protocol::reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE.into()),
            ..settled.clone()
        };
        let (payer2, payer3): (Vec<_>, Vec<_>) = due
            .iter()
            .partition(|d| d.payer == format!("{:#x}", Address::repeat_byte(2)));
        assert!(ledger.settled(payer2[0], &settled).await.unwrap());
        assert!(!ledger.settled(payer2[0], &settled).await.unwrap(), "recorded once");
        ledger.retry_later(payer2[1], Duration::from_secs(60)).await.unwrap();
        assert!(ledger.failed(payer3[0], &refused, true).await.unwrap());
        let record = store.get(&other.key).await.unwrap().unwrap();
        assert_eq!(record.stage, Stage::SettlementFailedAfterDelivery);
        assert!(
            ledger
                .is_refused(NETWORK, Address::repeat_byte(1), Address::repeat_byte(3))
                .await
                .unwrap()
        );
        assert!(
            !ledger
                .is_refused(NETWORK, Address::repeat_byte(1), Address::repeat_byte(2))
                .await
                .unwrap()
        );
        let refused_again = claim(&store, 3, 9).await;
        assert_eq!(
            ledger.admit(&refused_again, &reservation(3), &b).await.unwrap(),
            Admission::RefusedPayer
        );
        // Settled and failed payments count no more; the one waiting for its retry still does.
        assert_eq!(
            ledger.exposure().await.unwrap(),
            Exposure {
                payments: 2,
                atomic_units: 600_000
            }
        );
        assert!(
            ledger.take_due(10, Duration::from_secs(30)).await.unwrap().is_empty(),
            "backing off"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    fn bounds(per_payer: u64, total: u64) -> DeferredSettings {
        DeferredSettings {
            max_unsettled_per_payer: per_payer,
            max_unsettled_total: total,
            batch_size: 64,
            flush_interval: Duration::from_millis(200),
        }
    }

    #[test]
    fn the_bounds_admit_up_to_and_including_their_amount() {
        let b = bounds(1_000_000, 2_000_000);
        // $0.30 a request under a $1 bound: three are admitted, the fourth is not.
        assert_eq!(admits(0, 0, 300_000, &b), Admission::Admitted);
        assert_eq!(admits(600_000, 600_000, 300_000, &b), Admission::Admitted);
        assert_eq!(admits(900_000, 900_000, 300_000, &b), Admission::OverPayerBound);
        assert_eq!(admits(0, 0, 1_000_000, &b), Admission::Admitted);
        assert_eq!(admits(0, 0, 1_000_001, &b), Admission::OverPayerBound);
        // Another payer is still within its own bound, but the proxy's total is not.
        assert_eq!(admits(0, 1_800_000, 300_000, &b), Admission::OverTotalBound);
        assert_eq!(admits(0, 1_700_000, 300_000, &b), Admission::Admitted);
        assert_eq!(admits(u64::MAX, 0, 1, &b), Admission::OverPayerBound);
        assert_eq!(
            admits(0, u64::MAX, 1, &bounds(u64::MAX, u64::MAX)),
            Admission::OverTotalBound
        );
    }
}
