//! A devnet plus a facilitator serving it over real HTTP on a free loopback port, with a buyer, a seller and
//! helpers that make signed payments.

use std::time::{SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use contracts::{Devnet, DevnetConfig};
use facilitator::config::{FacilitatorConfig, NetworkConfig};
use facilitator::service::Facilitator;
use protocol::network::ARC_USDC;
use protocol::wire::{Extra, v2};
use protocol::{VerifyRequest, eip3009};
use serde_json::Value;

pub struct Stack {
    pub devnet: Devnet,
    pub url: String,
    pub http: reqwest::Client,
    pub settler: facilitator::settle::Settler,
    pub buyer: PrivateKeySigner,
    pub seller: Address,
    pub settlement: Address,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub server: Option<tokio::task::JoinHandle<()>>,
    pub dir: std::path::PathBuf,
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[derive(Default)]
pub struct Options {
    pub toml: String,
    pub database_url: Option<String>,
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Stack {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let devnet = Devnet::start(DevnetConfig::default()).await.expect("devnet");
        let (sqlite, dir) = super::sqlite_url("facilitator");
        let database_url = options.database_url.unwrap_or(sqlite);
        let settlement_key = devnet.signer(9).unwrap().clone();
        let key_hex = alloy::primitives::hex::encode_prefixed(settlement_key.to_bytes());
        let env = move |name: &str| match name {
            facilitator::config::ENV_SETTLEMENT_KEYS => Some(key_hex.clone()),
            facilitator::config::ENV_DATABASE_URL => Some(database_url.clone()),
            _ => None,
        };
        let mut config = FacilitatorConfig::from_toml(&options.toml, env).expect("config");
        config.networks.push(NetworkConfig::from_devnet(devnet.state()));
        let app = Facilitator::build(config).await.expect("facilitator");
        let settler = app.settler.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.serve(listener, async move {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        Stack {
            buyer: devnet.signer(1).unwrap().clone(),
            seller: devnet.signer(2).unwrap().address(),
            settlement: settlement_key.address(),
            devnet,
            url,
            http: reqwest::Client::new(),
            settler,
            shutdown: Some(tx),
            server: Some(server),
            dir,
        }
    }

    /// Stops the HTTP server (graceful) and waits for it.
    pub async fn stop_server(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    pub fn requirement(&self, amount: u64) -> v2::PaymentRequirements {
        v2::PaymentRequirements {
            scheme: "exact".into(),
            network: self.devnet.state().network.clone(),
            amount: U256::from(amount),
            asset: ARC_USDC,
            pay_to: self.seller,
            max_timeout_seconds: 60,
            extra: Some(Extra::eip712("USDC", "2")),
        }
    }

    /// A valid v2 request paying `amount` from `signer`.
    pub async fn payment_from(&self, signer: &PrivateKeySigner, amount: u64) -> VerifyRequest {
        let requirement = self.requirement(amount);
        let payload = eip3009::pay(signer, &requirement, None, now(), B256::random())
            .await
            .unwrap();
        VerifyRequest::V2(v2::VerifyRequest {
            x402_version: protocol::version::Version,
            payment_payload: payload,
            payment_requirements: requirement,
        })
    }

    pub async fn payment(&self, amount: u64) -> VerifyRequest {
        self.payment_from(&self.buyer, amount).await
    }

    pub async fn post(&self, path: &str, body: &impl serde::Serialize) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.http.get(format!("{}{path}", self.url)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `/verify`'s reason for a request (`"valid"` when it passes).
    pub async fn verify_reason(&self, request: &VerifyRequest) -> String {
        let (status, body) = self.post("/verify", request).await;
        assert_eq!(status, 200, "{body}");
        if body["isValid"] == Value::Bool(true) {
            "valid".into()
        } else {
            body["invalidReason"].as_str().unwrap_or("<none>").to_owned()
        }
    }

    pub async fn usdc_balance(&self, who: Address) -> U256 {
        let token = contracts::bindings::IEip3009::new(ARC_USDC, self.devnet.admin_provider().clone());
        token.balanceOf(who).call().await.unwrap()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
