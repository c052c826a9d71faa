//! The ledger's storage: one sqlx `Any` pool over SQLite or PostgreSQL (chosen by the URL), the embedded
//! migrations, and the state transitions. Every transition is a single conditional `UPDATE`, so two replicas
//! racing on one row cannot both move it.

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256, Bytes, U256};
use sqlx::{AnyPool, FromRow};

use super::group_commit::GroupCommit;
use super::record::{Failure, NewSettlement, SettlementKey, SettlementRecord, SettlementState};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("settlement ledger database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("settlement ledger migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("settlement ledger row is corrupt: {0}")]
    Corrupt(String),
}

/// The outcome of trying to take a payment's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// This caller now owns the payment and must drive it to a final state.
    Reserved,
    /// Someone already took the key: here is the row as it is now.
    Existing(Box<SettlementRecord>),
}

/// The settlement ledger.
#[derive(Debug, Clone)]
pub struct Ledger {
    pool: AnyPool,
    reservations: GroupCommit<super::reserve_group::Reservation>,
}

/// `SELECT <every column> FROM settlements <tail>`, as a static string (sqlx audits dynamic SQL).
macro_rules! select_rows {
    ($tail:literal) => {
        concat!(
            "SELECT network, asset, payer, nonce, payload_hash, pay_to, amount, state, tx_hash, raw_tx, signer, \
             signer_nonce, error_reason, error_message, retryable, created_at, updated_at FROM settlements ",
            $tail
        )
    };
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// One signed transaction and the payments it carries, for [`Ledger::mark_transactions_submitted`].
#[derive(Debug, Clone, Copy)]
pub struct SubmittedTx<'a> {
    pub keys: &'a [SettlementKey],
    pub tx_hash: B256,
    pub raw_tx: &'a Bytes,
    pub signer_nonce: u64,
}

/// reserved → submitted for `keys`, inside `tx`; how many rows moved.
async fn submit_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    keys: &[SettlementKey],
    tx_hash: B256,
    raw_tx: &Bytes,
    signer: Address,
    signer_nonce: u64,
) -> Result<usize, LedgerError> {
    let (hash, raw, signer, t) = (tx_hash.to_string(), raw_tx.to_string(), address_text(signer), now());
    let mut moved = 0;
    for key in keys {
        let done = sqlx::query(
            "UPDATE settlements SET state = $1, tx_hash = $2, raw_tx = $3, signer = $4, signer_nonce = $5, updated_at = $6 \
             WHERE network = $7 AND asset = $8 AND payer = $9 AND nonce = $10 AND state = $11",
        )
        .bind(SettlementState::Submitted.as_str())
        .bind(&hash)
        .bind(&raw)
        .bind(&signer)
        .bind(signer_nonce as i64)
        .bind(t)
        .bind_key(key)
        .bind(SettlementState::Reserved.as_str())
        .execute(&mut **tx)
        .await?;
        moved += done.rows_affected() as usize;
    }
    Ok(moved)
}

