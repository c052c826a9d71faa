//! Local custody's proposals and owner approvals, stored in the spend ledger's database (tables from
//! migration 0004): a payment the policy sends to the owners is a proposal with an id, the rule that asked,
//! the approvals it needs and an expiry; each owner's approval is its EIP-712 signature. States:
//! `pending_approval` → `approved` (M owners signed) → `executed` (its payment row is known), or `expired`
//! (past `expires_at` before it executed) or `cancelled`. Reading a proposal applies its expiry.

use alloy::primitives::{Address, U256};
use sqlx::FromRow;

use crate::buyer::spend_ledger::{SpendLedger, SpendLedgerError};

/// A proposal's kind: a transfer the custody executes, or an x402 payment the agent retries once approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalKind {
    Transfer,
    X402,
}

impl ProposalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalKind::Transfer => "transfer",
            ProposalKind::X402 => "x402",
        }
    }
}

/// One stored proposal.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ProposalRow {
    pub id: i64,
    pub agent: String,
    pub kind: String,
    pub pay_to: String,
    pub amount: i64,
    pub asset: String,
    pub network: String,
    pub memo: String,
    pub url: Option<String>,
    pub rule: String,
    pub required: i64,
    pub state: String,
    pub payment_id: Option<String>,
    pub tx_hash: Option<String>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub updated_at: i64,
}

impl ProposalRow {
    pub fn id(&self) -> u64 {
        self.id.max(0) as u64
    }
    pub fn to(&self) -> Address {
        self.pay_to.parse().unwrap_or(Address::ZERO)
    }
    pub fn amount(&self) -> U256 {
        U256::from(self.amount.max(0) as u64)
    }
}

const COLUMNS: &str = "id, agent, kind, pay_to, amount, asset, network, memo, url, rule, required, state, payment_id, \
    tx_hash, last_error, created_at, expires_at, updated_at";

/// A proposal to record.
#[derive(Debug, Clone)]
pub struct NewProposal<'a> {
    pub agent: Address,
    pub kind: ProposalKind,
    pub to: Address,
    pub amount: i64,
    pub asset: Address,
    pub network: &'a str,
    pub memo: &'a str,
    pub url: Option<&'a str>,
    pub rule: &'a str,
    pub required: u32,
    pub ttl_seconds: u64,
}

/// The proposals of one ledger.
#[derive(Debug, Clone)]
pub struct Proposals {
    ledger: SpendLedger,
}

impl Proposals {
    pub fn new(ledger: SpendLedger) -> Self {
        Proposals { ledger }
    }

    pub fn ledger(&self) -> &SpendLedger {
        &self.ledger
    }

    /// Records a pending proposal; ids count up from 1 per ledger (assigned under the agent's lock).
    pub async fn create(&self, new: &NewProposal<'_>, now: i64) -> Result<ProposalRow, SpendLedgerError> {
        self.insert(new, None, now).await
    }

    /// Inserts `new` as pending, or (with `executed`: the payment's ledger id and transaction) as executed in the
    /// same statement — a proposal that paid is never, even for a moment, one an approval could pay again.
    async fn insert(
        &self,
        new: &NewProposal<'_>,
        executed: Option<(&str, &str)>,
        now: i64,
    ) -> Result<ProposalRow, SpendLedgerError> {
        let mut tx = self.ledger.begin_serialised(Address::ZERO).await?;
        let (next,): (i64,) = sqlx::query_as("SELECT CAST(COALESCE(MAX(id), 0) + 1 AS BIGINT) FROM treasury_proposals")
            .fetch_one(&mut *tx)
            .await?;
        let expires_at = now.saturating_add(i64::try_from(new.ttl_seconds).unwrap_or(i64::MAX));
        sqlx::query(
            "INSERT INTO treasury_proposals (id, agent, kind, pay_to, amount, asset, network, memo, url, rule, \
             required, state, created_at, expires_at, updated_at, payment_id, tx_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $14, $12, $13, $12, $15, $16)",
        )
        .bind(next)
        .bind(new.agent.to_checksum(None))
        .bind(new.kind.as_str())
        .bind(new.to.to_checksum(None))
        .bind(new.amount)
        .bind(new.asset.to_checksum(None))
        .bind(new.network)
        .bind(new.memo)
        .bind(new.url)
        .bind(new.rule)
        .bind(if executed.is_some() { 0 } else { i64::from(new.required) })
        .bind(now)
        .bind(expires_at)
        .bind(if executed.is_some() {
            "executed"
        } else {
            "pending_approval"
        })
        .bind(executed.map(|(payment, _)| payment))
        .bind(executed.map(|(_, tx)| tx))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.get(next.max(0) as u64, now)
            .await?
            .ok_or(SpendLedgerError::Database(sqlx::Error::RowNotFound))
    }

