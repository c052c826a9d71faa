//! Finding the pinned anvil: `ANVIL_BIN`, then `PATH`, then `contracts/node_modules`; when none is there, the
//! pinned toolchain is installed with `npm ci` in `contracts/` (saying so), or the error names the command.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the npm package puts the binary, relative to `contracts/`.
pub const NODE_MODULES_ANVIL: &str = "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";

/// The `contracts/` directory of this checkout (where `package.json` pins the toolchain).
pub fn contracts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Debug, thiserror::Error)]
pub enum AnvilBinaryError {
    #[error("ANVIL_BIN points at {0}, which is not an executable file")]
    BadEnv(PathBuf),
    #[error("anvil is not installed and `{command}` failed ({reason}); run it yourself, or set ANVIL_BIN")]
    InstallFailed { command: String, reason: String },
}

/// Locates anvil, installing the pinned version with npm if `install` allows it.
pub fn find_anvil(install: bool) -> Result<PathBuf, AnvilBinaryError> {
    if let Some(path) = std::env::var_os("ANVIL_BIN") {
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(AnvilBinaryError::BadEnv(path))
        };
    }
    if let Some(found) = on_path("anvil") {
        return Ok(found);
    }
    let pinned = contracts_dir().join(NODE_MODULES_ANVIL);
    if is_executable(&pinned) {
        return Ok(pinned);
    }
    let command = format!("npm ci --prefix {}", contracts_dir().display());
    if !install {
        return Err(AnvilBinaryError::InstallFailed {
            command,
            reason: "installing was not allowed".into(),
        });
    }
    eprintln!("anvil not found: installing the pinned toolchain with `{command}`");
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(contracts_dir())
        .status()
        .map_err(|e| AnvilBinaryError::InstallFailed {
            command: command.clone(),
            reason: e.to_string(),
        })?;
    if !status.success() || !is_executable(&pinned) {
        return Err(AnvilBinaryError::InstallFailed {
            command,
            reason: format!("npm exited with {status}"),
        });
    }
    Ok(pinned)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
