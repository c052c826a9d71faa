//! `nerdcabal devnet` as a long-running command: start the devnet, write the state file, print what was made,
//! and on Ctrl-C or SIGTERM stop anvil and remove the state file so no process or stale state is left behind.

use std::path::PathBuf;

use protocol::money::format_units;

use crate::devnet::{Devnet, DevnetConfig, DevnetError};
use crate::state::DevnetState;

/// Runs a devnet until the process is asked to stop.
pub async fn run_devnet(config: DevnetConfig, state_file: Option<PathBuf>) -> Result<(), DevnetError> {
    let devnet = Devnet::start(config).await?;
    if let Some(path) = &state_file {
        devnet.state().write(path).map_err(|e| DevnetError::Setup {
            step: "write state file",
            reason: e.to_string(),
        })?;
    }
    println!("{}", summary(devnet.state(), state_file.as_deref()));
    shutdown_signal().await;
    eprintln!("stopping the devnet");
    if let Some(path) = &state_file {
        let _ = std::fs::remove_file(path);
    }
    drop(devnet);
    Ok(())
}

/// A short human description of a running devnet.
pub fn summary(state: &DevnetState, state_file: Option<&std::path::Path>) -> String {
    let mut out = String::new();
    out.push_str("Arc devnet is running\n");
    out.push_str(&format!("  RPC        {}\n", state.rpc_url));
    out.push_str(&format!("  chain      {} ({})\n", state.chain_id, state.network));
    out.push_str(&format!(
        "  USDC       {} (FiatToken v2.2 stand-in, 6 decimals)\n",
        state.usdc
    ));
    out.push_str(&format!("  Multicall3 {}\n", state.multicall3));
    out.push_str("  accounts (anvil's public test keys; account 0 holds the token roles):\n");
    for (i, account) in state.accounts.iter().enumerate() {
        out.push_str(&format!(
            "    [{i}] {}  {} USDC  key {}\n",
            account.address,
            format_units(account.usdc_balance, 6),
            account.private_key
        ));
    }
    if let Some(path) = state_file {
        out.push_str(&format!("  state file {}\n", path.display()));
    }
    out.push_str("Press Ctrl-C to stop.");
    out
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
