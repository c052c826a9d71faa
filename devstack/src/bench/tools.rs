//! The outside programs the bench drives — wrk (load for the read series) and nginx (the baseline reverse
//! proxy) — installed from Debian's packages when missing.

use super::BenchError;
use super::cores::which;

/// Makes sure `wrk` and `nginx` are on the machine, installing Debian's packages when they are not.
pub fn ensure_installed() -> Result<(), BenchError> {
    let missing: Vec<&str> = [("wrk", "wrk"), ("nginx", "nginx-light")]
        .into_iter()
        .filter(|(program, _)| which(program).is_none() && !std::path::Path::new("/usr/sbin").join(program).is_file())
        .map(|(_, package)| package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("bench: installing {} from Debian's packages", missing.join(", "));
    let install = |update: bool| {
        if update {
            let _ = std::process::Command::new("apt-get").arg("update").arg("-q").status();
        }
        std::process::Command::new("apt-get")
            .args(["install", "-y", "-q"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if install(false) || install(true) {
        Ok(())
    } else {
        Err(BenchError::Setup(format!(
            "could not install {} (apt-get); install them and run again",
            missing.join(", ")
        )))
    }
}

/// nginx's path (Debian puts it in /usr/sbin, which may not be on `PATH`).
pub fn nginx_path() -> String {
    which("nginx")
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "/usr/sbin/nginx".into())
}
