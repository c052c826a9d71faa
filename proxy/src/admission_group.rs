//! Deferred admissions committed in groups: every admission must read the unsettled sums and reserve under the
//! gate row, one after another, or two could both fit a bound only one of them fits. One at a time that is a
//! transaction of seven statements per request on the state database's single writer, and it was the proxy's
//! bound. Here one task takes every admission waiting at that moment (no timer: one that finds the queue empty
//! goes at once) and decides them in one transaction that holds the gate: the refused payers and the unsettled
//! sums (per payer, and the proxy's total) are read once for the group after the gate is taken, then each
//! admission is checked against the sums plus the amounts admitted before it in the group, in arrival order —
//! exactly what the same admissions one transaction each would have decided — and the admitted ones are moved
//! to `reserved` and given their reservation rows by one statement each. An admission whose claim was lost is
//! not reserved; its amount only made the later ones in its group stricter, never looser, so the bounds hold.
//! Across replicas the gate row lock still serialises the groups. A group that fails is decided again
//! admission by admission, so one bad admission fails alone.

use std::collections::{HashMap, HashSet};

use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::config::DeferredSettings;
use crate::deferred_ledger::{Admission, admits};
use crate::payment_store::StoreError;

/// At most this many admissions are decided in one transaction (well under the bind-parameter limits).
const MAX_GROUP: usize = 128;

/// A claimed, verified payment asking to be reserved, in its stored text forms.
#[derive(Debug, Clone)]
pub struct Pending {
    pub pkey: String,
    pub owner: String,
    pub network: String,
    pub asset: String,
    pub payer: String,
    pub amount: i64,
    /// The facilitator request that settles it, as JSON.
    pub request: String,
    pub bounds: DeferredSettings,
}

type Reply = oneshot::Sender<Result<Admission, StoreError>>;

/// The handle through which admissions join the next group.
#[derive(Clone, Debug)]
pub struct AdmissionGroup {
    queue: mpsc::Sender<(Pending, Reply)>,
}

impl AdmissionGroup {
    /// Starts the deciding task on `pool`; it ends when every handle is dropped.
    pub fn spawn(pool: AnyPool) -> Self {
        let (queue, receiver) = mpsc::channel(MAX_GROUP * 8);
        tokio::spawn(run(pool, receiver));
        AdmissionGroup { queue }
    }

    /// Decides `pending` with whatever else is waiting; anything but [`Admission::Admitted`] changes nothing.
    pub async fn admit(&self, pending: Pending) -> Result<Admission, StoreError> {
        let (reply, answer) = oneshot::channel();
        if self.queue.send((pending, reply)).await.is_err() {
            return Err(StoreError::Database(sqlx::Error::PoolClosed));
        }
        answer
            .await
            .unwrap_or(Err(StoreError::Database(sqlx::Error::PoolClosed)))
    }
}

async fn run(pool: AnyPool, mut receiver: mpsc::Receiver<(Pending, Reply)>) {
    while let Some(first) = receiver.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let pending: Vec<Pending> = group.iter().map(|(p, _)| p.clone()).collect();
        match decide(&pool, &pending).await {
            Ok(verdicts) => {
                for ((_, reply), verdict) in group.into_iter().zip(verdicts) {
                    let _ = reply.send(Ok(verdict));
                }
            }
            Err(_) if group.len() > 1 => {
                for (one, reply) in group {
                    let verdict = decide(&pool, std::slice::from_ref(&one))
                        .await
                        .map(|v| v.into_iter().next().unwrap_or(Admission::Lost))
                        .map_err(StoreError::Database);
                    let _ = reply.send(verdict);
                }
            }
            Err(e) => {
                if let Some((_, reply)) = group.into_iter().next() {
                    let _ = reply.send(Err(StoreError::Database(e)));
                }
            }
        }
    }
}

