//! The buyer's persistent spend ledger (sqlx; a SQLite file by default, PostgreSQL by URL, the facilitator's
//! store conventions): every signed payment with its URL, host, amount and outcome. A payment is recorded *and*
//! checked against its payer's budgets before the signature leaves the process, serialised per payer (one
//! SQLite writer at a time; a PostgreSQL advisory transaction lock on the payer), so concurrent buyers sharing
//! one ledger can never overspend a budget together. A payment counts until it is proven unsettled (see
//! [`SpendState`]); reports are drawn from the same rows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, FromRow};

#[derive(Debug, thiserror::Error)]
pub enum SpendLedgerError {
    #[error("spend ledger database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("spend ledger migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// Where a payment stands. Only `Unsettled` frees its amount, and only proof gets a payment there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendState {
    /// Recorded; the signature is about to leave the process (or has): counts against budgets.
    Signed,
    /// A success receipt (`PAYMENT-RESPONSE`, a transfer's receipt) says it settled.
    Settled,
    /// Sent, but nothing proves where it stands (no answer, no receipt, an error, a refusal, a facilitator
    /// timeout): counts, since the money may move, until `nerdcabal spend reconcile` settles the question.
    Pending,
    /// Proven never to settle: the signature never left the process, the node refused the transaction, the
    /// transfer reverted or was replaced, or the chain shows the authorization unused after its `validBefore`.
    Unsettled,
}

impl SpendState {
    pub fn as_str(self) -> &'static str {
        match self {
            SpendState::Signed => "signed",
            SpendState::Settled => "settled",
            SpendState::Pending => "pending",
            SpendState::Unsettled => "unsettled",
        }
    }
}

/// How a payment moves money, and so how the chain can prove its fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendKind {
    /// An EIP-3009 authorization handed to a seller (x402).
    X402,
    /// A USDC transfer the buyer broadcast itself.
    Transfer,
}

impl SpendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SpendKind::X402 => "x402",
            SpendKind::Transfer => "transfer",
        }
    }
}

/// A payment about to be signed (or, for a transfer, signed and about to be broadcast).
#[derive(Debug, Clone)]
pub struct NewSpend<'a> {
    pub kind: SpendKind,
    pub url: &'a str,
    pub host: &'a str,
    pub network: &'a str,
    pub asset: Address,
    pub pay_to: Address,
    pub payer: Address,
    pub nonce: B256,
    pub amount: i64,
    /// x402: the authorization's `validBefore` (Unix seconds, chain time).
    pub valid_before: Option<i64>,
    /// Transfer: the transaction's hash, known before it is broadcast.
    pub tx_hash: Option<&'a str>,
    /// Transfer: the account nonce the transaction uses.
    pub chain_nonce: Option<i64>,
}

/// The limits a new payment must fit, in atomic units; `None` is no limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budgets {
    pub daily: Option<i64>,
    pub per_host_daily: Option<i64>,
}

/// Which budget a refused payment would have broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetExceeded {
    /// `daily` or `host`.
    pub scope: &'static str,
    pub limit: i64,
    pub spent: i64,
    pub requested: i64,
}

/// One row of a spending report.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct ReportRow {
    /// The host, or the UTC day (`YYYY-MM-DD`).
    pub key: String,
    pub total: i64,
    pub payments: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct SpendRecord {
    pub id: String,
    pub kind: String,
    pub url: String,
    pub host: String,
    pub network: String,
    pub asset: String,
    pub pay_to: String,
    pub payer: String,
    pub nonce: String,
    pub amount: i64,
    pub state: String,
    pub tx_hash: Option<String>,
    pub reason: Option<String>,
    pub valid_before: Option<i64>,
    pub chain_nonce: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const RECORD_COLUMNS: &str = "id, kind, url, host, network, asset, pay_to, payer, nonce, amount, state, tx_hash, \
    reason, valid_before, chain_nonce, created_at, updated_at";

#[derive(Debug, Clone)]
pub struct SpendLedger {
    pool: AnyPool,
    postgres: bool,
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A ledger amount (USDC atomic units) in dollars, e.g. `"$0.05"`.
pub fn usd(atomic: i64) -> String {
    protocol::money::format_usd(alloy::primitives::U256::from(atomic.max(0) as u64), 6)
}

/// Midnight UTC of the day `t` falls in.
pub fn day_start(t: i64) -> i64 {
    t - t.rem_euclid(86_400)
}

/// States that count against budgets: all but the proven unsettled.
pub(crate) const COUNTED: &str = "('signed', 'settled', 'pending')";
/// States whose outcome is still open.
const OPEN: &str = "('signed', 'pending')";

/// The PostgreSQL advisory lock that serialises one payer's reservations (a fixed namespace in the high
/// bits, the payer's first bytes below), so buyers paying from other addresses do not wait.
fn payer_lock_key(payer: Address) -> i64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&payer.as_slice()[..8]);
    (i64::from_be_bytes(bytes) & 0x0000_ffff_ffff_ffff) | (0x4e43_i64 << 48)
}