impl Ledger {
    /// Opens (creating if needed) the database at `url` — `sqlite://path` (or `sqlite::memory:`) or
    /// `postgres://…` — and applies the embedded migrations.
    pub async fn connect(url: &str) -> Result<Self, LedgerError> {
        let pool = super::pool::open_pool(url, super::pool::Durability::PowerLoss, 8).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Ledger {
            reservations: super::reserve_group::spawn(pool.clone()),
            pool,
        })
    }

    /// Takes the payment's key, or reports who has it. Nothing is ever overwritten.
    pub async fn reserve(&self, new: &NewSettlement) -> Result<Reservation, LedgerError> {
        // Concurrent reservations share one statement and one commit.
        let inserted = self
            .reservations
            .write(super::reserve_group::Reservation::new(new, now()))
            .await?;
        if inserted {
            return Ok(Reservation::Reserved);
        }
        match self.get(&new.key).await? {
            Some(existing) => Ok(Reservation::Existing(Box::new(existing))),
            None => Err(LedgerError::Corrupt("insert conflicted but no row is there".into())),
        }
    }

    /// reserved → submitted, storing the signed transaction *before* it is broadcast.
    pub async fn mark_submitted(
        &self,
        key: &SettlementKey,
        tx_hash: B256,
        raw_tx: &Bytes,
        signer: Address,
        signer_nonce: u64,
    ) -> Result<bool, LedgerError> {
        let moved = self
            .mark_batch_submitted(std::slice::from_ref(key), tx_hash, raw_tx, signer, signer_nonce)
            .await?;
        Ok(moved == 1)
    }

    /// reserved → submitted for every key of one batch transaction, in one database transaction.
    pub async fn mark_batch_submitted(
        &self,
        keys: &[SettlementKey],
        tx_hash: B256,
        raw_tx: &Bytes,
        signer: Address,
        signer_nonce: u64,
    ) -> Result<usize, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let moved = submit_rows(&mut tx, keys, tx_hash, raw_tx, signer, signer_nonce).await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// reserved → submitted for several transactions of one signer, in one database transaction (one commit
    /// for all). All or nothing: if any transaction finds none of its rows still reserved, nothing is written
    /// and `false` comes back, so no nonce is left allocated without a stored transaction behind it.
    pub async fn mark_transactions_submitted(
        &self,
        signer: Address,
        transactions: &[SubmittedTx<'_>],
    ) -> Result<bool, LedgerError> {
        let mut tx = self.pool.begin().await?;
        for t in transactions {
            if submit_rows(&mut tx, t.keys, t.tx_hash, t.raw_tx, signer, t.signer_nonce).await? == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Final states of one mined transaction, in one database transaction: `confirmed` keys succeeded,
    /// `failed` keys (whose calls failed inside it) get `reason`. Only submitted rows move; returns how many did.
    pub async fn mark_batch_outcomes(
        &self,
        tx_hash: B256,
        confirmed: &[SettlementKey],
        failed: &[SettlementKey],
        reason: &str,
        message: &str,
    ) -> Result<usize, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let (hash, t) = (tx_hash.to_string(), now());
        let mut moved = 0;
        for (keys, state) in [
            (confirmed, SettlementState::Confirmed),
            (failed, SettlementState::Failed),
        ] {
            let (reason, message) = if state == SettlementState::Failed {
                (Some(reason), Some(message))
            } else {
                (None, None)
            };
            for key in keys {
                let done = sqlx::query(
                    "UPDATE settlements SET state = $1, tx_hash = $2, error_reason = $3, error_message = $4, retryable = 0, \
                     updated_at = $5 WHERE network = $6 AND asset = $7 AND payer = $8 AND nonce = $9 AND state = $10",
                )
                .bind(state.as_str())
                .bind(&hash)
                .bind(reason)
                .bind(message)
                .bind(t)
                .bind_key(key)
                .bind(SettlementState::Submitted.as_str())
                .execute(&mut *tx)
                .await?;
                moved += done.rows_affected() as usize;
            }
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Replaces a submitted transaction that can never be mined (the node refused it, or its nonce went to
    /// another transaction) by a newly signed one. Conditional on the old hash, so only one replacement can win.
    pub async fn replace_submission(
        &self,
        key: &SettlementKey,
        old_tx_hash: B256,
        tx_hash: B256,
        raw_tx: &Bytes,
        signer: Address,
        signer_nonce: u64,
    ) -> Result<bool, LedgerError> {
        let moved = self
            .replace_submissions(
                std::slice::from_ref(key),
                old_tx_hash,
                tx_hash,
                raw_tx,
                signer,
                signer_nonce,
            )
            .await?;
        Ok(moved == 1)
    }

    /// [`Self::replace_submission`] for every row of one (batch) transaction, in one database transaction:
    /// the rows that still hold `old_tx_hash` move to the new transaction together. Returns how many moved.
    pub async fn replace_submissions(
        &self,
        keys: &[SettlementKey],
        old_tx_hash: B256,
        tx_hash: B256,
        raw_tx: &Bytes,
        signer: Address,
        signer_nonce: u64,
    ) -> Result<usize, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let (old, hash, raw, signer, t) = (
            old_tx_hash.to_string(),
            tx_hash.to_string(),
            raw_tx.to_string(),
            address_text(signer),
            now(),
        );
        let mut moved = 0;
        for key in keys {
            let done = sqlx::query(
                "UPDATE settlements SET tx_hash = $1, raw_tx = $2, signer = $3, signer_nonce = $4, updated_at = $5 \
                 WHERE network = $6 AND asset = $7 AND payer = $8 AND nonce = $9 AND state = $10 AND tx_hash = $11",
            )
            .bind(&hash)
            .bind(&raw)
            .bind(&signer)
            .bind(signer_nonce as i64)
            .bind(t)
            .bind_key(key)
            .bind(SettlementState::Submitted.as_str())
            .bind(&old)
            .execute(&mut *tx)
            .await?;
            moved += done.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// submitted → confirmed.
    pub async fn mark_confirmed(&self, key: &SettlementKey, tx_hash: B256) -> Result<bool, LedgerError> {
        let moved = self
            .mark_batch_outcomes(tx_hash, std::slice::from_ref(key), &[], "", "")
            .await?;
        Ok(moved == 1)
    }

    /// reserved or submitted → failed (final: not retryable), with the reason (and the transaction, if one was
    /// mined).
    pub async fn mark_failed(
        &self,
        key: &SettlementKey,
        reason: &str,
        message: &str,
        tx_hash: Option<B256>,
    ) -> Result<bool, LedgerError> {
        let failure = Failure::permanent(reason, message);
        let moved = self
            .mark_many_failed(std::slice::from_ref(key), &failure, tx_hash)
            .await?;
        Ok(moved == 1)
    }

    /// reserved or submitted → failed for every key, in one database transaction; `tx_hash` is the mined
    /// transaction the failure comes from (`None` clears a stored one that never mined). Returns how many moved.
    pub async fn mark_many_failed(
        &self,
        keys: &[SettlementKey],
        failure: &Failure,
        tx_hash: Option<B256>,
    ) -> Result<usize, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let (hash, t) = (tx_hash.map(|h| h.to_string()), now());
        let mut moved = 0;
        for key in keys {
            let done = sqlx::query(
                "UPDATE settlements SET state = $1, error_reason = $2, error_message = $3, retryable = $4, \
                 tx_hash = $5, updated_at = $6 \
                 WHERE network = $7 AND asset = $8 AND payer = $9 AND nonce = $10 AND state IN ($11, $12)",
            )
            .bind(SettlementState::Failed.as_str())
            .bind(&failure.reason)
            .bind(&failure.message)
            .bind(i64::from(failure.retryable))
            .bind(hash.clone())
            .bind(t)
            .bind_key(key)
            .bind(SettlementState::Reserved.as_str())
            .bind(SettlementState::Submitted.as_str())
            .execute(&mut *tx)
            .await?;
            moved += done.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// failed (retryable) → reserved, for a later settle of the very same payload: the caller now owns the
    /// payment again and must drive it to a final state. Only a retryable failure of this payload moves.
    pub async fn retake(&self, key: &SettlementKey, payload_hash: B256) -> Result<bool, LedgerError> {
        let done = sqlx::query(
            "UPDATE settlements SET state = $1, tx_hash = NULL, raw_tx = NULL, signer = NULL, signer_nonce = NULL, \
             error_reason = NULL, error_message = NULL, retryable = 0, updated_at = $2 \
             WHERE network = $3 AND asset = $4 AND payer = $5 AND nonce = $6 AND state = $7 AND retryable = 1 \
             AND payload_hash = $8",
        )
        .bind(SettlementState::Reserved.as_str())
        .bind(now())
        .bind_key(key)
        .bind(SettlementState::Failed.as_str())
        .bind(payload_hash.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives up a reservation that never got as far as a signed transaction (so nothing can be on chain),
    /// making the payment settleable again. Only rows older than `older_than_secs` are released, so a live
    /// replica's fresh reservation is never taken from it.
    pub async fn release_stale_reservation(
        &self,
        key: &SettlementKey,
        older_than_secs: i64,
    ) -> Result<bool, LedgerError> {
        let done = sqlx::query(
            "DELETE FROM settlements WHERE network = $1 AND asset = $2 AND payer = $3 AND nonce = $4 \
             AND state = $5 AND updated_at <= $6",
        )
        .bind_key(key)
        .bind(SettlementState::Reserved.as_str())
        .bind(now() - older_than_secs)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn get(&self, key: &SettlementKey) -> Result<Option<SettlementRecord>, LedgerError> {
        let row: Option<Row> = sqlx::query_as(select_rows!(
            "WHERE network = $1 AND asset = $2 AND payer = $3 AND nonce = $4"
        ))
        .bind_key(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Row::into_record).transpose()
    }

    /// Every row for one payer and nonce, across networks and assets (for the status endpoint).
    pub async fn find(&self, payer: Address, nonce: B256) -> Result<Vec<SettlementRecord>, LedgerError> {
        let rows: Vec<Row> = sqlx::query_as(select_rows!("WHERE payer = $1 AND nonce = $2"))
            .bind(address_text(payer))
            .bind(nonce.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Row::into_record).collect()
    }

    /// What verify needs from the ledger in one query: the state of this payment's own row (if any) and
    /// the amount the payer has in flight (reserved or submitted) other than it.
    pub async fn payer_view(&self, key: &SettlementKey) -> Result<(Option<SettlementState>, U256), LedgerError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT nonce, state, amount FROM settlements WHERE payer = $1 AND network = $2 AND asset = $3 \
             AND (state IN ($4, $5) OR nonce = $6)",
        )
        .bind(address_text(key.payer))
        .bind(&key.network)
        .bind(address_text(key.asset))
        .bind(SettlementState::Reserved.as_str())
        .bind(SettlementState::Submitted.as_str())
        .bind(key.nonce.to_string())
        .fetch_all(&self.pool)
        .await?;
        let own_nonce = key.nonce.to_string();
        let mut own = None;
        let mut in_flight = U256::ZERO;
        for (nonce, state, amount) in rows {
            let state =
                SettlementState::parse(&state).ok_or_else(|| LedgerError::Corrupt(format!("state `{state}`")))?;
            if nonce == own_nonce {
                own = Some(state);
            } else {
                let amount = U256::from_str(&amount).map_err(|_| LedgerError::Corrupt(format!("amount `{amount}`")))?;
                in_flight = in_flight.saturating_add(amount);
            }
        }
        Ok((own, in_flight))
    }

    /// Rows not yet final: submitted ones, and reserved ones older than `stale_reserved_secs`.
    pub async fn unfinished(&self, stale_reserved_secs: i64) -> Result<Vec<SettlementRecord>, LedgerError> {
        let rows: Vec<Row> = sqlx::query_as(select_rows!(
            "WHERE state = $1 OR (state = $2 AND updated_at <= $3) ORDER BY created_at"
        ))
        .bind(SettlementState::Submitted.as_str())
        .bind(SettlementState::Reserved.as_str())
        .bind(now() - stale_reserved_secs)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Row::into_record).collect()
    }

    /// The submitted rows one settlement signer has in flight on one network (its nonce owner rebuilds its
    /// picture of the pool from them).
    pub async fn submitted_by(&self, network: &str, signer: Address) -> Result<Vec<SettlementRecord>, LedgerError> {
        let rows: Vec<Row> = sqlx::query_as(select_rows!(
            "WHERE network = $1 AND signer = $2 AND state = $3 ORDER BY signer_nonce"
        ))
        .bind(network)
        .bind(address_text(signer))
        .bind(SettlementState::Submitted.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Row::into_record).collect()
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Binds a settlement key's four columns (network, asset, payer, nonce), in that order.
trait BindKey<'q> {
    fn bind_key(self, key: &'q SettlementKey) -> Self;
}

impl<'q, O> BindKey<'q> for sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments> {
    fn bind_key(self, key: &'q SettlementKey) -> Self {
        self.bind(&key.network)
            .bind(address_text(key.asset))
            .bind(address_text(key.payer))
            .bind(key.nonce.to_string())
    }
}

impl<'q> BindKey<'q> for sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    fn bind_key(self, key: &'q SettlementKey) -> Self {
        self.bind(&key.network)
            .bind(address_text(key.asset))
            .bind(address_text(key.payer))
            .bind(key.nonce.to_string())
    }
}

/// Addresses are stored lowercase so that lookups never depend on checksum casing.
pub(super) fn address_text(address: Address) -> String {
    format!("{address:#x}")
}

#[derive(FromRow)]
struct Row {
    network: String,
    asset: String,
    payer: String,
    nonce: String,
    payload_hash: String,
    pay_to: String,
    amount: String,
    state: String,
    tx_hash: Option<String>,
    raw_tx: Option<String>,
    signer: Option<String>,
    signer_nonce: Option<i64>,
    error_reason: Option<String>,
    error_message: Option<String>,
    retryable: i64,
    created_at: i64,
    updated_at: i64,
}

fn parse<T: FromStr>(what: &str, text: &str) -> Result<T, LedgerError> {
    text.parse()
        .map_err(|_| LedgerError::Corrupt(format!("{what} `{text}`")))
}

impl Row {
    fn into_record(self) -> Result<SettlementRecord, LedgerError> {
        Ok(SettlementRecord {
            key: SettlementKey {
                network: self.network,
                asset: parse("asset", &self.asset)?,
                payer: parse("payer", &self.payer)?,
                nonce: parse("nonce", &self.nonce)?,
            },
            payload_hash: parse("payload_hash", &self.payload_hash)?,
            pay_to: parse("pay_to", &self.pay_to)?,
            amount: parse("amount", &self.amount)?,
            state: SettlementState::parse(&self.state)
                .ok_or_else(|| LedgerError::Corrupt(format!("state `{}`", self.state)))?,
            tx_hash: self.tx_hash.as_deref().map(|t| parse("tx_hash", t)).transpose()?,
            raw_tx: self
                .raw_tx
                .as_deref()
                .map(|t| parse::<Bytes>("raw_tx", t))
                .transpose()?,
            signer: self.signer.as_deref().map(|t| parse("signer", t)).transpose()?,
            signer_nonce: self.signer_nonce.map(|n| n as u64),
            error_reason: self.error_reason,
            error_message: self.error_message,
            retryable: self.retryable != 0,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}
