//! The proxy's durable record of every payment it handles, keyed by (network, asset, payer, nonce), in the
//! state database (SQLite file by default, PostgreSQL for replicas, `:memory:` only when asked). A payment
//! moves `claimed → answered → settled | failed`, or, when it settled before its content was stored,
//! through `paid_undelivered`; a payment served before settlement (`settle = "deferred"`, reserved by
//! [`crate::deferred_ledger`]) moves `claimed → reserved → deferred → settled |
//! settlement_failed_after_delivery`. A row carries a lease (owner, expiry): only the owner of a live lease works on
//! the payment, so two replicas or two copies of one request never both run the upstream or settle; a lease
//! whose owner died may be taken over, resuming from the stage the row records. Answers up to the replay
//! limit are stored, so a resend of a settled payment gets the same answer without a second upstream call.
//! This store also keeps the call-window counts ([`crate::call_counter`]) in the same database.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use protocol::SettleResponse;
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;
use tokio::sync::Notify;

use crate::store_writer::{Advance, NewClaim, StoreWriter};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the proxy state database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the proxy state database holds a row it cannot read: {0}")]
    Corrupt(String),
    #[error("cannot create the state directory {path}: {source}")]
    Directory { path: String, source: std::io::Error },
}

/// Where a payment is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Someone is verifying it or running the upstream; nothing has been charged.
    Claimed,
    /// The upstream answered (answer stored, unless too large) or a settle-first settlement was attempted;
    /// the settlement is not confirmed. Resuming settles (idempotently) first.
    Answered,
    /// Settled on chain, but no answer has been stored: resuming runs the upstream again.
    PaidUndelivered,
    /// Settled, and its answer delivered (and stored when small enough).
    Settled,
    /// The settlement failed for good.
    Failed,
    /// Deferred: verified and reserved within the bounds; its upstream is running (nothing delivered yet).
    Reserved,
    /// Deferred: the answer was stored and delivered; the background settler has not settled it yet.
    Deferred,
    /// Deferred: delivered, and then its settlement was refused for good (the payer is refused deferred
    /// service from then on).
    SettlementFailedAfterDelivery,
}

impl Stage {
    pub const ALL: [Stage; 8] = [
        Stage::Claimed,
        Stage::Answered,
        Stage::PaidUndelivered,
        Stage::Settled,
        Stage::Failed,
        Stage::Reserved,
        Stage::Deferred,
        Stage::SettlementFailedAfterDelivery,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Claimed => "claimed",
            Stage::Answered => "answered",
            Stage::PaidUndelivered => "paid_undelivered",
            Stage::Settled => "settled",
            Stage::Failed => "failed",
            Stage::Reserved => "reserved",
            Stage::Deferred => "deferred",
            Stage::SettlementFailedAfterDelivery => "settlement_failed_after_delivery",
        }
    }

    pub fn parse(text: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A payment's identity: the facilitator's settlement key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaymentKey {
    pub network: String,
    pub asset: Address,
    pub payer: Address,
    pub nonce: B256,
}

impl PaymentKey {
    /// The row's primary key.
    pub fn text(&self) -> String {
        format!("{}|{:#x}|{:#x}|{:#x}", self.network, self.asset, self.payer, self.nonce)
    }
}

/// What the store keeps of a payment besides its key, for the admin listing.
#[derive(Debug, Clone)]
pub struct PaymentMeta {
    pub route: String,
    pub amount: String,
    /// Unix seconds after which the row may be pruned (the authorization's `validBefore` + 10 minutes).
    pub expires_at: u64,
}

/// An HTTP answer as stored: status, headers, and the body when it was within the replay limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    /// Header names and base64 values (values need not be text).
    pub headers: Vec<(String, String)>,
    /// Base64; `None` when the body was over the replay limit and was not kept.
    pub body: Option<String>,
}

