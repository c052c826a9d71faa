//! Support for end-to-end tests that run the real `nerdcabal` binary as separate processes: a devnet in the
//! test, its state file on disk, facilitator processes on free loopback ports, fresh databases, and signed
//! payments.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use contracts::{Devnet, DevnetConfig};
use protocol::network::ARC_USDC;
use protocol::version::Version;
use protocol::wire::{Extra, v2};
use protocol::{VerifyRequest, eip3009};

pub mod dev;

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nerdcabal-{name}-{}-{}", std::process::id(), B256::random()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A devnet and its state file.
pub async fn devnet(dir: &Path) -> (Devnet, PathBuf) {
    let devnet = Devnet::start(DevnetConfig::default()).await.expect("devnet");
    let state_file = dir.join("devnet.json");
    devnet.state().write(&state_file).unwrap();
    (devnet, state_file)
}

/// A running `nerdcabal facilitator` process.
pub struct FacilitatorProcess {
    pub child: Child,
    pub url: String,
}

impl FacilitatorProcess {
    /// Starts the binary and waits until `/health` answers.
    pub async fn start(
        state_file: &Path,
        database_url: &str,
        settlement_key: B256,
        extra_toml: &str,
        dir: &Path,
    ) -> Self {
        let port = free_port();
        let config = dir.join(format!("facilitator-{port}.toml"));
        std::fs::write(&config, extra_toml).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_nerdcabal"))
            .args(["facilitator", "--devnet"])
            .arg(state_file)
            .arg("--config")
            .arg(&config)
            .env("NERDCABAL_FACILITATOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", database_url)
            .env("NERDCABAL_SETTLEMENT_KEYS", settlement_key.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn facilitator");
        let mut process = FacilitatorProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{}/health", process.url)).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(
                process.child.try_wait().unwrap().is_none(),
                "facilitator exited during start-up"
            );
            assert!(
                Instant::now() < deadline,
                "facilitator did not answer /health within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        process
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for FacilitatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn requirement(devnet: &Devnet, pay_to: Address, amount: u64) -> v2::PaymentRequirements {
    v2::PaymentRequirements {
        scheme: "exact".into(),
        network: devnet.state().network.clone(),
        amount: U256::from(amount),
        asset: ARC_USDC,
        pay_to,
        max_timeout_seconds: 120,
        extra: Some(Extra::eip712("USDC", "2")),
    }
}

pub async fn payment(devnet: &Devnet, buyer: &PrivateKeySigner, pay_to: Address, amount: u64) -> VerifyRequest {
    let requirement = requirement(devnet, pay_to, amount);
    let payload = eip3009::pay(buyer, &requirement, None, now(), B256::random())
        .await
        .unwrap();
    VerifyRequest::V2(v2::VerifyRequest {
        x402_version: Version,
        payment_payload: payload,
        payment_requirements: requirement,
    })
}

pub async fn usdc_balance(devnet: &Devnet, who: Address) -> U256 {
    contracts::bindings::IEip3009::new(ARC_USDC, devnet.admin_provider().clone())
        .balanceOf(who)
        .call()
        .await
        .unwrap()
}

#[path = "../support/postgres.rs"]
pub mod postgres;

/// A freshly created PostgreSQL database (name, URL).
pub async fn postgres_database(name: &str) -> (String, String) {
    postgres::create_database(name).await
}

pub async fn drop_postgres(db: &str) {
    postgres::drop_database(db).await
}

/// A child process that is stopped (SIGTERM, then SIGKILL) when the test lets go of it, pass or fail.
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            // SIGTERM first, so the devnet stops its anvil; SIGKILL if it does not go.
            let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
            std::thread::sleep(Duration::from_millis(500));
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}
