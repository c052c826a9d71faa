//! Test support: a fresh database of each kind per test (a SQLite file in a temporary directory, or a newly
//! created PostgreSQL database on the machine's server, dropped afterwards).

#![allow(dead_code)]

use std::path::PathBuf;

use sqlx::Connection;

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

pub const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A freshly created PostgreSQL database; dropped by [`drop_postgres`].
pub async fn postgres_url(name: &str) -> (String, String) {
    let db = format!("nerdcabal_{name}_{}", alloy::primitives::B64::random()).to_lowercase();
    let mut admin = sqlx::PgConnection::connect(POSTGRES_ADMIN_URL)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut admin)
        .await
        .expect("create db");
    (format!("postgres://postgres@127.0.0.1:5432/{db}"), db)
}

pub async fn drop_postgres(db: &str) {
    if let Ok(mut admin) = sqlx::PgConnection::connect(POSTGRES_ADMIN_URL).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await;
    }
}