impl StoredAnswer {
    pub fn new(status: StatusCode, headers: &HeaderMap, body: Option<&[u8]>) -> Self {
        StoredAnswer {
            status: status.as_u16(),
            headers: headers
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), STANDARD.encode(value.as_bytes())))
                .collect(),
            body: body.map(|b| STANDARD.encode(b)),
        }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK)
    }

    pub fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            if let (Ok(name), Some(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                STANDARD
                    .decode(value)
                    .ok()
                    .and_then(|v| HeaderValue::from_bytes(&v).ok()),
            ) {
                map.append(name, value);
            }
        }
        map
    }

    pub fn body_bytes(&self) -> Option<Vec<u8>> {
        self.body.as_ref().and_then(|b| STANDARD.decode(b).ok())
    }
}

/// A row as read back.
#[derive(Debug, Clone)]
pub struct PaymentRecord {
    pub stage: Stage,
    pub answer: Option<StoredAnswer>,
    pub settlement: Option<SettleResponse>,
    pub route: String,
    pub payer: String,
    pub amount: String,
    pub network: String,
    pub updated_at: u64,
}

/// The right to work on one payment, until the lease runs out.
#[derive(Debug, Clone)]
pub struct Claim {
    pub key: PaymentKey,
    owner: String,
    /// The stage the payment was in when this claim took it (`Claimed` for a fresh one).
    pub resumed: PaymentRecord,
}

impl Claim {
    /// Who holds the lease (the row's `owner`).
    pub(crate) fn owner(&self) -> &str {
        &self.owner
    }
}

/// What asking for a payment gave.
#[derive(Debug)]
pub enum Turn {
    /// This request now owns the payment.
    Owned(Claim),
    /// The payment is finished (settled or failed), or was served deferred: answer from the record.
    Finished(PaymentRecord),
    /// Someone else held it past the wait.
    Busy,
}

#[derive(Clone)]
pub struct PaymentStore {
    pool: AnyPool,
    /// Claims and advances, committed in groups.
    writer: StoreWriter,
    wakers: moka::future::Cache<String, Arc<Notify>>,
    /// The database URL, shown redacted by `Debug`.
    url: Arc<str>,
}

impl std::fmt::Debug for PaymentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentStore")
            .field("url", &facilitator::config::redact_url(&self.url))
            .finish()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The default state database: `$XDG_STATE_HOME/nerdcabal/proxy-state.db`, else
/// `~/.local/state/nerdcabal/proxy-state.db`.
pub fn default_location() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("nerdcabal").join("proxy-state.db")
}

/// The database URL for a `state_database` setting: a `sqlite:`/`postgres:` URL, `":memory:"`, or a path.
pub fn database_url(setting: Option<&str>) -> Result<String, StoreError> {
    let path = match setting {
        Some(":memory:") => return Ok("sqlite::memory:".into()),
        Some(url) if url.contains("://") || url.starts_with("sqlite:") => return Ok(url.to_owned()),
        Some(path) => PathBuf::from(path),
        None => default_location(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
            path: dir.display().to_string(),
            source,
        })?;
    }
    Ok(format!("sqlite://{}", path.display()))
}

const SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS proxy_payments (\
        pkey TEXT NOT NULL PRIMARY KEY, stage TEXT NOT NULL, owner TEXT NOT NULL, lease_until BIGINT NOT NULL, \
        route TEXT NOT NULL, network TEXT NOT NULL, payer TEXT NOT NULL, amount TEXT NOT NULL, \
        answer TEXT, settlement TEXT, expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS proxy_payments_stage ON proxy_payments (stage, updated_at)",
    "CREATE TABLE IF NOT EXISTS access_calls (token_id TEXT NOT NULL PRIMARY KEY, used BIGINT NOT NULL, expires_at BIGINT NOT NULL)",
];

/// The columns a [`PaymentRecord`] is read from, in [`Row`] order.
const SELECT_RECORD: &str =
    "SELECT stage, route, answer, settlement, payer, amount, network, pkey, updated_at FROM proxy_payments";

type Row = (
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    String,
    i64,
);

