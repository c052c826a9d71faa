//! Group commit for the state store's hot writes: every paid request claims its payment and advances it twice,
//! and each of those writes must be committed before the request goes on. Sent one by one, they queue on the
//! database's single writer (SQLite) or on its commit flush (PostgreSQL), each paying a round trip of its own.
//! Here one task takes every write waiting at that moment (no timer: a write that finds the queue empty goes
//! at once) and commits all the claims as one multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING` and all
//! the advances as one `UPDATE … FROM (…) RETURNING`; each caller learns from the returned keys whether its
//! own row was written, after the commit. A group that fails is retried write by write, so one bad write
//! fails alone.

use std::collections::HashSet;

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

/// At most this many writes go in one statement (well under both databases' bind-parameter limits).
const MAX_GROUP: usize = 128;
/// And at most about this many bytes of stored answers.
const MAX_GROUP_BYTES: usize = 8 * 1024 * 1024;

/// A new payment's row, `claimed` by `owner` until `lease_until` (ms).
#[derive(Debug, Clone)]
pub struct NewClaim {
    pub pkey: String,
    pub owner: String,
    pub lease_until: i64,
    pub route: String,
    pub network: String,
    pub payer: String,
    pub amount: String,
    pub expires_at: i64,
    pub now_ms: i64,
}

/// A claimed payment moving to `stage`, with what it carries; written only while `owner` holds it.
#[derive(Debug, Clone)]
pub struct Advance {
    pub pkey: String,
    pub owner: String,
    pub stage: &'static str,
    pub answer: Option<String>,
    pub settlement: Option<String>,
    pub keep_lease: bool,
    pub now_ms: i64,
}

impl Advance {
    fn bytes(&self) -> usize {
        self.answer.as_ref().map_or(0, String::len) + self.settlement.as_ref().map_or(0, String::len)
    }
}

type Reply = oneshot::Sender<Result<bool, sqlx::Error>>;

enum Write {
    Claim(NewClaim, Reply),
    Advance(Advance, Reply),
}

/// The handle through which writes join the next group.
#[derive(Clone)]
pub struct StoreWriter {
    queue: mpsc::Sender<Write>,
}

impl StoreWriter {
    /// Starts the writing task on `pool`; it ends when every handle is dropped.
    pub fn spawn(pool: AnyPool) -> Self {
        let (queue, receiver) = mpsc::channel(MAX_GROUP * 8);
        tokio::spawn(run(pool, receiver));
        StoreWriter { queue }
    }

    /// Inserts the row unless one with its key exists. `true`: this claim's row was written.
    pub async fn claim(&self, claim: NewClaim) -> Result<bool, sqlx::Error> {
        self.send(|reply| Write::Claim(claim, reply)).await
    }

    /// Updates the row if `owner` still holds it. `true`: it did, and the row was written.
    pub async fn advance(&self, advance: Advance) -> Result<bool, sqlx::Error> {
        self.send(|reply| Write::Advance(advance, reply)).await
    }

    async fn send(&self, write: impl FnOnce(Reply) -> Write) -> Result<bool, sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        if self.queue.send(write(reply)).await.is_err() {
            return Err(sqlx::Error::PoolClosed);
        }
        answer.await.unwrap_or(Err(sqlx::Error::PoolClosed))
    }
}

async fn run(pool: AnyPool, mut receiver: mpsc::Receiver<Write>) {
    while let Some(first) = receiver.recv().await {
        let mut claims = Vec::new();
        let mut advances = Vec::new();
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(write) = next.take() {
            match write {
                Write::Claim(claim, reply) => claims.push((claim, reply)),
                Write::Advance(advance, reply) => {
                    bytes += advance.bytes();
                    advances.push((advance, reply));
                }
            }
            if claims.len() + advances.len() < MAX_GROUP && bytes < MAX_GROUP_BYTES {
                next = receiver.try_recv().ok();
            }
        }
        if !claims.is_empty() {
            commit(&pool, claims, insert_claims).await;
        }
        if !advances.is_empty() {
            commit(&pool, advances, update_advances).await;
        }
    }
}

/// Something written as part of a group, keyed by its payment.
trait Keyed {
    fn pkey(&self) -> &str;
}

impl Keyed for NewClaim {
    fn pkey(&self) -> &str {
        &self.pkey
    }
}

impl Keyed for Advance {
    fn pkey(&self) -> &str {
        &self.pkey
    }
}

