//! `nerdcabal bench proxy`: the paywall proxy as its own process in front of an upstream, beside the upstream
//! direct and nginx in front of the same upstream — a free route, unpaid requests answered 402, and paid requests
//! end to end (settle-after with single transactions and with batches, each request its own payment) — plus the
//! facilitator's `/verify` for reference and the proxy's memory at 1,000 idle keep-alive connections.

use std::collections::HashMap;
use std::time::Duration;

use alloy::primitives::Address;
use contracts::{Devnet, DevnetConfig};
use protocol::header as codec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::cores::Cores;
use super::driver::{Job, JobLimit, JobRequest};
use super::process::{ServerProcess, drive, free_port, start_server};
use super::sample::{Reading, Report, Sample, Series};
use super::wrk::WrkJob;
use super::{BenchError, Options, WorkDir, payments, progress, setup};

/// Paid requests per round.
#[derive(Debug, Clone)]
pub struct PaidCounts {
    /// Through the proxy whose facilitator settles one transaction per payment.
    pub single: usize,
    /// Through the proxy whose facilitator batches.
    pub batched: usize,
}

impl Default for PaidCounts {
    fn default() -> Self {
        PaidCounts {
            single: 200,
            batched: 2_000,
        }
    }
}

struct ProxyProcess {
    server: ServerProcess,
    address: String,
}

/// What every proxy of the run shares.
struct Stack<'a> {
    cores: &'a Cores,
    work: &'a WorkDir,
    devnet_file: &'a std::path::Path,
    upstream: &'a str,
    network: &'a str,
    pay_to: Address,
}

/// A proxy with the facilitator engine inside; `batch` settles in batches.
async fn start_proxy(stack: &Stack<'_>, name: &str, batch: bool) -> Result<ProxyProcess, BenchError> {
    let Stack {
        cores,
        work,
        devnet_file,
        upstream,
        network,
        pay_to,
    } = *stack;
    let (port, admin) = (free_port()?, free_port()?);
    let dir = work.path();
    let engine = format!(
        "database_url = \"sqlite://{}\"\n{}",
        dir.join(format!("{name}-ledger.db")).display(),
        if batch {
            "[batch]\nenabled = true\nmax_wait_ms = 25\nmax_items = 200\n"
        } else {
            "[batch]\nenabled = false\n"
        }
    );
    let engine_file = dir.join(format!("{name}-facilitator.toml"));
    std::fs::write(&engine_file, engine).map_err(setup)?;
    let engine = engine_file.display().to_string();
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{admin}\"\nstate_database = \"{}\"\n\
         [facilitator]\nembedded = true\nconfig = \"{engine}\"\n\
         [defaults]\nnetwork = \"{network}\"\npay_to = \"{pay_to}\"\nmax_timeout_seconds = 600\n\
         [[route]]\npath = \"/free\"\nupstream = \"http://{upstream}\"\nfree = true\n\
         [[route]]\npath = \"/paid\"\nupstream = \"http://{upstream}\"\nprice = \"$0.001\"\n",
        dir.join(format!("{name}-state.db")).display()
    );
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, config).map_err(setup)?;
    let (config_arg, devnet_arg) = (file.display().to_string(), devnet_file.display().to_string());
    let server = start_server(
        cores,
        name,
        &["proxy", "--config", &config_arg, "--devnet", &devnet_arg],
        &[],
        &dir.join(format!("{name}.log")),
        port,
    )
    .await?;
    Ok(ProxyProcess {
        server,
        address: format!("127.0.0.1:{port}"),
    })
}

/// Signed PAYMENT-SIGNATURE headers for the proxy's `/paid` offer.
async fn paid_job(
    proxy: &ProxyProcess,
    buyers: &std::sync::Arc<Vec<alloy::signers::local::PrivateKeySigner>>,
    count: usize,
) -> Result<Job, BenchError> {
    let offer = reqwest::get(format!("http://{}/paid", proxy.address))
        .await
        .map_err(setup)?;
    let offer = offer
        .headers()
        .get(codec::PAYMENT_REQUIRED)
        .ok_or_else(|| setup("the proxy's 402 has no PAYMENT-REQUIRED header"))
        .and_then(|h| codec::decode_payment_required_v2(h.as_bytes()).map_err(setup))?;
    let requirement = offer
        .accepts
        .first()
        .ok_or_else(|| setup("the offer accepts nothing"))?;
    let signed = payments::sign(buyers, requirement, Some(offer.resource.clone()), count).await?;
    Ok(Job {
        address: proxy.address.clone(),
        connections: 256,
        limit: JobLimit::EachOnce,
        expect: vec![200],
        requests: signed
            .iter()
            .map(|p| JobRequest {
                method: "GET".into(),
                path: "/paid".into(),
                headers: vec![(codec::PAYMENT_SIGNATURE.into(), codec::encode(p))],
                body: String::new(),
            })
            .collect(),
    })
}

/// RSS of a process, from /proc.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Opens `count` keep-alive connections to `address`, each having made one request and read its answer.
async fn idle_connections(address: &str, count: usize) -> Result<Vec<tokio::net::TcpStream>, BenchError> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = tokio::net::TcpStream::connect(address).await.map_err(setup)?;
        stream
            .write_all(format!("GET /free HTTP/1.1\r\nHost: {address}\r\n\r\n").as_bytes())
            .await
            .map_err(setup)?;
        let mut buffer = [0u8; 1024];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .map_err(setup)?
            .map_err(setup)?;
        if read == 0 {
            return Err(setup("a connection closed before answering"));
        }
        out.push(stream);
    }
    Ok(out)
}