impl PaymentStore {
    /// Opens (and creates) the store at a database URL from [`database_url`].
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        // A commit survives a power loss: a deferred payment is served before it is settled, and its buyer
        // will not resend, so its reservation here is the only record of money owed to the seller. (Writes
        // go in groups, so this is one fsync per group, not per request.)
        let pool = facilitator::ledger::open_pool(url, facilitator::ledger::Durability::PowerLoss, 1).await?;
        for statement in SCHEMA {
            sqlx::query(statement).execute(&pool).await?;
        }
        Ok(PaymentStore {
            writer: StoreWriter::spawn(pool.clone()),
            pool,
            wakers: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            url: url.into(),
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Takes the payment if it is free (new, or its lease expired), else waits for its owner until
    /// `deadline`, then reports it finished or still busy. The lease lasts `lease`.
    pub async fn claim(
        &self,
        key: &PaymentKey,
        meta: &PaymentMeta,
        lease: Duration,
        wait: Duration,
    ) -> Result<Turn, StoreError> {
        let pkey = key.text();
        // The common case — nobody else has the payment — costs one attempt and no waker.
        if let Some(turn) = self.try_claim(key, &pkey, meta, lease).await? {
            return Ok(turn);
        }
        let give_up = tokio::time::Instant::now() + wait;
        let mut poll = Duration::from_millis(5);
        loop {
            if tokio::time::Instant::now() >= give_up {
                return Ok(Turn::Busy);
            }
            // Registered before the attempt, so a wake between the attempt and the wait is not missed.
            let waker = self
                .wakers
                .get_with(pkey.clone(), async { Arc::new(Notify::new()) })
                .await;
            let notified = waker.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(turn) = self.try_claim(key, &pkey, meta, lease).await? {
                return Ok(turn);
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(give_up.min(tokio::time::Instant::now() + poll)) => {}
            }
            poll = (poll * 2).min(Duration::from_millis(100));
        }
    }

    /// One attempt: insert, else take over an expired lease, else read. `None`: someone holds it.
    async fn try_claim(
        &self,
        key: &PaymentKey,
        pkey: &str,
        meta: &PaymentMeta,
        lease: Duration,
    ) -> Result<Option<Turn>, StoreError> {
        let owner = uuid::Uuid::new_v4().to_string();
        let t = now_ms();
        let until = t.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let inserted = self
            .writer
            .claim(NewClaim {
                pkey: pkey.to_owned(),
                owner: owner.clone(),
                lease_until: until,
                route: meta.route.clone(),
                network: key.network.clone(),
                payer: format!("{:#x}", key.payer),
                amount: meta.amount.clone(),
                expires_at: secs(meta.expires_at),
                now_ms: t,
            })
            .await?;
        if inserted {
            return Ok(Some(Turn::Owned(Claim {
                key: key.clone(),
                owner,
                resumed: PaymentRecord {
                    stage: Stage::Claimed,
                    answer: None,
                    settlement: None,
                    route: meta.route.clone(),
                    payer: format!("{:#x}", key.payer),
                    amount: meta.amount.clone(),
                    network: key.network.clone(),
                    updated_at: u64::try_from(t / 1000).unwrap_or(0),
                },
            })));
        }
        let taken = sqlx::query(
            "UPDATE proxy_payments SET owner = $1, lease_until = $2, updated_at = $3 \
             WHERE pkey = $4 AND stage IN ('claimed', 'answered', 'paid_undelivered', 'reserved') AND lease_until < $3",
        )
        .bind(&owner)
        .bind(until)
        .bind(t)
        .bind(pkey)
        .execute(&self.pool)
        .await?;
        let Some(record) = self.read(pkey).await? else {
            // Released between our insert and our read: the caller's next attempt inserts.
            return Ok(None);
        };
        if taken.rows_affected() == 1 {
            return Ok(Some(Turn::Owned(Claim {
                key: key.clone(),
                owner,
                resumed: record,
            })));
        }
        Ok(match record.stage {
            Stage::Settled | Stage::Failed | Stage::Deferred | Stage::SettlementFailedAfterDelivery => {
                Some(Turn::Finished(record))
            }
            Stage::Claimed | Stage::Answered | Stage::PaidUndelivered | Stage::Reserved => None,
        })
    }

    async fn read(&self, pkey: &str) -> Result<Option<PaymentRecord>, StoreError> {
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_RECORD} WHERE pkey = $1")))
            .bind(pkey)
            .fetch_optional(&self.pool)
            .await?;
        row.map(record).transpose()
    }

    /// Reads a payment's record.
    pub async fn get(&self, key: &PaymentKey) -> Result<Option<PaymentRecord>, StoreError> {
        self.read(&key.text()).await
    }

    /// Moves the claimed payment to `stage` with what it carries, keeping (`keep_lease`) or ending the
    /// lease. `false`: the claim was lost (its lease expired and someone took it over).
    pub async fn advance(
        &self,
        claim: &Claim,
        stage: Stage,
        answer: Option<&StoredAnswer>,
        settlement: Option<&SettleResponse>,
        keep_lease: bool,
    ) -> Result<bool, StoreError> {
        let answer = answer
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let settlement = settlement
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let done = self
            .writer
            .advance(Advance {
                pkey: claim.key.text(),
                owner: claim.owner.clone(),
                stage: stage.as_str(),
                answer,
                settlement,
                keep_lease,
                now_ms: now_ms(),
            })
            .await?;
        self.wake(&claim.key).await;
        Ok(done)
    }

    /// Gives the payment up: nothing was charged, so the row goes and a resend starts afresh. Only a
    /// payment still `claimed` by this owner is released.
    pub async fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM proxy_payments WHERE pkey = $1 AND owner = $2 AND stage = 'claimed'")
            .bind(claim.key.text())
            .bind(&claim.owner)
            .execute(&self.pool)
            .await?;
        self.wake(&claim.key).await;
        Ok(())
    }

