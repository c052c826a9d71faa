//! The settlement ledger: a durable record of every payment the facilitator takes on, in SQLite (a file, the
//! default) or PostgreSQL (several replicas), through sqlx with embedded migrations. A row is *reserved* (its
//! primary key taken) before anything is signed, *submitted* with the signed raw transaction before it is
//! broadcast, and ends *confirmed* or *failed* (a retryable failure may be taken on again by a later settle);
//! so after a crash every payment in flight can be found and finished, and none can be sent twice.

pub mod group_commit;
mod pool;
mod record;
mod reserve_group;
mod store;

pub use pool::{Durability, open_pool};
pub use record::{Failure, NewSettlement, SettlementKey, SettlementRecord, SettlementState};
pub use store::{Ledger, LedgerError, Reservation, SubmittedTx};
