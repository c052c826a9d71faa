//! Human approval of large payments, kept in the spend ledger's database (shared by every process and every
//! per-request MCP handler): an agent's request is recorded as `pending` with an id; a person approves or
//! denies it with `nerdcabal approve <id>`; an approved request is consumed by exactly one payment to the same
//! target for no more than the approved amount. Nothing an agent can call approves anything.

use alloy::primitives::Address;

use crate::buyer::spend_ledger::{SpendLedger, SpendLedgerError, unix_now};

/// Where an approval request stands.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Approval {
    pub id: String,
    /// `x402_fetch` or `send_payment`.
    pub kind: String,
    /// The URL to pay, or the recipient of a transfer.
    pub target: String,
    pub amount: i64,
    pub pay_to: String,
    pub state: String,
    pub created_at: i64,
    pub decided_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error(transparent)]
    Ledger(#[from] SpendLedgerError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("no approval request `{0}`")]
    Unknown(String),
    #[error("approval request `{id}` is {state}, not pending")]
    NotPending { id: String, state: String },
}

/// Why an approval cannot be used for a payment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    #[error("no approval request `{0}`")]
    Unknown(String),
    #[error("approval `{0}` is still waiting for a person")]
    Pending(String),
    #[error("approval `{0}` was denied")]
    Denied(String),
    #[error("approval `{0}` was already used")]
    Used(String),
    #[error("approval `{id}` is for {approved}, not for this payment")]
    Mismatch { id: String, approved: String },
}

#[derive(Clone)]
pub struct Approvals {
    ledger: SpendLedger,
}

impl Approvals {
    pub fn new(ledger: SpendLedger) -> Self {
        Approvals { ledger }
    }

    /// Records a request; returns its id.
    pub async fn request(
        &self,
        kind: &str,
        target: &str,
        amount: i64,
        pay_to: Address,
    ) -> Result<String, ApprovalError> {
        let id = format!("ap-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        sqlx::query(
            "INSERT INTO approvals (id, kind, target, amount, pay_to, state, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6)",
        )
        .bind(&id)
        .bind(kind)
        .bind(target)
        .bind(amount)
        .bind(pay_to.to_checksum(None))
        .bind(unix_now())
        .execute(self.ledger.pool())
        .await?;
        Ok(id)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Approval>, ApprovalError> {
        Ok(sqlx::query_as(
            "SELECT id, kind, target, amount, pay_to, state, created_at, decided_at FROM approvals WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.ledger.pool())
        .await?)
    }

    pub async fn pending(&self) -> Result<Vec<Approval>, ApprovalError> {
        Ok(sqlx::query_as(
            "SELECT id, kind, target, amount, pay_to, state, created_at, decided_at FROM approvals WHERE state = 'pending' ORDER BY created_at",
        )
        .fetch_all(self.ledger.pool())
        .await?)
    }

    /// A person's decision. Only a pending request can be decided, once.
    pub async fn decide(&self, id: &str, approve: bool) -> Result<Approval, ApprovalError> {
        let state = if approve { "approved" } else { "denied" };
        let done = sqlx::query("UPDATE approvals SET state = $1, decided_at = $2 WHERE id = $3 AND state = 'pending'")
            .bind(state)
            .bind(unix_now())
            .bind(id)
            .execute(self.ledger.pool())
            .await?;
        let row = self
            .get(id)
            .await?
            .ok_or_else(|| ApprovalError::Unknown(id.to_owned()))?;
        if done.rows_affected() == 0 {
            return Err(ApprovalError::NotPending {
                id: id.to_owned(),
                state: row.state,
            });
        }
        Ok(row)
    }

    /// Consumes an approved request for this exact payment (same kind and target, payee, no more money).
    pub async fn take(
        &self,
        id: &str,
        kind: &str,
        target: &str,
        amount: i64,
        pay_to: Address,
    ) -> Result<Result<(), Unusable>, ApprovalError> {
        let Some(row) = self.get(id).await? else {
            return Ok(Err(Unusable::Unknown(id.to_owned())));
        };
        match row.state.as_str() {
            "pending" => return Ok(Err(Unusable::Pending(id.to_owned()))),
            "denied" => return Ok(Err(Unusable::Denied(id.to_owned()))),
            "used" => return Ok(Err(Unusable::Used(id.to_owned()))),
            _ => {}
        }
        if row.kind != kind || row.target != target || amount > row.amount || row.pay_to != pay_to.to_checksum(None) {
            return Ok(Err(Unusable::Mismatch {
                id: id.to_owned(),
                approved: format!("{} {} of {} to {}", row.kind, row.target, row.amount, row.pay_to),
            }));
        }
        let used = sqlx::query("UPDATE approvals SET state = 'used' WHERE id = $1 AND state = 'approved'")
            .bind(id)
            .execute(self.ledger.pool())
            .await?;
        if used.rows_affected() == 0 {
            return Ok(Err(Unusable::Used(id.to_owned())));
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_approval_is_decided_once_and_used_once_for_its_own_payment() {
        let ledger = SpendLedger::open("sqlite::memory:").await.unwrap();
        let approvals = Approvals::new(ledger);
        let payee = Address::repeat_byte(5);
        let id = approvals
            .request("x402_fetch", "http://h/r", 50_000, payee)
            .await
            .unwrap();
        assert_eq!(
            approvals
                .take(&id, "x402_fetch", "http://h/r", 50_000, payee)
                .await
                .unwrap(),
            Err(Unusable::Pending(id.clone()))
        );
        assert_eq!(approvals.decide(&id, true).await.unwrap().state, "approved");
        assert!(matches!(
            approvals.decide(&id, false).await,
            Err(ApprovalError::NotPending { .. })
        ));
        let wrong = approvals
            .take(&id, "x402_fetch", "http://h/other", 50_000, payee)
            .await
            .unwrap();
        assert!(matches!(wrong, Err(Unusable::Mismatch { .. })));
        let dearer = approvals
            .take(&id, "x402_fetch", "http://h/r", 50_001, payee)
            .await
            .unwrap();
        assert!(matches!(dearer, Err(Unusable::Mismatch { .. })));
        assert_eq!(
            approvals
                .take(&id, "x402_fetch", "http://h/r", 50_000, payee)
                .await
                .unwrap(),
            Ok(())
        );
        assert_eq!(
            approvals
                .take(&id, "x402_fetch", "http://h/r", 50_000, payee)
                .await
                .unwrap(),
            Err(Unusable::Used(id.clone()))
        );
        let denied = approvals.request("send_payment", "0xabc", 1, payee).await.unwrap();
        approvals.decide(&denied, false).await.unwrap();
        assert_eq!(
            approvals
                .take(&denied, "send_payment", "0xabc", 1, payee)
                .await
                .unwrap(),
            Err(Unusable::Denied(denied.clone()))
        );
        assert!(matches!(
            approvals.decide("ap-none", true).await,
            Err(ApprovalError::Unknown(_))
        ));
    }
}
