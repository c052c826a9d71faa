//! How many calls of a call window (`access = { calls = N }`) each token has used: in memory by default, or
//! in a database (`state_database`, SQLite or PostgreSQL) so the count survives a restart and is shared by
//! replicas. Taking a call is one conditional upsert, so two requests can never both take the last call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use alloy::primitives::B256;
use moka::future::Cache;
use sqlx::AnyPool;

#[derive(Clone)]
pub enum CallCounter {
    Memory(Cache<B256, Arc<AtomicU32>>),
    Database(AnyPool),
}

impl CallCounter {
    /// Counters in this process only; kept for `lifetime`.
    pub fn memory(lifetime: Duration) -> Self {
        CallCounter::Memory(Cache::builder().time_to_live(lifetime).build())
    }

    /// Counters in the database at `url`, created if needed.
    pub async fn database(url: &str) -> Result<Self, sqlx::Error> {
        let pool = facilitator::ledger::open_pool(url, facilitator::ledger::Durability::ProcessCrash, 1).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS access_calls (token_id TEXT NOT NULL PRIMARY KEY, used BIGINT NOT NULL, expires_at BIGINT NOT NULL)",
        )
        .execute(&pool)
        .await?;
        Ok(CallCounter::Database(pool))
    }

    /// Takes one of `limit` calls for token `id`; `false` when they are used up.
    pub async fn take(&self, id: B256, limit: u32, expires_at: u64) -> Result<bool, sqlx::Error> {
        match self {
            CallCounter::Memory(cache) => {
                let used = cache.get_with(id, async { Arc::new(AtomicU32::new(0)) }).await;
                Ok(used.fetch_add(1, Ordering::SeqCst) < limit)
            }
            CallCounter::Database(pool) => {
                let done = sqlx::query(
                    "INSERT INTO access_calls (token_id, used, expires_at) VALUES ($1, 1, $3) \
                     ON CONFLICT (token_id) DO UPDATE SET used = access_calls.used + 1 WHERE access_calls.used < $2",
                )
                .bind(format!("{id:#x}"))
                .bind(i64::from(limit))
                .bind(i64::try_from(expires_at).unwrap_or(i64::MAX))
                .execute(pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    }
}