    /// Records a proposal that executed at once (the policy allowed it): its history, with no approvals.
    pub async fn record_executed(
        &self,
        new: &NewProposal<'_>,
        payment_id: &str,
        tx_hash: &str,
        now: i64,
    ) -> Result<ProposalRow, SpendLedgerError> {
        self.insert(new, Some((payment_id, tx_hash)), now).await
    }

    /// The proposal, with its expiry applied at `now`.
    pub async fn get(&self, id: u64, now: i64) -> Result<Option<ProposalRow>, SpendLedgerError> {
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        sqlx::query(
            "UPDATE treasury_proposals SET state = 'expired', updated_at = $1 \
             WHERE id = $2 AND state IN ('pending_approval', 'approved') AND expires_at < $1",
        )
        .bind(now)
        .bind(id)
        .execute(self.ledger.pool())
        .await?;
        let sql = format!("SELECT {COLUMNS} FROM treasury_proposals WHERE id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.ledger.pool())
            .await?)
    }

    /// How many proposals there are.
    pub async fn count(&self) -> Result<u64, SpendLedgerError> {
        let (n,): (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM treasury_proposals")
            .fetch_one(self.ledger.pool())
            .await?;
        Ok(n.max(0) as u64)
    }

    /// The owners who approved, by the time they did (then by address).
    pub async fn approvers(&self, id: u64) -> Result<Vec<Address>, SpendLedgerError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT owner FROM treasury_approvals WHERE proposal_id = $1 ORDER BY created_at, owner")
                .bind(i64::try_from(id).unwrap_or(i64::MAX))
                .fetch_all(self.ledger.pool())
                .await?;
        Ok(rows.into_iter().filter_map(|(o,)| o.parse().ok()).collect())
    }

    /// Records `owner`'s signature (once; a second approval by the same owner changes nothing).
    pub async fn add_approval(
        &self,
        id: u64,
        owner: Address,
        signature: &str,
        now: i64,
    ) -> Result<(), SpendLedgerError> {
        let sql = if self.ledger.is_postgres() {
            "INSERT INTO treasury_approvals (proposal_id, owner, signature, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING"
        } else {
            "INSERT OR IGNORE INTO treasury_approvals (proposal_id, owner, signature, created_at) VALUES ($1, $2, $3, $4)"
        };
        sqlx::query(sql)
            .bind(i64::try_from(id).unwrap_or(i64::MAX))
            .bind(owner.to_checksum(None))
            .bind(signature)
            .bind(now)
            .execute(self.ledger.pool())
            .await?;
        Ok(())
    }

    /// Removes `owner`'s approval; whether there was one.
    pub async fn remove_approval(&self, id: u64, owner: Address) -> Result<bool, SpendLedgerError> {
        let done = sqlx::query("DELETE FROM treasury_approvals WHERE proposal_id = $1 AND owner = $2")
            .bind(i64::try_from(id).unwrap_or(i64::MAX))
            .bind(owner.to_checksum(None))
            .execute(self.ledger.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Moves a proposal from `from` to `to`; whether it moved.
    pub async fn transition(
        &self,
        id: u64,
        from: &str,
        to: &str,
        tx_hash: Option<&str>,
        error: Option<&str>,
        now: i64,
    ) -> Result<bool, SpendLedgerError> {
        let done = sqlx::query(
            "UPDATE treasury_proposals SET state = $1, tx_hash = COALESCE($2, tx_hash), last_error = $3, \
             updated_at = $4 WHERE id = $5 AND state = $6",
        )
        .bind(to)
        .bind(tx_hash)
        .bind(error)
        .bind(now)
        .bind(i64::try_from(id).unwrap_or(i64::MAX))
        .bind(from)
        .execute(self.ledger.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