/// Which open payments to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenScope {
    /// Every signed or pending payment.
    All,
    /// Only today's (the ones budgets count), oldest first, at most `limit`: what `pay` and `mcp` check at start.
    Today { now: i64, limit: i64 },
}

impl SpendLedger {
    /// Opens (creating if needed) `sqlite://path`, `sqlite::memory:` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Self, SpendLedgerError> {
        install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let url = if sqlite && !url.contains("mode=") && !url.contains(":memory:") {
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        } else {
            url.to_owned()
        };
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        if sqlite {
            options = options
                .max_connections(if url.contains(":memory:") { 1 } else { 4 })
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        use sqlx::Executor;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        Ok(())
                    })
                });
        } else {
            options = options.max_connections(4);
        }
        let pool = options.connect(&url).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(SpendLedger {
            pool,
            postgres: !sqlite,
        })
    }

    /// The id a spend's row gets.
    pub fn spend_id(spend: &NewSpend<'_>) -> String {
        format!("{:#x}-{:#x}", spend.payer, spend.nonce)
    }

    /// The insert of `spend` as signed, guarded by its payer's budgets today (one statement: it inserts
    /// nothing when a budget would be exceeded).
    pub(crate) fn reserve_statement<'q>(
        id: &'q str,
        spend: &'q NewSpend<'q>,
        budgets: Budgets,
        now: i64,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        let since = day_start(now);
        let daily = budgets.daily.unwrap_or(i64::MAX);
        let per_host = budgets.per_host_daily.unwrap_or(i64::MAX);
        let sql = format!(
            "INSERT INTO payments (id, kind, url, host, network, asset, pay_to, payer, nonce, amount, state, tx_hash, \
             valid_before, chain_nonce, created_at, updated_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'signed', $11, $12, $13, $14, $14 \
             WHERE (SELECT COALESCE(SUM(amount), 0) FROM payments WHERE payer = $8 AND state IN {COUNTED} AND created_at >= $15) <= $16 - $10 \
             AND (SELECT COALESCE(SUM(amount), 0) FROM payments WHERE payer = $8 AND state IN {COUNTED} AND created_at >= $15 AND host = $4) <= $17 - $10"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(spend.kind.as_str())
            .bind(spend.url)
            .bind(spend.host)
            .bind(spend.network)
            .bind(spend.asset.to_checksum(None))
            .bind(spend.pay_to.to_checksum(None))
            .bind(spend.payer.to_checksum(None))
            .bind(format!("{:#x}", spend.nonce))
            .bind(spend.amount)
            .bind(spend.tx_hash)
            .bind(spend.valid_before)
            .bind(spend.chain_nonce)
            .bind(now)
            .bind(since)
            .bind(daily)
            .bind(per_host)
    }

    /// A transaction in which `payer`'s reservations are serialised against every other process: SQLite's
    /// write lock taken at `BEGIN IMMEDIATE` (so reads made in it cannot go stale), PostgreSQL's advisory
    /// transaction lock on the payer (the one [`Self::reserve`] takes).
    pub(crate) async fn begin_serialised(
        &self,
        payer: Address,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, SpendLedgerError> {
        if self.postgres {
            let mut tx = self.pool.begin().await?;
            sqlx::query("SELECT CAST(1 AS BIGINT) FROM (SELECT pg_advisory_xact_lock($1)) AS payer_lock")
                .bind(payer_lock_key(payer))
                .fetch_one(&mut *tx)
                .await?;
            Ok(tx)
        } else {
            Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
        }
    }

    /// Which budget a refused reservation would have broken (read after the refusal).
    pub(crate) async fn exceeded(
        &self,
        spend: &NewSpend<'_>,
        budgets: Budgets,
        now: i64,
    ) -> Result<BudgetExceeded, SpendLedgerError> {
        let since = day_start(now);
        let daily = budgets.daily.unwrap_or(i64::MAX);
        let per_host = budgets.per_host_daily.unwrap_or(i64::MAX);
        let spent = self.spent_since(spend.payer, since, None).await?;
        if spent.saturating_add(spend.amount) > daily {
            return Ok(BudgetExceeded {
                scope: "daily",
                limit: daily,
                spent,
                requested: spend.amount,
            });
        }
        let host_spent = self.spent_since(spend.payer, since, Some(spend.host)).await?;
        Ok(BudgetExceeded {
            scope: "host",
            limit: per_host,
            spent: host_spent,
            requested: spend.amount,
        })
    }

    /// Records `spend` as signed if it fits its payer's budgets today; otherwise records nothing and says
    /// which budget.
    pub async fn reserve(
        &self,
        spend: &NewSpend<'_>,
        budgets: Budgets,
        now: i64,
    ) -> Result<Result<String, BudgetExceeded>, SpendLedgerError> {
        let id = Self::spend_id(spend);
        // The budget sums and the insert are one statement. SQLite runs it under its single write lock, so it
        // is atomic as it stands; PostgreSQL (READ COMMITTED) would let two buyers read the same sums, so
        // there it runs in a transaction holding the payer's advisory lock, and each statement after the lock
        // sees every reservation committed before it.
        let insert = Self::reserve_statement(&id, spend, budgets, now);
        let inserted = if self.postgres {
            let mut tx = self.begin_serialised(spend.payer).await?;
            let inserted = insert.execute(&mut *tx).await?;
            tx.commit().await?;
            inserted
        } else {
            insert.execute(&self.pool).await?
        };
        if inserted.rows_affected() == 1 {
            return Ok(Ok(id));
        }
        Ok(Err(self.exceeded(spend, budgets, now).await?))
    }

    /// Moves an open (signed or pending) payment to its outcome; a settled or unsettled one stays as it is.
    /// Returns whether the row moved.
    /// Removes the record of a payment that was refused before its signature existed (`unsettled` for
    /// `reason`), so the same authorization can be recorded again when it is paid after all — an on-chain
    /// treasury's owners approved it. Returns whether a row was removed; any other row is left alone.
    pub async fn forget_unsent(&self, id: &str, reason: &str) -> Result<bool, SpendLedgerError> {
        let done = sqlx::query("DELETE FROM payments WHERE id = $1 AND state = $2 AND reason = $3")
            .bind(id)
            .bind(SpendState::Unsettled.as_str())
            .bind(reason)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn finish(
        &self,
        id: &str,
        state: SpendState,
        tx_hash: Option<&str>,
        reason: Option<&str>,
    ) -> Result<bool, SpendLedgerError> {
        let sql = format!(
            "UPDATE payments SET state = $1, tx_hash = COALESCE($2, tx_hash), reason = $3, updated_at = $4 \
             WHERE id = $5 AND state IN {OPEN}"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state.as_str())
            .bind(tx_hash)
            .bind(reason)
            .bind(unix_now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// What counts against `payer`'s budgets since `since`, for one host or all.
    pub async fn spent_since(&self, payer: Address, since: i64, host: Option<&str>) -> Result<i64, SpendLedgerError> {
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM payments \
             WHERE payer = $1 AND state IN {COUNTED} AND created_at >= $2 AND (CAST($3 AS TEXT) IS NULL OR host = $3)"
        );
        let total: (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(payer.to_checksum(None))
            .bind(since)
            .bind(host)
            .fetch_one(&self.pool)
            .await?;
        Ok(total.0)
    }

    /// `payer`'s totals since `since` grouped by host, or by UTC day.
    pub async fn report(&self, payer: Address, since: i64, by_day: bool) -> Result<Vec<ReportRow>, SpendLedgerError> {
        let key = if by_day {
            // Integer day number → date text, the same in SQLite and PostgreSQL is awkward; group by the day's
            // start and format in Rust.
            "CAST((created_at - (created_at % 86400)) AS TEXT)"
        } else {
            "host"
        };
        let sql = format!(
            "SELECT {key} AS key, CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total, CAST(COUNT(*) AS BIGINT) AS payments \
             FROM payments WHERE payer = $1 AND state IN {COUNTED} AND created_at >= $2 GROUP BY 1 ORDER BY 1"
        );
        let mut rows: Vec<ReportRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(payer.to_checksum(None))
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        if by_day {
            for row in &mut rows {
                if let Ok(start) = row.key.parse::<i64>() {
                    row.key = civil_date(start);
                }
            }
        }
        Ok(rows)
    }

    /// One payment by its id.
    pub async fn get(&self, id: &str) -> Result<Option<SpendRecord>, SpendLedgerError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM payments WHERE id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The most recent payments, newest first.
    pub async fn recent(&self, limit: i64) -> Result<Vec<SpendRecord>, SpendLedgerError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM payments ORDER BY created_at DESC, id LIMIT $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Signed and pending payments, oldest first.
    pub async fn open_payments(&self, scope: OpenScope) -> Result<Vec<SpendRecord>, SpendLedgerError> {
        let rows = match scope {
            OpenScope::All => {
                let sql =
                    format!("SELECT {RECORD_COLUMNS} FROM payments WHERE state IN {OPEN} ORDER BY created_at, id");
                sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?
            }
            OpenScope::Today { now, limit } => {
                let sql = format!(
                    "SELECT {RECORD_COLUMNS} FROM payments WHERE state IN {OPEN} AND created_at >= $1 \
                     ORDER BY created_at, id LIMIT $2"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(day_start(now))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the database is PostgreSQL (else SQLite).
    pub fn is_postgres(&self) -> bool {
        self.postgres
    }
}

/// `YYYY-MM-DD` of a Unix time (UTC), by the days-from-civil algorithm.
pub fn civil_date(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spend<'a>(host: &'a str, amount: i64) -> NewSpend<'a> {
        NewSpend {
            kind: SpendKind::X402,
            url: "http://h/x",
            host,
            network: "eip155:1",
            asset: Address::repeat_byte(1),
            pay_to: Address::repeat_byte(2),
            payer: Address::repeat_byte(3),
            nonce: B256::random(),
            amount,
            valid_before: None,
            tx_hash: None,
            chain_nonce: None,
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(1_795_392_000), "2026-11-23");
        assert_eq!(day_start(1_795_392_000 + 3_600), 1_795_392_000);
    }

    #[tokio::test]
    async fn budgets_hold_across_hosts_and_days_and_unsettled_payments_do_not_count() {
        let dir = std::env::temp_dir().join(format!("nerdcabal-spend-{}", B256::random()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("spend.db").display());
        let ledger = SpendLedger::open(&url).await.unwrap();
        let budgets = Budgets {
            daily: Some(100),
            per_host_daily: Some(60),
        };
        let now = 1_795_392_000 + 7_200;
        let payer = Address::repeat_byte(3);
        let a = ledger.reserve(&spend("a", 50), budgets, now).await.unwrap().unwrap();
        let host = ledger
            .reserve(&spend("a", 20), budgets, now)
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(
            (host.scope, host.limit, host.spent, host.requested),
            ("host", 60, 50, 20)
        );
        ledger.reserve(&spend("b", 40), budgets, now).await.unwrap().unwrap();
        let daily = ledger
            .reserve(&spend("c", 20), budgets, now)
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!((daily.scope, daily.spent), ("daily", 90));
        // The seller did not settle `a`: its amount is free again.
        ledger
            .finish(&a, SpendState::Unsettled, None, Some("upstream_error"))
            .await
            .unwrap();
        ledger.reserve(&spend("c", 20), budgets, now).await.unwrap().unwrap();
        // Tomorrow is a new day.
        ledger
            .reserve(&spend("a", 60), budgets, now + 86_400)
            .await
            .unwrap()
            .unwrap();
        // Budgets survive reopening.
        drop(ledger);
        let reopened = SpendLedger::open(&url).await.unwrap();
        assert_eq!(reopened.spent_since(payer, day_start(now), None).await.unwrap(), 120);
        let by_host = reopened.report(payer, day_start(now), false).await.unwrap();
        assert_eq!(
            by_host.iter().map(|r| (r.key.as_str(), r.total)).collect::<Vec<_>>(),
            [("a", 60), ("b", 40), ("c", 20)]
        );
        let by_day = reopened.report(payer, 0, true).await.unwrap();
        assert_eq!(
            by_day.iter().map(|r| (r.key.as_str(), r.total)).collect::<Vec<_>>(),
            [("2026-11-23", 60), ("2026-11-24", 60)]
        );
        // Another payer's payments are not this payer's budget.
        assert_eq!(
            reopened
                .spent_since(Address::repeat_byte(4), day_start(now), None)
                .await
                .unwrap(),
            0
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
