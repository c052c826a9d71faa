//! Group commit for reservations, the ledger's hottest write: every settlement first takes its payment's key,
//! and with SQLite's single writer and a power-loss-safe commit each, concurrent reservations queue on the
//! write lock (in SQLite's sleeping busy handler) and on one disk flush apiece. Here one task takes every
//! reservation waiting at that moment (no timer: one that finds the queue empty goes at once) and inserts them
//! all in one `INSERT … ON CONFLICT DO NOTHING RETURNING` — one commit, one flush. Each caller is answered
//! after the commit by whether its key came back; two reservations of one key never share a statement, so the
//! second finds the first's row. A failed group is retried reservation by reservation, so one bad row fails
//! alone.

use std::collections::HashSet;

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::record::NewSettlement;

/// At most this many reservations go in one statement (10 values each: well under both databases' limits).
const MAX_GROUP: usize = 256;

type Reply = oneshot::Sender<Result<bool, sqlx::Error>>;

/// A row to insert, in its stored text forms, and the time it is written.
#[derive(Debug, Clone)]
struct Row {
    network: String,
    asset: String,
    payer: String,
    nonce: String,
    payload_hash: String,
    pay_to: String,
    amount: String,
    created_at: i64,
}

impl Row {
    fn key(&self) -> (String, String, String, String) {
        (
            self.network.clone(),
            self.asset.clone(),
            self.payer.clone(),
            self.nonce.clone(),
        )
    }
}

/// The way reservations join the next group.
#[derive(Debug, Clone)]
pub(super) struct ReserveGroups {
    queue: mpsc::Sender<(Row, Reply)>,
}

impl ReserveGroups {
    /// Starts the inserting task on `pool` (so it needs a Tokio runtime); it ends when every handle is dropped.
    pub(super) fn spawn(pool: AnyPool) -> Self {
        let (queue, receiver) = mpsc::channel(MAX_GROUP * 8);
        tokio::spawn(run(pool, receiver));
        ReserveGroups { queue }
    }

    /// Inserts the reserved row unless its key exists. `true`: this reservation's row was written.
    pub(super) async fn reserve(&self, new: &NewSettlement, now: i64) -> Result<bool, sqlx::Error> {
        let row = Row {
            network: new.key.network.clone(),
            asset: format!("{:#x}", new.key.asset),
            payer: format!("{:#x}", new.key.payer),
            nonce: new.key.nonce.to_string(),
            payload_hash: new.payload_hash.to_string(),
            pay_to: format!("{:#x}", new.pay_to),
            amount: new.amount.to_string(),
            created_at: now,
        };
        let (reply, answer) = oneshot::channel();
        if self.queue.send((row, reply)).await.is_err() {
            return Err(sqlx::Error::PoolClosed);
        }
        answer.await.unwrap_or(Err(sqlx::Error::PoolClosed))
    }
}

async fn run(pool: AnyPool, mut receiver: mpsc::Receiver<(Row, Reply)>) {
    while let Some(first) = receiver.recv().await {
        let mut pending = vec![first];
        while pending.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(next) => pending.push(next),
                Err(_) => break,
            }
        }
        while !pending.is_empty() {
            let mut seen = HashSet::new();
            let (group, later): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(row, _)| seen.insert(row.key()));
            pending = later;
            commit(&pool, group).await;
        }
    }
}

async fn commit(pool: &AnyPool, group: Vec<(Row, Reply)>) {
    let rows: Vec<Row> = group.iter().map(|(row, _)| row.clone()).collect();
    match insert(pool, rows).await {
        Ok(written) => {
            for (row, reply) in group {
                let _ = reply.send(Ok(written.contains(&row.key())));
            }
        }
        Err(_) if group.len() > 1 => {
            for (row, reply) in group {
                let key = row.key();
                let _ = reply.send(insert(pool, vec![row]).await.map(|written| written.contains(&key)));
            }
        }
        Err(e) => {
            if let Some((_, reply)) = group.into_iter().next() {
                let _ = reply.send(Err(e));
            }
        }
    }
}

async fn insert(pool: &AnyPool, rows: Vec<Row>) -> Result<HashSet<(String, String, String, String)>, sqlx::Error> {
    const WIDTH: usize = 8;
    let values: Vec<String> = (0..rows.len())
        .map(|r| {
            let p = |c: usize| format!("${}", r * WIDTH + c);
            format!(
                "({}, {}, {}, {}, {}, {}, {}, 'reserved', {}, {})",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                p(6),
                p(7),
                p(8),
                p(8)
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO settlements (network, asset, payer, nonce, payload_hash, pay_to, amount, state, created_at, \
         updated_at) VALUES {} ON CONFLICT DO NOTHING RETURNING network, asset, payer, nonce",
        values.join(", ")
    );
    let mut query = sqlx::query_as::<_, (String, String, String, String)>(sqlx::AssertSqlSafe(sql));
    for row in rows {
        query = query
            .bind(row.network)
            .bind(row.asset)
            .bind(row.payer)
            .bind(row.nonce)
            .bind(row.payload_hash)
            .bind(row.pay_to)
            .bind(row.amount)
            .bind(row.created_at);
    }
    Ok(query.fetch_all(pool).await?.into_iter().collect())
}