/// Runs the group as one statement and answers each write by whether its key came back. A key that occurs
/// twice goes in a later statement (two claims of one payment: the second finds the first's row). A failed
/// statement is retried write by write.
async fn commit<T, F>(pool: &AnyPool, writes: Vec<(T, Reply)>, statement: fn(AnyPool, Vec<T>) -> F)
where
    T: Keyed + Clone,
    F: std::future::Future<Output = Result<HashSet<String>, sqlx::Error>>,
{
    let mut pending = writes;
    while !pending.is_empty() {
        let mut seen = HashSet::new();
        let (group, later): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(w, _)| seen.insert(w.pkey().to_owned()));
        pending = later;
        let rows: Vec<T> = group.iter().map(|(w, _)| w.clone()).collect();
        match statement(pool.clone(), rows).await {
            Ok(written) => {
                for (write, reply) in group {
                    let _ = reply.send(Ok(written.contains(write.pkey())));
                }
            }
            Err(_) if group.len() > 1 => {
                for (write, reply) in group {
                    let pkey = write.pkey().to_owned();
                    let one = statement(pool.clone(), vec![write])
                        .await
                        .map(|written| written.contains(&pkey));
                    let _ = reply.send(one);
                }
            }
            Err(e) => {
                if let Some((_, reply)) = group.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
        }
    }
}

/// `$n` for value `column` (from 1) of row `row` (from 0), rows `width` values wide.
fn p(row: usize, width: usize, column: usize) -> String {
    format!("${}", row * width + column)
}

async fn insert_claims(pool: AnyPool, claims: Vec<NewClaim>) -> Result<HashSet<String>, sqlx::Error> {
    let values: Vec<String> = (0..claims.len())
        .map(|r| {
            let v = |c| p(r, 9, c);
            format!(
                "({}, 'claimed', {}, {}, {}, {}, {}, {}, {}, {}, {})",
                v(1),
                v(2),
                v(3),
                v(4),
                v(5),
                v(6),
                v(7),
                v(8),
                v(9),
                v(9)
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO proxy_payments (pkey, stage, owner, lease_until, route, network, payer, amount, expires_at, \
         created_at, updated_at) VALUES {} ON CONFLICT (pkey) DO NOTHING RETURNING pkey",
        values.join(", ")
    );
    let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
    for c in claims {
        query = query
            .bind(c.pkey)
            .bind(c.owner)
            .bind(c.lease_until)
            .bind(c.route)
            .bind(c.network)
            .bind(c.payer)
            .bind(c.amount)
            .bind(c.expires_at)
            .bind(c.now_ms);
    }
    Ok(query.fetch_all(&pool).await?.into_iter().collect())
}

async fn update_advances(pool: AnyPool, advances: Vec<Advance>) -> Result<HashSet<String>, sqlx::Error> {
    // The first row names the columns; the others follow in the same order.
    let selects: Vec<String> = (0..advances.len())
        .map(|r| {
            let v = |c| p(r, 7, c);
            if r == 0 {
                format!(
                    "SELECT {} AS k, {} AS o, {} AS s, {} AS a, {} AS st, {} AS keep, {} AS t",
                    v(1),
                    v(2),
                    v(3),
                    v(4),
                    v(5),
                    v(6),
                    v(7)
                )
            } else {
                format!(
                    "SELECT {}, {}, {}, {}, {}, {}, {}",
                    v(1),
                    v(2),
                    v(3),
                    v(4),
                    v(5),
                    v(6),
                    v(7)
                )
            }
        })
        .collect();
    let sql = format!(
        "UPDATE proxy_payments SET stage = v.s, answer = COALESCE(v.a, proxy_payments.answer), \
         settlement = COALESCE(v.st, proxy_payments.settlement), \
         lease_until = CASE WHEN v.keep = 1 THEN proxy_payments.lease_until ELSE 0 END, updated_at = v.t \
         FROM ({}) AS v WHERE proxy_payments.pkey = v.k AND proxy_payments.owner = v.o RETURNING pkey",
        selects.join(" UNION ALL ")
    );
    let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
    for a in advances {
        query = query
            .bind(a.pkey)
            .bind(a.owner)
            .bind(a.stage)
            .bind(a.answer)
            .bind(a.settlement)
            .bind(i64::from(a.keep_lease))
            .bind(a.now_ms);
    }
    Ok(query.fetch_all(&pool).await?.into_iter().collect())
}
