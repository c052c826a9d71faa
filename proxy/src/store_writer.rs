//! Group commit for the state store's hot writes: every paid request claims its payment and advances it twice,
//! and each of those writes must be committed before the request goes on. Through
//! [`facilitator::ledger::group_commit`], the claims waiting at a moment go out as one multi-row
//! `INSERT … ON CONFLICT DO NOTHING RETURNING` and the advances as one `UPDATE … FROM (…) RETURNING`; each
//! caller learns from the returned keys, after the commit, whether its own row was written.

use std::collections::HashSet;

use facilitator::ledger::group_commit::{GroupCommit, GroupLimits, GroupWrite, placeholders, row_placeholders};
use sqlx::AnyPool;

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

impl GroupWrite for NewClaim {
    type Key = String;
    fn key(&self) -> String {
        self.pkey.clone()
    }
}

impl GroupWrite for Advance {
    type Key = String;
    fn key(&self) -> String {
        self.pkey.clone()
    }
    fn bytes(&self) -> usize {
        self.answer.as_ref().map_or(0, String::len) + self.settlement.as_ref().map_or(0, String::len)
    }
}

/// The handles through which claims and advances join their next groups.
#[derive(Clone)]
pub struct StoreWriter {
    claims: GroupCommit<NewClaim>,
    advances: GroupCommit<Advance>,
}

impl StoreWriter {
    /// Starts the writing tasks on `pool`; they end when every handle is dropped.
    pub fn spawn(pool: AnyPool) -> Self {
        let limits = GroupLimits {
            writes: MAX_GROUP,
            bytes: MAX_GROUP_BYTES,
        };
        StoreWriter {
            claims: GroupCommit::spawn(
                pool.clone(),
                |pool, claims| Box::pin(insert_claims(pool, claims)),
                limits,
            ),
            advances: GroupCommit::spawn(pool, |pool, advances| Box::pin(update_advances(pool, advances)), limits),
        }
    }

    /// Inserts the row unless one with its key exists. `true`: this claim's row was written.
    pub async fn claim(&self, claim: NewClaim) -> Result<bool, sqlx::Error> {
        self.claims.write(claim).await
    }

    /// Updates the row if `owner` still holds it. `true`: it did, and the row was written.
    pub async fn advance(&self, advance: Advance) -> Result<bool, sqlx::Error> {
        self.advances.write(advance).await
    }
}

async fn insert_claims(pool: AnyPool, claims: Vec<NewClaim>) -> Result<HashSet<String>, sqlx::Error> {
    let values: Vec<String> = (0..claims.len())
        .map(|r| row_placeholders(r, 10, &[(1, "'claimed'")]))
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
            .bind(c.now_ms)
            .bind(c.now_ms);
    }
    Ok(query.fetch_all(&pool).await?.into_iter().collect())
}

/// The columns of one advance, as the `FROM (SELECT …)` rows name them.
const ADVANCE_COLUMNS: [&str; 7] = ["k", "o", "s", "a", "st", "keep", "t"];

async fn update_advances(pool: AnyPool, advances: Vec<Advance>) -> Result<HashSet<String>, sqlx::Error> {
    // The first row names the columns; the others follow in the same order.
    let selects: Vec<String> = (0..advances.len())
        .map(|r| {
            let values = placeholders(r, ADVANCE_COLUMNS.len());
            if r > 0 {
                return format!("SELECT {}", values.join(", "));
            }
            let named: Vec<String> = values
                .iter()
                .zip(ADVANCE_COLUMNS)
                .map(|(value, name)| format!("{value} AS {name}"))
                .collect();
            format!("SELECT {}", named.join(", "))
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
