//! The server under test as its own process: `nerdcabal facilitator|proxy` started from this executable on the
//! server core, waited for until it listens, stopped when dropped (SIGTERM, then SIGKILL if it lingers); and
//! the load driver run the same way on the load core. With `NERDCABAL_BENCH_VALGRIND=callgrind` (or `massif`)
//! every server runs under that valgrind tool and leaves `<tool>.<name>.out` in the bench's work directory:
//! where its instructions (or its heap) go under the same load — the rates such a run reaches mean nothing.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use super::BenchError;
use super::cores::Cores;
use super::driver::Job;
use super::sample::Sample;

pub struct ServerProcess {
    child: Child,
}

impl ServerProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // A clean stop first, so a profiler under it writes its counts.
        let terminated = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if terminated {
            for _ in 0..100 {
                if self.child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment variable that runs every server under a valgrind tool.
pub const VALGRIND: &str = "NERDCABAL_BENCH_VALGRIND";

/// The valgrind tool the servers run under, if one was asked for.
pub fn valgrind_tool() -> Option<String> {
    std::env::var(VALGRIND)
        .ok()
        .filter(|tool| matches!(tool.as_str(), "callgrind" | "massif"))
}

fn exe() -> Result<std::path::PathBuf, BenchError> {
    std::env::current_exe().map_err(|e| BenchError::Setup(format!("finding this executable: {e}")))
}

/// Starts `nerdcabal <args>` on the server core with `env`, logging to `log`, and waits for `port`.
pub async fn start_server(
    cores: &Cores,
    name: &str,
    args: &[&str],
    env: &[(&str, String)],
    log: &Path,
    port: u16,
) -> Result<ServerProcess, BenchError> {
    let exe = exe()?;
    let log_file = std::fs::File::create(log).map_err(super::setup)?;
    let mut command = if let Some(tool) = valgrind_tool() {
        let mut command = cores.server_command("valgrind");
        let out = log.with_file_name(format!("{tool}.{name}.out"));
        command
            .arg(format!("--tool={tool}"))
            .arg(format!("--{tool}-out-file={}", out.display()))
            .arg(&exe);
        command
    } else {
        cores.server_command(&exe.display().to_string())
    };
    command
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log_file);
    for (k, v) in env {
        command.env(k, v);
    }
    let child = command
        .spawn()
        .map_err(|e| BenchError::Setup(format!("starting {name}: {e}")))?;
    let mut server = ServerProcess { child };
    let child = &mut server.child;
    if let Err(e) = wait_for_port(port, &mut || child.try_wait().ok().flatten().is_some()).await {
        let _ = server.child.kill();
        let tail = std::fs::read_to_string(log).unwrap_or_default();
        return Err(BenchError::Setup(format!(
            "{name} did not start ({e}); its log:\n{tail}"
        )));
    }
    Ok(server)
}

/// A loopback port nobody listens on now.
pub fn free_port() -> Result<u16, BenchError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(super::setup)
}

/// Waits (up to 60 s) until something accepts connections on the port; gives up at once when `exited` says
/// the process that should listen there has ended.
pub async fn wait_for_port(port: u16, exited: &mut dyn FnMut() -> bool) -> Result<(), BenchError> {
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        if exited() {
            return Err(BenchError::Setup("the process exited before it listened".into()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(BenchError::Setup(format!("nothing listens on port {port} after 60 s")))
}

/// Runs a job in the load driver process (`nerdcabal bench drive`) on the load core.
pub async fn drive(cores: &Cores, work: &Path, job: &Job) -> Result<Sample, BenchError> {
    let file = work.join("driver-job.json");
    std::fs::write(&file, serde_json::to_vec(job).map_err(super::setup)?).map_err(super::setup)?;
    let mut command = tokio::process::Command::from(cores.load_command(&exe()?.display().to_string()));
    let output = command
        .args(["bench", "drive", "--job"])
        .arg(&file)
        .output()
        .await
        .map_err(|e| BenchError::Setup(format!("running the load driver: {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).map_err(|e| {
        BenchError::Setup(format!(
            "the load driver's answer `{stdout}`: {e}; {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    })
}
