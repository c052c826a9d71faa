//! Opening a database pool the way every durable store here needs it: `sqlite://path` (created if missing),
//! `sqlite::memory:` (one connection, so one database) or `postgres://…`. SQLite runs in WAL mode with a busy
//! timeout, so one writer at a time waits its turn instead of failing while readers go on; the caller picks how
//! hard each commit is pushed to disk.

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};

/// SQLite's `synchronous` setting for a pool (PostgreSQL ignores it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `FULL`: a commit survives a power loss (the settlement ledger: money).
    PowerLoss,
    /// `NORMAL` in WAL mode: a commit survives the process being killed; an OS crash may lose the last ones.
    ProcessCrash,
}

/// Opens the pool at `url`. A SQLite file gets `sqlite_connections` connections (at least one; a single one
/// queues writers in the pool instead of in SQLite's sleeping busy handler).
pub async fn open_pool(url: &str, durability: Durability, sqlite_connections: u32) -> Result<AnyPool, sqlx::Error> {
    install_default_drivers();
    let sqlite = url.starts_with("sqlite:");
    let memory = url.contains(":memory:");
    let url = if sqlite && !url.contains("mode=") && !memory {
        format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
    } else {
        url.to_owned()
    };
    let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
    if sqlite {
        let synchronous = match durability {
            Durability::PowerLoss => "PRAGMA synchronous = FULL",
            Durability::ProcessCrash => "PRAGMA synchronous = NORMAL",
        };
        options = options
            .max_connections(if memory { 1 } else { sqlite_connections.max(1) })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    // 1 MiB of page cache per connection (SQLite's default is 2 MiB): the hot rows are few
                    // and the OS caches the file; this bounds what a pool holds after a burst.
                    conn.execute("PRAGMA cache_size = -1024").await?;
                    conn.execute(synchronous).await?;
                    Ok(())
                })
            });
    } else {
        options = options.max_connections(16);
    }
    options.connect(&url).await
}
