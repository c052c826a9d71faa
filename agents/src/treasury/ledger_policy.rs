//! The treasury policy at the spend ledger's choke point: a payment's history (spent today, this ISO week,
//! this month, to this payee today; payments in the velocity window; whether the payee was paid before) is
//! read, the policy engine decides, and the spend is reserved — all in one transaction that serialises the
//! payer's reservations across processes (`SpendLedger::begin_serialised`: SQLite's write lock from `BEGIN
//! IMMEDIATE`, PostgreSQL's advisory lock on the payer, the lock the plain `reserve` takes), so concurrent
//! payers sharing one ledger can never exceed a cap together. An approved local proposal may be consumed in
//! the same transaction: its payment then skips the approval rules (never the refusals).

use std::sync::Arc;

use alloy::primitives::U256;
use sqlx::Row;

use crate::buyer::spend_ledger::{BudgetExceeded, Budgets, COUNTED, NewSpend, SpendLedger, SpendLedgerError};
use crate::buyer::x402_client::PayError;
use crate::treasury::periods::{Windows, velocity_window_start};
use crate::treasury::policy_engine::{Decision, History, PaymentFacts, PolicyRules, Rule, evaluate};
use crate::treasury::proposals::{NewProposal, ProposalKind, Proposals};

/// A local proposal whose owners approved this payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovedProposal {
    pub id: u64,
}

/// What the reservation came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyReserve {
    /// Recorded as signed; the ledger row's id.
    Reserved(String),
    /// The `[policy]` budgets refused it.
    OverBudget(BudgetExceeded),
    /// A treasury rule refused it.
    Denied { rule: Rule, message: String },
    /// Owners must approve it first.
    NeedsApproval { rule: Rule, message: String },
    /// The proposal named to approve it is not approved for this payment (unknown, pending, used, expired,
    /// or for another payee, URL or less money).
    ProposalUnusable { id: u64, message: String },
}

fn u(v: i64) -> U256 {
    U256::from(v.max(0) as u64)
}