    /// Ends the lease and leaves the stage as it is (a pending settlement: the next resend resumes).
    pub async fn unlease(&self, claim: &Claim) -> Result<(), StoreError> {
        sqlx::query("UPDATE proxy_payments SET lease_until = 0 WHERE pkey = $1 AND owner = $2")
            .bind(claim.key.text())
            .bind(&claim.owner)
            .execute(&self.pool)
            .await?;
        self.wake(&claim.key).await;
        Ok(())
    }

    async fn wake(&self, key: &PaymentKey) {
        if let Some(waker) = self.wakers.get(&key.text()).await {
            waker.notify_waiters();
        }
    }

    /// Payments in `stage`, newest first (at most `limit`).
    pub async fn list(&self, stage: Stage, limit: u32) -> Result<Vec<PaymentRecord>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_RECORD} WHERE stage = $1 ORDER BY updated_at DESC LIMIT $2"
        )))
        .bind(stage.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(record).collect()
    }

    pub async fn count(&self, stage: Stage) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM proxy_payments WHERE stage = $1")
            .bind(stage.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Deletes rows whose authorization (plus ten minutes) has expired. Paid-undelivered payments and
    /// payments delivered without being paid (deferred, or whose deferred settlement failed) stay until the
    /// seller has seen them (they are listed). Returns how many went.
    pub async fn prune(&self, now: u64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM proxy_payments WHERE expires_at < $1 \
             AND stage NOT IN ('paid_undelivered', 'deferred', 'settlement_failed_after_delivery')",
        )
        .bind(secs(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn record(row: Row) -> Result<PaymentRecord, StoreError> {
    let (stage, route, answer, settlement, payer, amount, network, pkey, updated_at) = row;
    let stage = Stage::parse(&stage).ok_or_else(|| StoreError::Corrupt(format!("{pkey}: stage `{stage}`")))?;
    let answer = answer
        .map(|a| serde_json::from_str(&a))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("{pkey}: answer: {e}")))?;
    let settlement = settlement
        .map(|s| serde_json::from_str(&s))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("{pkey}: settlement: {e}")))?;
    Ok(PaymentRecord {
        stage,
        answer,
        settlement,
        route,
        payer,
        amount,
        network,
        updated_at: u64::try_from(updated_at / 1000).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PaymentKey {
        PaymentKey {
            network: "eip155:31337".into(),
            asset: Address::repeat_byte(1),
            payer: Address::repeat_byte(2),
            nonce: B256::repeat_byte(n),
        }
    }

    fn meta(expires_at: u64) -> PaymentMeta {
        PaymentMeta {
            route: "/r".into(),
            amount: "1000".into(),
            expires_at,
        }
    }

    async fn store() -> (PaymentStore, PathBuf) {
        let dir = std::env::temp_dir().join(format!("nerdcabal-store-{}", B256::random()));
        let url = database_url(Some(dir.join("state.db").to_str().unwrap())).unwrap();
        (PaymentStore::open(&url).await.unwrap(), dir)
    }

    fn owned(turn: Turn) -> Claim {
        match turn {
            Turn::Owned(claim) => claim,
            other => panic!("not owned: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_claim_excludes_copies_until_released_or_finished() {
        let (s, dir) = store().await;
        let lease = Duration::from_secs(30);
        let first = owned(
            s.claim(&key(1), &meta(u64::MAX / 2), lease, Duration::ZERO)
                .await
                .unwrap(),
        );
        assert_eq!(first.resumed.stage, Stage::Claimed);
        assert!(matches!(
            s.claim(&key(1), &meta(0), lease, Duration::from_millis(20))
                .await
                .unwrap(),
            Turn::Busy
        ));
        s.release(&first).await.unwrap();
        let second = owned(s.claim(&key(1), &meta(0), lease, Duration::ZERO).await.unwrap());
        let answer = StoredAnswer::new(StatusCode::OK, &HeaderMap::new(), Some(b"body"));
        assert!(
            s.advance(&second, Stage::Answered, Some(&answer), None, true)
                .await
                .unwrap()
        );
        // The first owner's claim is gone: it can change nothing.
        assert!(!s.advance(&first, Stage::Settled, None, None, false).await.unwrap());
        assert!(s.advance(&second, Stage::Settled, None, None, false).await.unwrap());
        match s.claim(&key(1), &meta(0), lease, Duration::ZERO).await.unwrap() {
            Turn::Finished(record) => {
                assert_eq!(record.stage, Stage::Settled);
                assert_eq!(record.answer.unwrap().body_bytes().unwrap(), b"body");
            }
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_waiting_copy_wakes_when_the_owner_finishes() {
        let (s, dir) = store().await;
        let owner = owned(
            s.claim(&key(2), &meta(0), Duration::from_secs(30), Duration::ZERO)
                .await
                .unwrap(),
        );
        let waiter = {
            let s = s.clone();
            tokio::spawn(async move {
                s.claim(&key(2), &meta(0), Duration::from_secs(30), Duration::from_secs(20))
                    .await
            })
        };
        assert!(s.advance(&owner, Stage::Settled, None, None, false).await.unwrap());
        assert!(matches!(waiter.await.unwrap().unwrap(), Turn::Finished(_)));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_at_its_stage_and_expired_rows_pruned() {
        let (s, dir) = store().await;
        let first = owned(
            s.claim(&key(3), &meta(100), Duration::ZERO, Duration::ZERO)
                .await
                .unwrap(),
        );
        assert!(s.advance(&first, Stage::Answered, None, None, true).await.unwrap());
        let second = owned(
            s.claim(&key(3), &meta(100), Duration::from_secs(30), Duration::from_secs(1))
                .await
                .unwrap(),
        );
        assert_eq!(second.resumed.stage, Stage::Answered);
        assert!(
            s.advance(&second, Stage::PaidUndelivered, None, None, false)
                .await
                .unwrap()
        );
        assert_eq!(s.list(Stage::PaidUndelivered, 10).await.unwrap().len(), 1);
        assert_eq!(s.count(Stage::PaidUndelivered).await.unwrap(), 1);
        // Paid-undelivered rows outlive pruning; others go once expired.
        let other = owned(
            s.claim(&key(4), &meta(100), Duration::ZERO, Duration::ZERO)
                .await
                .unwrap(),
        );
        assert!(s.advance(&other, Stage::Settled, None, None, false).await.unwrap());
        assert_eq!(s.prune(101).await.unwrap(), 1);
        assert!(s.get(&key(4)).await.unwrap().is_none());
        assert!(s.get(&key(3)).await.unwrap().is_some());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn answers_keep_binary_header_values() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", HeaderValue::from_bytes(b"\xffbin").unwrap());
        headers.append("x-a", HeaderValue::from_static("two"));
        let stored = StoredAnswer::new(StatusCode::CREATED, &headers, None);
        assert_eq!(stored.header_map(), headers);
        assert_eq!(stored.status(), StatusCode::CREATED);
        assert!(stored.body_bytes().is_none());
    }
}
