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
    /// Serve this devnet (else a fresh one).
    pub devnet: Option<Devnet>,
    /// Reach the devnet through this RPC URL (e.g. a fake node in front of it) instead of its own.
    pub rpc_url: Option<String>,
    /// Per-request RPC timeout (and no retries) instead of the defaults.
    pub rpc_timeout_ms: Option<u64>,
    /// The counterparty screen asked before each verify and settle.
    pub screen: Option<std::sync::Arc<dyn facilitator::compliance::CounterpartyScreen>>,
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Stack {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let devnet = match options.devnet {
            Some(devnet) => devnet,
            None => Devnet::start(DevnetConfig::default()).await.expect("devnet"),
        };
        let (sqlite, dir) = super::sqlite_url("facilitator");
        let database_url = options.database_url.unwrap_or(sqlite);
        let settlement_key = devnet.signer(9).unwrap().clone();
        let key_hex = alloy::primitives::hex::encode_prefixed(settlement_key.to_bytes());
        let env = move |name: &str| match name {
            facilitator::config::ENV_SETTLEMENT_KEYS => Some(key_hex.clone()),
            facilitator::config::ENV_DATABASE_URL => Some(database_url.clone()),
            _ => None,
        };
        // Tests that do not say otherwise exercise single-transaction settlement (batching, the default, has
        // its own tests, which configure `[batch]`).
        let toml = if options.toml.contains("[batch]") {
            options.toml.clone()
        } else {
            format!("[batch]\nenabled = false\n{}", options.toml)
        };
        let mut config = FacilitatorConfig::from_toml(&toml, env).expect("config");
        let mut network = NetworkConfig::from_devnet(devnet.state());
        if let Some(url) = options.rpc_url {
            network.rpc_url = url;
        }
        if let Some(ms) = options.rpc_timeout_ms {
            network.rpc_timeout_ms = ms;
            network.rpc_retries = 0;
        }
        config.networks.push(network);
        config.screen = options.screen;
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

    /// The settlement signer's transaction counts on the devnet: (mined, pending).
    pub async fn signer_nonces(&self) -> (u64, u64) {
        use alloy::providers::Provider;
        let provider = self.devnet.admin_provider();
        let latest = provider.get_transaction_count(self.settlement).latest().await.unwrap();
        let pending = provider.get_transaction_count(self.settlement).pending().await.unwrap();
        (latest, pending)
    }

    /// The ledger row of a request's payment.
    pub async fn row(&self, request: &VerifyRequest) -> Option<facilitator::ledger::SettlementRecord> {
        let (payer, nonce) = payer_and_nonce(request);
        self.settler
            .verifier()
            .ledger()
            .find(payer, nonce)
            .await
            .unwrap()
            .into_iter()
            .next()
    }

    /// Waits (polling the ledger, up to `secs`) until every request's row satisfies `done`; the rows.
    pub async fn rows_when(
        &self,
        requests: &[VerifyRequest],
        secs: u64,
        done: impl Fn(&facilitator::ledger::SettlementRecord) -> bool,
    ) -> Vec<facilitator::ledger::SettlementRecord> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let mut rows = Vec::new();
            for request in requests {
                if let Some(row) = self.row(request).await {
                    rows.push(row);
                }
            }
            if rows.len() == requests.len() && rows.iter().all(&done) {
                return rows;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "rows not there in {secs} s: {rows:#?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The settlement key (a public anvil test key), for tests that send with it behind the facilitator's back.
    pub fn settlement_key(&self) -> PrivateKeySigner {
        self.devnet.signer(9).unwrap().clone()
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

/// The payer and nonce of a request's authorization.
pub fn payer_and_nonce(request: &VerifyRequest) -> (Address, B256) {
    let exact = match request {
        VerifyRequest::V2(r) => r.payment_payload.payload.exact_evm().unwrap().clone(),
        VerifyRequest::V1(r) => r.payment_payload.payload.exact_evm().unwrap().clone(),
    };
    (exact.authorization.from, exact.authorization.nonce)
}

/// The amount of a (v2) request.
pub fn amount_of(request: &VerifyRequest) -> U256 {
    match request {
        VerifyRequest::V2(r) => r.payment_requirements.amount,
        VerifyRequest::V1(r) => r.payment_requirements.max_amount_required,
    }
}
