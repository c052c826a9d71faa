//! The devnet end to end: an EIP-3009 authorization signed with the `protocol` crate settles against USDC at
//! Arc's address (balances and `authorizationState` asserted on chain), a replay reverts with FiatToken's
//! message, and the `nerdcabal devnet` binary writes its state file and leaves nothing running after SIGTERM.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::primitives::U256;
use alloy::providers::Provider;
use alloy::sol_types::SolEvent;
use common::KillOnDrop;
use contracts::bindings::{IEip3009, USDC};
use contracts::{Devnet, DevnetConfig, DevnetState};
use protocol::eip3009;
use protocol::network::{ARC_USDC, MULTICALL3};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn eip3009_authorization_settles_once_on_the_devnet() {
    let devnet = Devnet::start(DevnetConfig::default()).await.unwrap();
    let state = devnet.state().clone();
    assert_eq!(state.network, "eip155:31337");
    assert_eq!(state.usdc, ARC_USDC);

    let buyer = devnet.signer(1).unwrap().clone();
    let seller = devnet.signer(2).unwrap().address();
    let relayer = devnet.provider_for(3).unwrap();
    let token = IEip3009::new(ARC_USDC, relayer.clone());
    let before_buyer = token.balanceOf(buyer.address()).call().await.unwrap();
    let before_seller = token.balanceOf(seller).call().await.unwrap();
    assert_eq!(before_buyer, U256::from(contracts::devnet::DEFAULT_USDC_PER_ACCOUNT));

    let amount = U256::from(10_000u64);
    let domain = eip3009::domain("USDC", "2", state.chain_id, ARC_USDC);
    let usdc = USDC::new(ARC_USDC, relayer.clone());
    assert_eq!(
        usdc.DOMAIN_SEPARATOR().call().await.unwrap(),
        domain.separator(),
        "on-chain domain matches ours"
    );
    let auth =
        eip3009::build_authorization(buyer.address(), seller, amount, 60, now(), eip3009::random_nonce()).unwrap();
    let signature = eip3009::sign(&buyer, &auth, &domain).await.unwrap();
    assert!(
        !token
            .authorizationState(buyer.address(), auth.nonce)
            .call()
            .await
            .unwrap()
    );

    let settle = || {
        token.transferWithAuthorization(
            auth.from,
            auth.to,
            auth.value,
            auth.valid_after,
            auth.valid_before,
            auth.nonce,
            signature.clone(),
        )
    };
    let receipt = settle().send().await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status());
    let used = receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| IEip3009::AuthorizationUsed::decode_log_data(log.data()).ok())
        .expect("AuthorizationUsed emitted");
    assert_eq!((used.authorizer, used.nonce), (buyer.address(), auth.nonce));

    assert_eq!(
        token.balanceOf(buyer.address()).call().await.unwrap(),
        before_buyer - amount
    );
    assert_eq!(token.balanceOf(seller).call().await.unwrap(), before_seller + amount);
    assert!(
        token
            .authorizationState(buyer.address(), auth.nonce)
            .call()
            .await
            .unwrap()
    );

    let replay = settle().send().await.expect_err("a replay must revert");
    assert!(
        replay
            .to_string()
            .contains("FiatTokenV2: authorization is used or canceled"),
        "unexpected replay error: {replay}"
    );
    assert_eq!(
        token.balanceOf(seller).call().await.unwrap(),
        before_seller + amount,
        "paid once"
    );
    assert!(
        !relayer.get_code_at(MULTICALL3).await.unwrap().is_empty(),
        "Multicall3 installed"
    );
}

/// Kills the child if the test fails before stopping it, so a failing test leaves no devnet behind.
#[test]
fn devnet_binary_writes_state_and_stops_cleanly_on_sigterm() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("nerdcabal-devnet-{}-{}", std::process::id(), now()));
    std::fs::create_dir_all(&dir).unwrap();
    let state_file = dir.join("devnet.json");
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_nerdcabal"))
            .args([
                "devnet",
                "--port",
                "0",
                "--chain-id",
                "5042002",
                "--accounts",
                "3",
                "--state-file",
            ])
            .arg(&state_file)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !state_file.exists() {
        assert!(Instant::now() < deadline, "no state file within 60 s");
        assert!(child.try_wait().unwrap().is_none(), "devnet exited early");
        std::thread::sleep(Duration::from_millis(50));
    }
    let state = DevnetState::read(&state_file).unwrap();
    assert_eq!((state.chain_id, state.network.as_str()), (5_042_002, "eip155:5042002"));
    assert_eq!(state.accounts.len(), 3);
    assert!(
        state
            .accounts
            .iter()
            .all(|a| a.usdc_balance == U256::from(1_000_000_000_000u64))
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let rpc = state.rpc_url.clone();
    let balance = runtime.block_on(async {
        let provider = alloy::providers::ProviderBuilder::new().connect_http(rpc.parse().unwrap());
        USDC::new(state.usdc, provider)
            .balanceOf(state.accounts[2].address)
            .call()
            .await
            .unwrap()
    });
    assert_eq!(
        balance, state.accounts[2].usdc_balance,
        "state file agrees with the chain"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "devnet did not stop within 20 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "devnet exited with {exit}");
    assert!(!state_file.exists(), "state file removed on exit");
    let reachable = runtime.block_on(async {
        let provider = alloy::providers::ProviderBuilder::new().connect_http(rpc.parse().unwrap());
        provider.get_chain_id().await.is_ok()
    });
    assert!(!reachable, "anvil is still answering after the devnet stopped");
    let _ = std::fs::remove_dir_all(&dir);
}
