//! wrk as the load for the read series (a fixed request or a pool of bodies, round and round for a time): one
//! thread, on the load core, with a Lua script whose `done` prints requests, status errors and latency
//! percentiles as JSON, read back into a [`Sample`].

use std::path::Path;
use std::time::Duration;

use super::BenchError;
use super::cores::Cores;
use super::sample::Sample;

/// What wrk sends.
pub struct WrkJob<'a> {
    pub url: &'a str,
    pub connections: usize,
    pub duration: Duration,
    pub method: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    /// Bodies taken in turn (empty: no body).
    pub bodies: &'a [String],
    /// `true`: a 402 is the expected answer (offers: every answer outside 2xx–3xx counts as one); else 2xx.
    pub expect_402: bool,
}

fn lua_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn script(job: &WrkJob<'_>, bodies_file: &Path) -> String {
    let headers: String = job
        .headers
        .iter()
        .map(|(n, v)| format!("wrk.headers[{}] = {}\n", lua_string(n), lua_string(v)))
        .collect();
    let bodies = if job.bodies.is_empty() {
        String::new()
    } else {
        format!(
            "local bodies = {{}}\nfor line in io.lines({}) do bodies[#bodies + 1] = line end\n\
             local i = 0\n\
             request = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[i])\nend\n",
            lua_string(&bodies_file.display().to_string())
        )
    };
    let ok = if job.expect_402 {
        "summary.errors.status"
    } else {
        "summary.requests - summary.errors.status"
    };
    format!(
        "wrk.method = {method}\n{headers}{bodies}\
         done = function(summary, latency, requests)\n\
         \x20 local ok = {ok}\n\
         \x20 local socket = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout\n\
         \x20 io.write(string.format('{{\"ok\":%d,\"failed\":%d,\"elapsed_us\":%d,\"p50_us\":%d,\"p99_us\":%d}}\\n',\
         ok, summary.requests - ok + socket, summary.duration, latency:percentile(50), latency:percentile(99)))\n\
         end\n",
        method = lua_string(job.method),
    )
}

/// Runs wrk once.
pub fn run(cores: &Cores, work: &Path, job: &WrkJob<'_>) -> Result<Sample, BenchError> {
    let bodies_file = work.join("wrk-bodies.txt");
    if !job.bodies.is_empty() {
        std::fs::write(&bodies_file, job.bodies.join("\n") + "\n").map_err(super::setup)?;
    }
    let script_file = work.join("wrk-script.lua");
    std::fs::write(&script_file, script(job, &bodies_file)).map_err(super::setup)?;
    let seconds = job.duration.as_secs().max(1);
    let output = cores
        .load_command("wrk")
        .args([
            "-t1",
            &format!("-c{}", job.connections),
            &format!("-d{seconds}s"),
            "--timeout",
            "10s",
            "-s",
        ])
        .arg(&script_file)
        .arg(job.url)
        .output()
        .map_err(|e| BenchError::Setup(format!("running wrk: {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).ok_or_else(|| {
        BenchError::Setup(format!(
            "wrk printed no result: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    })?;
    serde_json::from_str(line).map_err(|e| BenchError::Setup(format!("wrk's result `{line}`: {e}")))
}
