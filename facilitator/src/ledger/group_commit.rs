//! Group commit for a store's hot writes, whatever the table: writes that must each be committed before their
//! caller goes on would otherwise queue one by one on the database's single writer (SQLite) or on its commit
//! flush, each paying a round trip and a disk flush of its own. Here one task takes every write waiting at that
//! moment (no timer: a write that finds the queue empty goes at once) and runs them as one statement, which
//! returns the keys it wrote; each caller is answered after the commit by whether its own key came back. Two
//! writes of one key never share a statement (the second sees the first's row), and a group that fails is
//! retried write by write, so one bad write fails alone.

use std::collections::HashSet;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

/// A write that can share a statement with others.
pub trait GroupWrite: Clone + Send + 'static {
    type Key: Eq + Hash + Clone + Send + 'static;
    /// The row it writes; the statement returns the keys of the rows it wrote.
    fn key(&self) -> Self::Key;
    /// Roughly how many bytes it carries (a group stops growing at its byte limit).
    fn bytes(&self) -> usize {
        0
    }
}

/// The statement that writes a whole group and returns the keys it wrote.
pub type Statement<W> =
    fn(AnyPool, Vec<W>) -> Pin<Box<dyn Future<Output = Result<HashSet<<W as GroupWrite>::Key>, sqlx::Error>> + Send>>;

/// How large one group may grow.
#[derive(Debug, Clone, Copy)]
pub struct GroupLimits {
    pub writes: usize,
    pub bytes: usize,
}

type Reply = oneshot::Sender<Result<bool, sqlx::Error>>;

/// The handle through which writes join the next group.
pub struct GroupCommit<W: GroupWrite> {
    queue: mpsc::Sender<(W, Reply)>,
}

impl<W: GroupWrite> Clone for GroupCommit<W> {
    fn clone(&self) -> Self {
        GroupCommit {
            queue: self.queue.clone(),
        }
    }
}

impl<W: GroupWrite> std::fmt::Debug for GroupCommit<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl<W: GroupWrite> GroupCommit<W> {
    /// Starts the writing task on `pool` (so it needs a Tokio runtime); it ends when every handle is dropped.
    pub fn spawn(pool: AnyPool, statement: Statement<W>, limits: GroupLimits) -> Self {
        let (queue, receiver) = mpsc::channel(limits.writes.max(1) * 8);
        tokio::spawn(run(pool, statement, limits, receiver));
        GroupCommit { queue }
    }

    /// Commits `write` with whatever else is waiting. `true`: its row was written.
    pub async fn write(&self, write: W) -> Result<bool, sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        if self.queue.send((write, reply)).await.is_err() {
            return Err(sqlx::Error::PoolClosed);
        }
        answer.await.unwrap_or(Err(sqlx::Error::PoolClosed))
    }
}

async fn run<W: GroupWrite>(
    pool: AnyPool,
    statement: Statement<W>,
    limits: GroupLimits,
    mut receiver: mpsc::Receiver<(W, Reply)>,
) {
    while let Some(first) = receiver.recv().await {
        let mut bytes = first.0.bytes();
        let mut pending = vec![first];
        while pending.len() < limits.writes && bytes < limits.bytes {
            match receiver.try_recv() {
                Ok(next) => {
                    bytes += next.0.bytes();
                    pending.push(next);
                }
                Err(_) => break,
            }
        }
        while !pending.is_empty() {
            let mut seen = HashSet::new();
            let (group, later): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(w, _)| seen.insert(w.key()));
            pending = later;
            commit(&pool, statement, group).await;
        }
    }
}

async fn commit<W: GroupWrite>(pool: &AnyPool, statement: Statement<W>, group: Vec<(W, Reply)>) {
    let writes: Vec<W> = group.iter().map(|(w, _)| w.clone()).collect();
    match statement(pool.clone(), writes).await {
        Ok(written) => {
            for (write, reply) in group {
                let _ = reply.send(Ok(written.contains(&write.key())));
            }
        }
        Err(_) if group.len() > 1 => {
            for (write, reply) in group {
                let key = write.key();
                let one = statement(pool.clone(), vec![write])
                    .await
                    .map(|written| written.contains(&key));
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

/// The parameters `$n` of row `row` (from 0) of rows `width` values wide, in order.
pub fn placeholders(row: usize, width: usize) -> Vec<String> {
    (1..=width).map(|c| format!("${}", row * width + c)).collect()
}

/// `($a, $b, …)` for row `row`, with `literals` spliced in at their positions (`(index, sql)`, index counted
/// in the finished tuple).
pub fn row_placeholders(row: usize, width: usize, literals: &[(usize, &str)]) -> String {
    let mut parts = placeholders(row, width);
    for (index, sql) in literals {
        parts.insert(*index, (*sql).to_owned());
    }
    format!("({})", parts.join(", "))
}