/// The verdicts for `group`, in its order, from one transaction under the gate.
async fn decide(pool: &AnyPool, group: &[Pending]) -> Result<Vec<Admission>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Every group waits here for the one before it (from any replica) to commit, so the sums read next are
    // current.
    sqlx::query("UPDATE proxy_deferred_gate SET admissions = admissions + $1 WHERE id = 1")
        .bind(i64::try_from(group.len()).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    let standing = read_standing(&mut tx, group).await?;
    let (refused, mut owed, mut total) = (standing.refused, standing.owed, standing.total);
    let mut verdicts = Vec::with_capacity(group.len());
    for p in group {
        let market = (p.network.clone(), p.asset.clone(), p.payer.clone());
        if refused.contains(&market) {
            verdicts.push(Admission::RefusedPayer);
            continue;
        }
        let payer_owes = owed.get(&market).copied().unwrap_or(0);
        let amount = unsigned(p.amount);
        let verdict = admits(payer_owes, total, amount, &p.bounds);
        if verdict == Admission::Admitted {
            // Counted for the ones after it, even should its claim turn out lost: stricter, never looser.
            owed.insert(market, payer_owes.saturating_add(amount));
            total = total.saturating_add(amount);
        }
        verdicts.push(verdict);
    }
    let candidates: Vec<&Pending> = group
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| **v == Admission::Admitted)
        .map(|(p, _)| p)
        .collect();
    if candidates.is_empty() {
        tx.rollback().await?;
        return Ok(verdicts);
    }
    let moved = move_to_reserved(&mut tx, &candidates).await?;
    let reserved: Vec<&Pending> = candidates
        .into_iter()
        .filter(|p| moved.contains(&(p.pkey.clone(), p.owner.clone())))
        .collect();
    if !reserved.is_empty() {
        insert_reservations(&mut tx, &reserved).await?;
    }
    tx.commit().await?;
    for (p, verdict) in group.iter().zip(verdicts.iter_mut()) {
        if *verdict == Admission::Admitted && !moved.contains(&(p.pkey.clone(), p.owner.clone())) {
            *verdict = Admission::Lost;
        }
    }
    Ok(verdicts)
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// `$first, $first+1, …` for `n` values.
fn list(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the group's payers stand at, read under the gate.
struct Standing {
    /// (network, asset, payer) refused deferred service.
    refused: HashSet<(String, String, String)>,
    /// What each (network, asset, payer) owes unsettled now.
    owed: HashMap<(String, String, String), u64>,
    /// What the proxy is owed unsettled now, in all.
    total: u64,
}

/// The refused payers of the group, what each of its payers owes and the proxy's total, in one statement
/// (each part of the statement is one more round trip to the database while the gate is held, otherwise).
async fn read_standing(tx: &mut Transaction<'static, Any>, group: &[Pending]) -> Result<Standing, sqlx::Error> {
    let mut markets: Vec<(&str, &str)> = group.iter().map(|p| (p.network.as_str(), p.asset.as_str())).collect();
    markets.sort_unstable();
    markets.dedup();
    let mut parts = Vec::new();
    let mut binds: Vec<&str> = Vec::new();
    for (network, asset) in markets {
        let mut payers: Vec<&str> = group
            .iter()
            .filter(|p| p.network == network && p.asset == asset)
            .map(|p| p.payer.as_str())
            .collect();
        payers.sort_unstable();
        payers.dedup();
        let (n, a) = (binds.len() + 1, binds.len() + 2);
        let listed = list(binds.len() + 3, payers.len());
        binds.push(network);
        binds.push(asset);
        binds.extend(payers);
        parts.push(format!(
            "SELECT 'r' AS kind, network, asset, payer, CAST(0 AS BIGINT) AS owed FROM proxy_refused_payers \
             WHERE network = ${n} AND asset = ${a} AND payer IN ({listed})"
        ));
        parts.push(format!(
            "SELECT 'o', network, asset, payer, CAST(SUM(amount) AS BIGINT) FROM proxy_deferred \
             WHERE network = ${n} AND asset = ${a} AND payer IN ({listed}) GROUP BY network, asset, payer"
        ));
    }
    parts.push("SELECT 't', '', '', '', CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM proxy_deferred".to_owned());
    let mut query =
        sqlx::query_as::<_, (String, String, String, String, i64)>(sqlx::AssertSqlSafe(parts.join(" UNION ALL ")));
    for bind in binds {
        query = query.bind(bind.to_owned());
    }
    let mut standing = Standing {
        refused: HashSet::new(),
        owed: HashMap::new(),
        total: 0,
    };
    for (kind, network, asset, payer, owed) in query.fetch_all(&mut **tx).await? {
        match kind.as_str() {
            "r" => {
                standing.refused.insert((network, asset, payer));
            }
            "o" => {
                standing.owed.insert((network, asset, payer), unsigned(owed));
            }
            _ => standing.total = unsigned(owed),
        }
    }
    Ok(standing)
}

/// Moves the still-claimed rows of their owners to `reserved`; the (key, owner) pairs it moved.
async fn move_to_reserved(
    tx: &mut Transaction<'static, Any>,
    candidates: &[&Pending],
) -> Result<HashSet<(String, String)>, sqlx::Error> {
    let pairs: Vec<String> = (0..candidates.len())
        .map(|i| format!("(pkey = ${} AND owner = ${})", 2 + 2 * i, 3 + 2 * i))
        .collect();
    let sql = format!(
        "UPDATE proxy_payments SET stage = 'reserved', updated_at = $1 WHERE stage = 'claimed' AND ({}) \
         RETURNING pkey, owner",
        pairs.join(" OR ")
    );
    let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql)).bind(now_ms());
    for p in candidates {
        query = query.bind(p.pkey.clone()).bind(p.owner.clone());
    }
    Ok(query.fetch_all(&mut **tx).await?.into_iter().collect())
}

async fn insert_reservations(tx: &mut Transaction<'static, Any>, reserved: &[&Pending]) -> Result<(), sqlx::Error> {
    let rows: Vec<String> = (0..reserved.len())
        .map(|r| {
            let at = 2 + 6 * r;
            format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, '', 0, 0, 0, $1)",
                at,
                at + 1,
                at + 2,
                at + 3,
                at + 4,
                at + 5
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO proxy_deferred (pkey, network, asset, payer, amount, request, lease_owner, lease_until, \
         attempts, next_attempt_at, created_at) VALUES {}",
        rows.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now_ms());
    for p in reserved {
        query = query
            .bind(p.pkey.clone())
            .bind(p.network.clone())
            .bind(p.asset.clone())
            .bind(p.payer.clone())
            .bind(p.amount)
            .bind(p.request.clone());
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
