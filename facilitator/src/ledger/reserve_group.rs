//! Reservations, the ledger's hottest write, committed in groups ([`super::group_commit`]): every settlement
//! first takes its payment's key, and with SQLite's single writer and a power-loss-safe commit each,
//! concurrent reservations would queue on the write lock (in SQLite's sleeping busy handler) and on one disk
//! flush apiece. A group is one `INSERT … ON CONFLICT DO NOTHING RETURNING`: one commit, one flush.

use std::collections::HashSet;

use sqlx::AnyPool;

use super::group_commit::{GroupCommit, GroupLimits, GroupWrite, row_placeholders};
use super::record::NewSettlement;
use super::store::address_text;

/// A reserved row in its stored text forms, and the time it is written.
#[derive(Debug, Clone)]
pub(super) struct Reservation {
    network: String,
    asset: String,
    payer: String,
    nonce: String,
    payload_hash: String,
    pay_to: String,
    amount: String,
    at: i64,
}

type Key = (String, String, String, String);

impl GroupWrite for Reservation {
    type Key = Key;
    fn key(&self) -> Key {
        (
            self.network.clone(),
            self.asset.clone(),
            self.payer.clone(),
            self.nonce.clone(),
        )
    }
}

/// Starts the reservations' writer on `pool`.
pub(super) fn spawn(pool: AnyPool) -> GroupCommit<Reservation> {
    GroupCommit::spawn(
        pool,
        |pool, rows| Box::pin(insert(pool, rows)),
        GroupLimits {
            writes: 256,
            bytes: usize::MAX,
        },
    )
}

impl Reservation {
    pub(super) fn new(new: &NewSettlement, now: i64) -> Self {
        Reservation {
            network: new.key.network.clone(),
            asset: address_text(new.key.asset),
            payer: address_text(new.key.payer),
            nonce: new.key.nonce.to_string(),
            payload_hash: new.payload_hash.to_string(),
            pay_to: address_text(new.pay_to),
            amount: new.amount.to_string(),
            at: now,
        }
    }
}

async fn insert(pool: AnyPool, rows: Vec<Reservation>) -> Result<HashSet<Key>, sqlx::Error> {
    let values: Vec<String> = (0..rows.len())
        .map(|r| row_placeholders(r, 9, &[(7, "'reserved'")]))
        .collect();
    let sql = format!(
        "INSERT INTO settlements (network, asset, payer, nonce, payload_hash, pay_to, amount, state, created_at, \
         updated_at) VALUES {} ON CONFLICT DO NOTHING RETURNING network, asset, payer, nonce",
        values.join(", ")
    );
    let mut query = sqlx::query_as::<_, Key>(sqlx::AssertSqlSafe(sql));
    for row in rows {
        query = query
            .bind(row.network)
            .bind(row.asset)
            .bind(row.payer)
            .bind(row.nonce)
            .bind(row.payload_hash)
            .bind(row.pay_to)
            .bind(row.amount)
            .bind(row.at)
            .bind(row.at);
    }
    Ok(query.fetch_all(&pool).await?.into_iter().collect())
}
