//! Which core runs what: the server under test gets core 0 to itself; the bench process — and with it the load
//! driver, wrk, anvil, the relay and the upstream, which it starts — takes core 1. On a one-core machine nothing
//! is pinned (the report says so).

use std::process::Command;

#[derive(Debug, Clone, Copy)]
pub struct Cores {
    pub server: Option<usize>,
    pub load: Option<usize>,
}

impl Cores {
    /// Pins this process (every thread, so its children too) to the load core.
    pub fn pin_this_process() -> Cores {
        let count = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        if count < 2 || which("taskset").is_none() {
            return Cores {
                server: None,
                load: None,
            };
        }
        let pinned = Command::new("taskset")
            .args(["-a", "-cp", "1", &std::process::id().to_string()])
            .output()
            .is_ok_and(|o| o.status.success());
        if pinned {
            Cores {
                server: Some(0),
                load: Some(1),
            }
        } else {
            Cores {
                server: None,
                load: None,
            }
        }
    }

    /// A command for the server under test, on its core.
    pub fn server_command(&self, program: &str) -> Command {
        pinned(self.server, program)
    }

    /// A command for load (wrk), on the load core.
    pub fn load_command(&self, program: &str) -> Command {
        pinned(self.load, program)
    }

    pub fn describe(&self) -> String {
        match (self.server, self.load) {
            (Some(s), Some(l)) => format!("server under test pinned to core {s}; load, chain and upstream to core {l}"),
            _ => "not pinned (fewer than two cores, or no taskset): every number shares the cores".into(),
        }
    }
}

fn pinned(core: Option<usize>, program: &str) -> Command {
    match core {
        Some(core) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(core.to_string()).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// The path of a program on `PATH`.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
