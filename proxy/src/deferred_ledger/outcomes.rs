//! The settler's outcomes recorded in groups: a round settles up to `batch_size` payments at once (the
//! facilitator batches them into multicall transactions), and recording each in a transaction of its own queued
//! them one by one on the state database's single writer, against the request path's writes. Here the outcomes
//! of a round go in one transaction per [`MAX_GROUP`]: one statement ends the leases still held (deleting the
//! reservation rows), one moves those payments to their final stage with their receipts, one refuses the payers
//! to blame. A lease that was lost changes nothing, exactly as one by one; a crash before the commit leaves
//! every row under its lease, to be taken again once it runs out and settled again idempotently.

use std::collections::HashSet;

use protocol::SettleResponse;
use sqlx::{Any, Transaction};

use super::{DeferredLedger, DueSettlement, corrupt, now_ms};
use crate::payment_store::StoreError;

/// At most this many outcomes go in one transaction (well under the bind-parameter limits).
const MAX_GROUP: usize = 128;

/// A final outcome of one leased payment.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    pub due: &'a DueSettlement,
    pub settlement: &'a SettleResponse,
    /// `None`: settled. `Some(blame)`: refused for good after delivery; `blame` refuses its payer deferred
    /// service from then on.
    pub failed: Option<bool>,
}

impl Outcome<'_> {
    fn stage(&self) -> &'static str {
        match self.failed {
            None => "settled",
            Some(_) => "settlement_failed_after_delivery",
        }
    }
}

impl DeferredLedger {
    /// Records final outcomes; for each, in order, whether it was recorded (`false`: its lease was lost, and
    /// nothing of it changed).
    pub async fn record(&self, outcomes: &[Outcome<'_>]) -> Result<Vec<bool>, StoreError> {
        let mut recorded = Vec::with_capacity(outcomes.len());
        for group in outcomes.chunks(MAX_GROUP) {
            let kept = self.record_group(group).await?;
            recorded.extend(group.iter().map(|o| kept.contains(&o.due.pkey)));
        }
        Ok(recorded)
    }

    async fn record_group(&self, group: &[Outcome<'_>]) -> Result<HashSet<String>, StoreError> {
        let mut texts = Vec::with_capacity(group.len());
        for outcome in group {
            texts.push(serde_json::to_string(outcome.settlement).map_err(|e| corrupt(&outcome.due.pkey, e))?);
        }
        let mut tx = self.pool.begin().await?;
        let kept = end_leases(&mut tx, group).await?;
        let t = now_ms();
        let finished: Vec<(&Outcome<'_>, &String)> = group
            .iter()
            .zip(&texts)
            .filter(|(o, _)| kept.contains(&o.due.pkey))
            .collect();
        if !finished.is_empty() {
            finish_payments(&mut tx, &finished, t).await?;
            refuse_payers(&mut tx, &finished, t).await?;
        }
        tx.commit().await?;
        Ok(kept)
    }
}

/// Deletes the reservation rows still leased by their outcomes' owners; their keys.
async fn end_leases(tx: &mut Transaction<'static, Any>, group: &[Outcome<'_>]) -> Result<HashSet<String>, StoreError> {
    let pairs: Vec<String> = (0..group.len())
        .map(|i| format!("(pkey = ${} AND lease_owner = ${})", 1 + 2 * i, 2 + 2 * i))
        .collect();
    let sql = format!("DELETE FROM proxy_deferred WHERE {} RETURNING pkey", pairs.join(" OR "));
    let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
    for outcome in group {
        query = query.bind(outcome.due.pkey.clone()).bind(outcome.due.owner.clone());
    }
    Ok(query.fetch_all(&mut **tx).await?.into_iter().collect())
}

/// Moves the payments to their final stage with their receipts.
async fn finish_payments(
    tx: &mut Transaction<'static, Any>,
    finished: &[(&Outcome<'_>, &String)],
    t: i64,
) -> Result<(), StoreError> {
    let selects: Vec<String> = (0..finished.len())
        .map(|r| {
            let at = 2 + 3 * r;
            if r == 0 {
                format!("SELECT ${at} AS k, ${} AS s, ${} AS st", at + 1, at + 2)
            } else {
                format!("SELECT ${at}, ${}, ${}", at + 1, at + 2)
            }
        })
        .collect();
    let sql = format!(
        "UPDATE proxy_payments SET stage = v.s, settlement = v.st, lease_until = 0, updated_at = $1 \
         FROM ({}) AS v WHERE proxy_payments.pkey = v.k AND proxy_payments.stage = 'deferred'",
        selects.join(" UNION ALL ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(t);
    for (outcome, text) in finished {
        query = query
            .bind(outcome.due.pkey.clone())
            .bind(outcome.stage())
            .bind((*text).clone());
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Refuses the payers of the outcomes that blame them (the first refusal of a payer is the one kept).
async fn refuse_payers(
    tx: &mut Transaction<'static, Any>,
    finished: &[(&Outcome<'_>, &String)],
    t: i64,
) -> Result<(), StoreError> {
    let mut seen = HashSet::new();
    let blamed: Vec<&Outcome<'_>> = finished
        .iter()
        .map(|(o, _)| *o)
        .filter(|o| o.failed == Some(true))
        .filter(|o| seen.insert((o.due.network.clone(), o.due.asset, o.due.payer.clone())))
        .collect();
    if blamed.is_empty() {
        return Ok(());
    }
    let rows: Vec<String> = (0..blamed.len())
        .map(|r| {
            let at = 2 + 5 * r;
            format!("(${at}, ${}, ${}, ${}, ${}, $1)", at + 1, at + 2, at + 3, at + 4)
        })
        .collect();
    let sql = format!(
        "INSERT INTO proxy_refused_payers (network, asset, payer, pkey, reason, created_at) VALUES {} \
         ON CONFLICT (network, asset, payer) DO NOTHING",
        rows.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(t);
    for o in blamed {
        query = query
            .bind(o.due.network.clone())
            .bind(format!("{:#x}", o.due.asset))
            .bind(o.due.payer.clone())
            .bind(o.due.pkey.clone())
            .bind(o.settlement.error_reason.clone().unwrap_or_default());
    }
    query.execute(&mut **tx).await?;
    Ok(())
}
