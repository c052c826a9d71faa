//! The compliance audit: every screening decision as one row of the spend ledger's `compliance_audit`
//! table (address, each source's answer as JSON, list versions, decision, what asked, Unix time), and the
//! listing `nerdcabal compliance audit --since` prints.

use sqlx::FromRow;

use crate::buyer::spend_ledger::{SpendLedger, SpendLedgerError};
use crate::compliance::decision::Decision;

/// One recorded decision.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct AuditRow {
    pub id: String,
    /// Checksummed.
    pub address: String,
    /// `clear`, `blocked` or `unavailable`.
    pub decision: String,
    /// JSON array of the sources' answers (`source`, `advisory`, `answer`, `reason`/`detail`/`error`, `version`).
    pub sources: String,
    pub list_version: Option<String>,
    /// What asked: `payee`, `payer`, `screen`.
    pub context: String,
    pub created_at: i64,
}

impl AuditRow {
    /// The sources' answers as JSON.
    pub fn sources_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.sources).unwrap_or(serde_json::Value::Null)
    }
}

/// Records `decision`; returns the row's id.
pub async fn record(ledger: &SpendLedger, decision: &Decision, context: &str) -> Result<String, SpendLedgerError> {
    let id = uuid::Uuid::new_v4().to_string();
    let sources = serde_json::to_string(&decision.sources).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "INSERT INTO compliance_audit (id, address, decision, sources, list_version, context, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(decision.address.to_checksum(None))
    .bind(decision.decision.as_str())
    .bind(sources)
    .bind(decision.list_version())
    .bind(context)
    .bind(decision.at)
    .execute(ledger.pool())
    .await?;
    Ok(id)
}

/// The decisions recorded at or after `since` (Unix seconds), oldest first, at most `limit`.
pub async fn since(ledger: &SpendLedger, since: i64, limit: i64) -> Result<Vec<AuditRow>, SpendLedgerError> {
    let rows = sqlx::query_as::<_, AuditRow>(
        "SELECT id, address, decision, sources, list_version, context, created_at FROM compliance_audit \
         WHERE created_at >= $1 ORDER BY created_at, id LIMIT $2",
    )
    .bind(since)
    .bind(limit)
    .fetch_all(ledger.pool())
    .await?;
    Ok(rows)
}