/// The history the engine needs for `spend` at `now`, read through `tx`.
async fn history(
    tx: &mut sqlx::AnyConnection,
    rules: &PolicyRules,
    spend: &NewSpend<'_>,
    now: i64,
) -> Result<History, SpendLedgerError> {
    // A time the calendar cannot hold has no window: everything since the epoch counts.
    let windows = Windows::containing(now).unwrap_or(Windows {
        day_start: 0,
        week_start: 0,
        month_start: 0,
    });
    let velocity_since = rules
        .velocity_window_seconds()
        .map_or(i64::MAX, |w| velocity_window_start(now, w));
    let sql = format!(
        "SELECT \
         CAST(COALESCE(SUM(CASE WHEN created_at >= $2 THEN amount ELSE 0 END), 0) AS BIGINT) AS today, \
         CAST(COALESCE(SUM(CASE WHEN created_at >= $3 THEN amount ELSE 0 END), 0) AS BIGINT) AS week, \
         CAST(COALESCE(SUM(CASE WHEN created_at >= $4 THEN amount ELSE 0 END), 0) AS BIGINT) AS month, \
         CAST(COALESCE(SUM(CASE WHEN created_at >= $2 AND pay_to = $5 THEN amount ELSE 0 END), 0) AS BIGINT) AS payee_today, \
         CAST(COALESCE(SUM(CASE WHEN created_at >= $6 THEN 1 ELSE 0 END), 0) AS BIGINT) AS recent, \
         CAST(COALESCE(SUM(CASE WHEN pay_to = $5 THEN 1 ELSE 0 END), 0) AS BIGINT) AS to_payee \
         FROM payments WHERE payer = $1 AND state IN {COUNTED}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(spend.payer.to_checksum(None))
        .bind(windows.day_start)
        .bind(windows.week_start)
        .bind(windows.month_start)
        .bind(spend.pay_to.to_checksum(None))
        .bind(velocity_since)
        .fetch_one(&mut *tx)
        .await?;
    let get = |name: &str| row.try_get::<i64, _>(name);
    Ok(History {
        spent_today: u(get("today")?),
        spent_this_week: u(get("week")?),
        spent_this_month: u(get("month")?),
        spent_to_payee_today: u(get("payee_today")?),
        payments_in_velocity_window: u32::try_from(get("recent")?.max(0)).unwrap_or(u32::MAX),
        payee_seen_before: get("to_payee")? > 0,
    })
}

/// Marks `proposal` executed by the payment `payment_id` when it is approved for exactly this payment
/// (same agent, kind, payee, asset, network, no more money, the same URL for an x402 one) and not expired.
async fn consume(
    tx: &mut sqlx::AnyConnection,
    proposal: ApprovedProposal,
    spend: &NewSpend<'_>,
    payment_id: &str,
    now: i64,
) -> Result<bool, SpendLedgerError> {
    let id = i64::try_from(proposal.id).unwrap_or(i64::MAX);
    let done = sqlx::query(
        "UPDATE treasury_proposals SET state = 'executed', payment_id = $1, updated_at = $2 \
         WHERE id = $3 AND agent = $4 AND state = 'approved' AND pay_to = $5 AND asset = $6 AND amount >= $7 \
         AND expires_at >= $2 AND kind = $8 AND (url IS NULL OR url = $9) AND network = $10",
    )
    .bind(payment_id)
    .bind(now)
    .bind(id)
    .bind(spend.payer.to_checksum(None))
    .bind(spend.pay_to.to_checksum(None))
    .bind(spend.asset.to_checksum(None))
    .bind(spend.amount)
    .bind(spend.kind.as_str())
    .bind(spend.url)
    .bind(spend.network)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Reserves `spend` if the `[policy]` budgets and the treasury `rules` allow it at `now` (with `approved`,
/// a proposal the owners approved stands in for the approval rules and is used up by this payment).
pub async fn reserve_under_policy(
    ledger: &SpendLedger,
    spend: &NewSpend<'_>,
    budgets: Budgets,
    rules: &PolicyRules,
    now: i64,
    approved: Option<ApprovedProposal>,
) -> Result<PolicyReserve, SpendLedgerError> {
    let mut tx = ledger.begin_serialised(spend.payer).await?;
    let history = history(&mut tx, rules, spend, now).await?;
    let facts = PaymentFacts {
        to: spend.pay_to,
        amount: u(spend.amount),
        asset: spend.asset,
        network: spend.network.to_owned(),
        at: now,
    };
    match evaluate(rules, &facts, &history) {
        Decision::Deny { rule, message } => return Ok(PolicyReserve::Denied { rule, message }),
        Decision::NeedsApproval { rule, message } if approved.is_none() => {
            return Ok(PolicyReserve::NeedsApproval { rule, message });
        }
        Decision::NeedsApproval { .. } | Decision::Allow => {}
    }
    let id = SpendLedger::spend_id(spend);
    if let Some(proposal) = approved
        && !consume(&mut tx, proposal, spend, &id, now).await?
    {
        return Ok(PolicyReserve::ProposalUnusable {
            id: proposal.id,
            message: format!(
                "proposal {} is not approved for this payment (unknown, still pending, already used, expired, or \
                 for another payee, URL or a smaller amount)",
                proposal.id
            ),
        });
    }
    let inserted = SpendLedger::reserve_statement(&id, spend, budgets, now)
        .execute(&mut *tx)
        .await?;
    if inserted.rows_affected() != 1 {
        drop(tx);
        return Ok(PolicyReserve::OverBudget(ledger.exceeded(spend, budgets, now).await?));
    }
    tx.commit().await?;
    Ok(PolicyReserve::Reserved(id))
}

/// The treasury policy as the buyer's choke points hold it: the rules and where proposals go. A payment the
/// rules send to the owners becomes a local proposal (`needs_approval` with its id); once approved, the
/// same payment made again with that proposal id goes through and uses the proposal up.
#[derive(Debug, Clone)]
pub struct TreasuryGuard {
    rules: Arc<PolicyRules>,
    proposals: Proposals,
}

impl TreasuryGuard {
    pub fn new(rules: PolicyRules, ledger: SpendLedger) -> Self {
        TreasuryGuard {
            rules: Arc::new(rules),
            proposals: Proposals::new(ledger),
        }
    }

    pub fn rules(&self) -> &PolicyRules {
        &self.rules
    }

    pub fn proposals(&self) -> &Proposals {
        &self.proposals
    }

    /// Reserves `spend` under the budgets and the rules: the ledger row's id, or why not as a `PayError`
    /// (`policy_denied`, `needs_approval` after recording a proposal of `kind`, `over_budget`).
    pub async fn reserve(
        &self,
        spend: &NewSpend<'_>,
        budgets: Budgets,
        now: i64,
        approved: Option<u64>,
        kind: ProposalKind,
        memo: &str,
    ) -> Result<String, PayError> {
        let ledger = self.proposals.ledger();
        let outcome = reserve_under_policy(
            ledger,
            spend,
            budgets,
            &self.rules,
            now,
            approved.map(|id| ApprovedProposal { id }),
        )
        .await
        .map_err(|e| PayError::Ledger(e.to_string()))?;
        match outcome {
            PolicyReserve::Reserved(id) => Ok(id),
            PolicyReserve::OverBudget(exceeded) => Err(exceeded.into()),
            PolicyReserve::Denied { rule, message } => Err(PayError::PolicyDenied {
                rule: rule.as_str().to_owned(),
                message,
            }),
            PolicyReserve::ProposalUnusable { message, .. } => Err(PayError::ApprovalDenied(message)),
            PolicyReserve::NeedsApproval { rule, message } => {
                Err(self.propose_for_approval(spend, rule, message, kind, memo, now).await)
            }
        }
    }

    /// Decides `spend` on a history read without the payer's lock: an early answer before anything is
    /// prepared (a transfer is signed only after it). `Allow` here is not a reservation — the reserving
    /// transaction decides again; a refusal or a proposal is final.
    pub async fn precheck(
        &self,
        spend: &NewSpend<'_>,
        now: i64,
        kind: ProposalKind,
        memo: &str,
    ) -> Result<(), PayError> {
        let ledger = self.proposals.ledger();
        let read = async {
            let mut conn = ledger.pool().acquire().await?;
            history(&mut conn, &self.rules, spend, now).await
        };
        let history = read
            .await
            .map_err(|e: SpendLedgerError| PayError::Ledger(e.to_string()))?;
        let facts = PaymentFacts {
            to: spend.pay_to,
            amount: u(spend.amount),
            asset: spend.asset,
            network: spend.network.to_owned(),
            at: now,
        };
        match evaluate(&self.rules, &facts, &history) {
            Decision::Allow => Ok(()),
            Decision::Deny { rule, message } => Err(PayError::PolicyDenied {
                rule: rule.as_str().to_owned(),
                message,
            }),
            Decision::NeedsApproval { rule, message } => {
                Err(self.propose_for_approval(spend, rule, message, kind, memo, now).await)
            }
        }
    }

    /// Records a proposal for `spend` and answers `needs_approval` with it (or refuses when no owners are
    /// configured to approve).
    async fn propose_for_approval(
        &self,
        spend: &NewSpend<'_>,
        rule: Rule,
        message: String,
        kind: ProposalKind,
        memo: &str,
        now: i64,
    ) -> PayError {
        if self.rules.threshold() == 0 {
            return PayError::PolicyDenied {
                rule: rule.as_str().to_owned(),
                message: format!("{message}, and no treasury owners are configured to approve it"),
            };
        }
        let proposal = NewProposal {
            agent: spend.payer,
            kind,
            to: spend.pay_to,
            amount: spend.amount,
            asset: spend.asset,
            network: spend.network,
            memo,
            url: matches!(kind, ProposalKind::X402).then_some(spend.url),
            rule: rule.as_str(),
            required: self.rules.threshold(),
            ttl_seconds: self.rules.proposal_ttl_seconds(),
        };
        match self.proposals.create(&proposal, now).await {
            Ok(row) => PayError::NeedsApproval {
                proposal_id: row.id(),
                rule: rule.as_str().to_owned(),
                approvals: 0,
                required: u64::from(self.rules.threshold()),
            },
            Err(e) => PayError::Ledger(e.to_string()),
        }
    }
}
