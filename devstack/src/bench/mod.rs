//! `nerdcabal bench facilitator|proxy`: measurements of our own cost, each beside a baseline from the same run.
//! The server under test runs as its own process pinned to one core; the load (wrk for read series, our driver
//! process for unique signed payments), anvil, the RPC relay and the upstream share the other. Rounds alternate
//! between a series and its baseline; each series prints its median and min–max over the rounds and its ratio
//! to its baseline. Baselines: the bare chain calls a verify makes, the same multicall settlements sent straight
//! to anvil, the upstream direct, and nginx in front of the same upstream.

pub mod cores;
pub mod driver;
pub mod facilitator;
mod nginx;
mod payments;
mod process;
pub mod proxy;
mod relay;
mod routes;
pub mod sample;
mod tools;
mod upstream;
mod wrk;

use std::time::Duration;

/// Settings both benchmarks share.
#[derive(Debug, Clone)]
pub struct Options {
    /// Concurrent connections of the read series.
    pub connections: usize,
    /// How long each read round runs.
    pub duration: Duration,
    /// Rounds per series (alternating with their baselines).
    pub rounds: usize,
    /// Delay added to every JSON-RPC call (a relay in front of anvil); `None`: straight to anvil.
    pub rpc_latency: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connections: 32,
            duration: Duration::from_secs(3),
            rounds: 3,
            rpc_latency: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("devnet: {0}")]
    Devnet(#[from] contracts::DevnetError),
    #[error("set-up: {0}")]
    Setup(String),
}

fn setup<E: std::fmt::Display>(e: E) -> BenchError {
    BenchError::Setup(e.to_string())
}

/// A temporary directory removed when dropped.
struct WorkDir(std::path::PathBuf);

impl WorkDir {
    fn new(label: &str) -> Result<Self, BenchError> {
        let dir = std::env::temp_dir().join(format!(
            "nerdcabal-bench-{label}-{}-{}",
            std::process::id(),
            alloy::primitives::B256::random()
        ));
        std::fs::create_dir_all(&dir).map_err(setup)?;
        Ok(WorkDir(dir))
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Some(tool) = process::valgrind_tool() {
            progress(format!("kept {} (the servers' {tool} output)", self.0.display()));
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Progress, one line at a time on stderr (stdout carries the report).
fn progress(line: impl AsRef<str>) {
    eprintln!("bench: {}", line.as_ref());
}