/// Runs the proxy benchmark.
pub async fn run(options: Options, counts: PaidCounts) -> Result<Report, BenchError> {
    super::tools::ensure_installed()?;
    let cores = Cores::pin_this_process();
    let work = WorkDir::new("proxy")?;
    progress("starting the devnet");
    let devnet = Devnet::start(DevnetConfig::default()).await?;
    let rpc_url = match options.rpc_latency {
        Some(latency) => super::relay::start(devnet.rpc_url(), latency).await?,
        None => devnet.rpc_url().to_owned(),
    };
    let mut state = devnet.state().clone();
    state.rpc_url = rpc_url;
    let devnet_file = work.path().join("devnet.json");
    state.write(&devnet_file).map_err(setup)?;
    let pay_to = state.accounts.get(2).map(|a| a.address).unwrap_or_default();

    progress("starting the upstream, nginx and the proxies (single, batched)");
    let upstream = super::upstream::start().await?;
    let nginx = super::nginx::start(&cores, work.path(), &upstream).await?;
    let stack = Stack {
        cores: &cores,
        work: &work,
        devnet_file: &devnet_file,
        upstream: &upstream,
        network: &state.network,
        pay_to,
    };
    let batched = start_proxy(&stack, "proxy-batched", true).await?;
    let single = start_proxy(&stack, "proxy-single", false).await?;
    let buyers = payments::buyers(&devnet, 64, 1_000_000_000).await?;

    const DIRECT: &str = "free route, upstream direct";
    const NGINX: &str = "free route, nginx → upstream";
    const FREE: &str = "free route, our proxy → upstream";
    const OFFER: &str = "unpaid → 402 offer";
    const PAID_SINGLE: &str = "paid, settle-after, one tx each";
    const PAID_BATCHED: &str = "paid, settle-after, batched";
    let names = [DIRECT, NGINX, FREE, OFFER, PAID_SINGLE, PAID_BATCHED];
    let mut series: HashMap<&str, Series> = names.iter().map(|n| (*n, Series::new(*n))).collect();
    let mut push = |name: &str, sample: Sample| {
        if let Some(s) = series.get_mut(name) {
            s.samples.push(sample);
        }
    };
    let get = |url: String, expect_402: bool| -> Result<Sample, BenchError> {
        super::wrk::run(
            &cores,
            work.path(),
            &WrkJob {
                url: &url,
                connections: options.connections,
                duration: options.duration,
                method: "GET",
                headers: &[],
                bodies: &[],
                expect_402,
            },
        )
    };
    for round in 0..options.rounds {
        progress(format!("round {}/{}: free and 402", round + 1, options.rounds));
        // Alternate the order within a round too, so neither side always runs first.
        if round % 2 == 0 {
            push(NGINX, get(format!("{}/free", nginx.url), false)?);
            push(FREE, get(format!("http://{}/free", batched.address), false)?);
        } else {
            push(FREE, get(format!("http://{}/free", batched.address), false)?);
            push(NGINX, get(format!("{}/free", nginx.url), false)?);
        }
        push(DIRECT, get(format!("http://{upstream}/free"), false)?);
        push(OFFER, get(format!("http://{}/paid", batched.address), true)?);
        progress(format!("round {}/{}: paid", round + 1, options.rounds));
        let job = paid_job(&single, &buyers, counts.single).await?;
        push(PAID_SINGLE, drive(&cores, work.path(), &job).await?);
        let job = paid_job(&batched, &buyers, counts.batched).await?;
        push(PAID_BATCHED, drive(&cores, work.path(), &job).await?);
    }

    progress("memory at 1,000 idle keep-alive connections");
    let mut readings = Vec::new();
    let pid = batched.server.pid();
    let nginx_pid = nginx.pid();
    let before = rss_mib(pid);
    let held = idle_connections(&batched.address, 1_000).await?;
    let nginx_held = idle_connections(nginx.url.trim_start_matches("http://"), 1_000).await?;
    for (name, value) in [
        ("proxy RSS, after the run, no connections", before),
        ("proxy RSS at 1,000 idle keep-alive connections", rss_mib(pid)),
        ("nginx RSS at 1,000 idle keep-alive connections", rss_mib(nginx_pid)),
    ] {
        if let Some(value) = value {
            readings.push(Reading {
                name: name.into(),
                value,
                unit: "MiB".into(),
            });
        }
    }
    drop((held, nginx_held));
    drop((single, batched, nginx));

    let mut report = Report::default();
    report.setup.push(cores.describe());
    report.setup.push(format!(
        "{} rounds; reads {} connections × {:?} (wrk); paid per round {} single, {} batched (our driver, 256 connections)",
        options.rounds, options.connections, options.duration, counts.single, counts.batched
    ));
    report.setup.push(match options.rpc_latency {
        Some(l) => format!("every JSON-RPC call delayed {l:?} by a relay"),
        None => "JSON-RPC straight to anvil".into(),
    });
    for name in names {
        report.add(series.remove(name).unwrap_or_else(|| Series::new(name)));
    }
    report.compare(FREE, NGINX);
    report.compare(FREE, DIRECT);
    report.compare(NGINX, DIRECT);
    report.compare(PAID_BATCHED, PAID_SINGLE);
    report.readings = readings;
    report.readings.extend(super::routes::lookup_costs()?);
    Ok(report)
}
