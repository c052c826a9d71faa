//! The x402 facilitator: the verify and settle engine for EIP-3009 USDC payments, the chain client that reads
//! token state and submits settlements, the durable settlement ledger (sqlx, SQLite or PostgreSQL) that makes
//! every payment settle exactly once, and the HTTP service (`/verify`, `/settle`, `/supported`).

pub mod chain;
pub mod compliance;
pub mod config;
pub mod exposure;
pub mod http;
pub mod ledger;
pub mod metrics;
pub mod service;
pub mod settle;
pub mod verify;
