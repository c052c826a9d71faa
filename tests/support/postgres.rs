//! The PostgreSQL server that the replica and contention tests need, shared by every crate's tests (included
//! with `#[path]`): the admin URL in `NERDCABAL_TEST_POSTGRES`, else `postgres://postgres@127.0.0.1:5432/postgres`
//! (user `postgres`, trust authentication — what every machine here runs). Each test makes a database of its
//! own and drops it. Without the server a test fails, and its message names the server and how to start it.

#![allow(dead_code)]

use sqlx::Connection;

pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Where the tests' PostgreSQL server is (an admin database URL).
pub fn admin_url() -> String {
    std::env::var("NERDCABAL_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// A connection to the admin database, or a failure that says what is missing.
pub async fn admin() -> sqlx::PgConnection {
    let url = admin_url();
    match sqlx::PgConnection::connect(&url).await {
        Ok(connection) => connection,
        Err(e) => panic!(
            "this test needs a PostgreSQL server at {url} (user postgres, trust authentication; set \
             NERDCABAL_TEST_POSTGRES to another admin URL). Start the local one with \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`. Connecting failed: {e}"
        ),
    }
}

/// A fresh database named after `name`: (its name, its URL).
pub async fn create_database(name: &str) -> (String, String) {
    let db = format!("nerdcabal_{name}_{}", alloy::primitives::B64::random()).to_lowercase();
    let mut admin = admin().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("creating database {db} on {}: {e}", admin_url()));
    let url = admin_url();
    let base = url.rsplit_once('/').map(|(base, _)| base).unwrap_or(&url);
    (db.clone(), format!("{base}/{db}"))
}

/// Drops a database made by [`create_database`] (best effort: a test's own failure matters more).
pub async fn drop_database(db: &str) {
    if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url()).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await;
    }
}
