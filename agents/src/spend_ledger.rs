//! The buyer's persistent spend ledger (sqlx; a SQLite file by default, PostgreSQL by URL, the facilitator's
//! store conventions): every signed payment with its URL, host, amount and outcome. A payment is recorded *and*
//! checked against the budgets in one statement before the signature leaves the process, so concurrent
//! buyers sharing one ledger can never overspend a budget together; reports are drawn from the same rows.

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

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendState {
    /// Signed and sent (or about to be); counts against budgets.
    Signed,
    /// The seller settled it on chain.
    Settled,
    /// Submitted but not final, or the answer was lost: counts, since the money may have moved.
    Pending,
    /// The seller did not settle it (refused, upstream error): no money moved.
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

/// A payment about to be signed.
#[derive(Debug, Clone)]
pub struct NewSpend<'a> {
    pub url: &'a str,
    pub host: &'a str,
    pub network: &'a str,
    pub asset: Address,
    pub pay_to: Address,
    pub payer: Address,
    pub nonce: B256,
    pub amount: i64,
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
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct SpendLedger {
    pool: AnyPool,
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

/// States that count against budgets.
const COUNTED: &str = "('signed', 'settled', 'pending')";

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
        Ok(SpendLedger { pool })
    }

    /// Records `spend` as signed if it fits `budgets` today; otherwise records nothing and says which budget.
    pub async fn reserve(
        &self,
        spend: &NewSpend<'_>,
        budgets: Budgets,
        now: i64,
    ) -> Result<Result<String, BudgetExceeded>, SpendLedgerError> {
        let id = format!("{:#x}-{:#x}", spend.payer, spend.nonce);
        let since = day_start(now);
        let daily = budgets.daily.unwrap_or(i64::MAX);
        let per_host = budgets.per_host_daily.unwrap_or(i64::MAX);
        // One statement: the budget sums and the insert cannot interleave with another buyer's.
        let sql = format!(
            "INSERT INTO payments (id, url, host, network, asset, pay_to, payer, nonce, amount, state, created_at, updated_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, 'signed', $10, $10 \
             WHERE (SELECT COALESCE(SUM(amount), 0) FROM payments WHERE state IN {COUNTED} AND created_at >= $11) <= $12 - $9 \
             AND (SELECT COALESCE(SUM(amount), 0) FROM payments WHERE state IN {COUNTED} AND created_at >= $11 AND host = $3) <= $13 - $9"
        );
        let inserted = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&id)
            .bind(spend.url)
            .bind(spend.host)
            .bind(spend.network)
            .bind(spend.asset.to_checksum(None))
            .bind(spend.pay_to.to_checksum(None))
            .bind(spend.payer.to_checksum(None))
            .bind(format!("{:#x}", spend.nonce))
            .bind(spend.amount)
            .bind(now)
            .bind(since)
            .bind(daily)
            .bind(per_host)
            .execute(&self.pool)
            .await?;
        if inserted.rows_affected() == 1 {
            return Ok(Ok(id));
        }
        let spent = self.spent_since(since, None).await?;
        if spent.saturating_add(spend.amount) > daily {
            return Ok(Err(BudgetExceeded {
                scope: "daily",
                limit: daily,
                spent,
                requested: spend.amount,
            }));
        }
        let host_spent = self.spent_since(since, Some(spend.host)).await?;
        Ok(Err(BudgetExceeded {
            scope: "host",
            limit: per_host,
            spent: host_spent,
            requested: spend.amount,
        }))
    }

    /// Moves a payment to its outcome.
    pub async fn finish(
        &self,
        id: &str,
        state: SpendState,
        tx_hash: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), SpendLedgerError> {
        sqlx::query("UPDATE payments SET state = $1, tx_hash = COALESCE($2, tx_hash), reason = $3, updated_at = $4 WHERE id = $5")
            .bind(state.as_str())
            .bind(tx_hash)
            .bind(reason)
            .bind(unix_now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// What counts against budgets since `since`, for one host or all.
    pub async fn spent_since(&self, since: i64, host: Option<&str>) -> Result<i64, SpendLedgerError> {
        let total: (i64,) = match host {
            Some(host) => {
                let sql = format!(
                    "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM payments WHERE state IN {COUNTED} AND created_at >= $1 AND host = $2"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(since)
                    .bind(host)
                    .fetch_one(&self.pool)
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM payments WHERE state IN {COUNTED} AND created_at >= $1"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(since)
                    .fetch_one(&self.pool)
                    .await?
            }
        };
        Ok(total.0)
    }

    /// Totals since `since` grouped by host, or by UTC day.
    pub async fn report(&self, since: i64, by_day: bool) -> Result<Vec<ReportRow>, SpendLedgerError> {
        let key = if by_day {
            // Integer day number → date text, the same in SQLite and PostgreSQL is awkward; group by the day's
            // start and format in Rust.
            "CAST((created_at - (created_at % 86400)) AS TEXT)"
        } else {
            "host"
        };
        let sql = format!(
            "SELECT {key} AS key, CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total, CAST(COUNT(*) AS BIGINT) AS payments \
             FROM payments WHERE state IN {COUNTED} AND created_at >= $1 GROUP BY 1 ORDER BY 1"
        );
        let mut rows: Vec<ReportRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
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

    /// The most recent payments, newest first.
    pub async fn recent(&self, limit: i64) -> Result<Vec<SpendRecord>, SpendLedgerError> {
        Ok(sqlx::query_as(
            "SELECT id, url, host, network, asset, pay_to, payer, nonce, amount, state, tx_hash, reason, created_at, updated_at \
             FROM payments ORDER BY created_at DESC, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
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
            url: "http://h/x",
            host,
            network: "eip155:1",
            asset: Address::repeat_byte(1),
            pay_to: Address::repeat_byte(2),
            payer: Address::repeat_byte(3),
            nonce: B256::random(),
            amount,
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
        assert_eq!(reopened.spent_since(day_start(now), None).await.unwrap(), 120);
        let by_host = reopened.report(day_start(now), false).await.unwrap();
        assert_eq!(
            by_host.iter().map(|r| (r.key.as_str(), r.total)).collect::<Vec<_>>(),
            [("a", 60), ("b", 40), ("c", 20)]
        );
        let by_day = reopened.report(0, true).await.unwrap();
        assert_eq!(
            by_day.iter().map(|r| (r.key.as_str(), r.total)).collect::<Vec<_>>(),
            [("2026-11-23", 60), ("2026-11-24", 60)]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
