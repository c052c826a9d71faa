//! Test support: a fresh database of each kind per test (a SQLite file in a temporary directory, or a newly
//! created PostgreSQL database on the machine's server, dropped afterwards).

#![allow(dead_code)]

use std::path::PathBuf;

pub mod fake_node;
pub mod stack;

/// A SQLite ledger URL in a fresh temporary directory.
pub fn sqlite_url(name: &str) -> (String, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "nerdcabal-{name}-{}-{}",
        std::process::id(),
        alloy::primitives::B64::random()
    ));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    (format!("sqlite://{}", dir.join("ledger.db").display()), dir)
}

#[path = "../../../tests/support/postgres.rs"]
pub mod postgres;

/// A freshly created PostgreSQL database (URL, name); dropped by [`drop_postgres`].
pub async fn postgres_url(name: &str) -> (String, String) {
    let (db, url) = postgres::create_database(name).await;
    (url, db)
}

pub async fn drop_postgres(db: &str) {
    postgres::drop_database(db).await
}
