//! A `nerdcabal dev` process on free ports, its state file, a provider on its chain, and `nerdcabal pay`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;

use super::{KillOnDrop, free_port, temp_dir};

pub struct Dev {
    pub child: KillOnDrop,
    pub state: Value,
    pub state_file: PathBuf,
    pub provider: DynProvider,
    pub dir: PathBuf,
}

impl Dev {
    pub async fn start() -> Dev {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = temp_dir("dev");
        let state_file = dir.join("dev.json");
        // Free ports are picked, released and handed to the child: another test may take one meanwhile, so a
        // start that fails to bind is retried on fresh ports.
        let mut attempt = 0;
        let child = loop {
            attempt += 1;
            let ports: Vec<String> = (0..4).map(|_| free_port().to_string()).collect();
            let stderr_path = dir.join(format!("dev-{attempt}.stderr"));
            let mut child = KillOnDrop(
                Command::new(env!("CARGO_BIN_EXE_nerdcabal"))
                    .arg("dev")
                    .arg("--state-file")
                    .arg(&state_file)
                    .args([
                        "--rpc-port",
                        "0",
                        "--facilitator-port",
                        &ports[0],
                        "--proxy-port",
                        &ports[1],
                    ])
                    .args(["--admin-port", &ports[2], "--api-port", &ports[3]])
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(&stderr_path).unwrap())
                    .spawn()
                    .expect("spawn nerdcabal dev"),
            );
            let deadline = Instant::now() + Duration::from_secs(60);
            let exited = loop {
                if state_file.exists() {
                    break None;
                }
                if let Some(status) = child.try_wait().unwrap() {
                    break Some(status);
                }
                assert!(
                    Instant::now() < deadline,
                    "nerdcabal dev wrote no state file within 60 s:\n{}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let Some(status) = exited else {
                break child;
            };
            let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            assert!(
                attempt < 3 && stderr.contains("cannot listen"),
                "nerdcabal dev exited ({status}) before it was ready:\n{stderr}"
            );
        };
        let state: Value = serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
        let provider = ProviderBuilder::new()
            .connect(state["rpc_url"].as_str().unwrap())
            .await
            .unwrap()
            .erased();
        Dev {
            child,
            state,
            state_file,
            provider,
            dir,
        }
    }

    pub fn address(&self, who: &str) -> Address {
        self.state[who]["address"].as_str().unwrap().parse().unwrap()
    }

    pub fn price(&self) -> U256 {
        self.state["price"].as_str().unwrap().parse().unwrap()
    }

    pub async fn balance(&self, who: Address) -> U256 {
        contracts::bindings::IEip3009::new(protocol::network::ARC_USDC, self.provider.clone())
            .balanceOf(who)
            .call()
            .await
            .unwrap()
    }

    pub fn ledger(&self, name: &str) -> String {
        format!("sqlite://{}", self.dir.join(format!("{name}.db")).display())
    }

    /// `nerdcabal pay --devnet <state> --ledger <ledger> <args…>`: exit code, stdout, stderr.
    pub async fn pay(&self, ledger: &str, args: &[&str]) -> (i32, String, String) {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_nerdcabal"))
            .arg("pay")
            .arg("--devnet")
            .arg(&self.state_file)
            .args(["--ledger", ledger, "--timeout", "10"])
            .args(args)
            .env_remove("NERDCABAL_BUYER_KEY")
            .output()
            .await
            .expect("run nerdcabal pay");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

impl Dev {
    /// `mcp --devnet <state> --ledger <ledger> <extra…>`.
    pub fn mcp_args(&self, ledger: &str, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            "mcp".to_owned(),
            "--devnet".to_owned(),
            self.state_file.display().to_string(),
            "--ledger".to_owned(),
            ledger.to_owned(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    }

    /// `nerdcabal mcp` over stdio, as an MCP client.
    pub async fn mcp_stdio(&self, ledger: &str, extra: &[&str]) -> RunningService<RoleClient, ()> {
        let args = self.mcp_args(ledger, extra);
        let transport = TokioChildProcess::new(
            tokio::process::Command::new(env!("CARGO_BIN_EXE_nerdcabal")).configure(|c| {
                c.args(&args).env_remove("NERDCABAL_BUYER_KEY").stderr(Stdio::null());
            }),
        )
        .unwrap();
        ().serve(transport).await.expect("MCP over stdio")
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
