//! `nerdcabal bench proxy`: the paywall proxy as its own process in front of an upstream, beside the upstream
//! direct and nginx in front of the same upstream — a free route, unpaid requests answered 402, and paid requests
//! end to end (settle-after with single transactions and with batches, and `settle = "deferred"` over a
//! facilitator engine with the chain-state mirror, each request its own payment) beside a facilitator's
//! `/verify` of the same kind of unique payments (mirror on) — and the proxy's memory at 1,000 idle keep-alive
//! connections.

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

/// How a bench proxy's paid route settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settling {
    Single,
    Batched,
    /// Deferred, over a batching engine with the chain-state mirror; bounds far above what the run owes.
    Deferred,
}

/// A proxy with the facilitator engine inside.
async fn start_proxy(stack: &Stack<'_>, name: &str, settling: Settling) -> Result<ProxyProcess, BenchError> {
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
        match settling {
            Settling::Single => "[batch]\nenabled = false\n",
            Settling::Batched => "[batch]\nenabled = true\nmax_wait_ms = 25\nmax_items = 200\n",
            Settling::Deferred => {
                "[batch]\nenabled = true\nmax_wait_ms = 25\nmax_items = 200\n[mirror]\nenabled = true\n"
            }
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
         [[route]]\npath = \"/paid\"\nupstream = \"http://{upstream}\"\nprice = \"$0.001\"\n{deferred}",
        dir.join(format!("{name}-state.db")).display(),
        deferred = if settling == Settling::Deferred {
            "settle = \"deferred\"\n[deferred]\nmax_unsettled_per_payer = \"$1000\"\n\
             max_unsettled_total = \"$100000\"\nbatch_size = 200\nflush_interval_ms = 100\n"
        } else {
            ""
        }
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
    connections: usize,
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
        connections,
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

/// What the seller received since `before`, once it covers `paid` payments of $0.001 (or after 120 s).
async fn settled_for(
    devnet: &Devnet,
    seller: Address,
    before: alloy::primitives::U256,
    paid: usize,
) -> Result<alloy::primitives::U256, BenchError> {
    let owed = alloy::primitives::U256::from(1_000u64 * paid as u64);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let moved = usdc_balance(devnet, seller).await?.saturating_sub(before);
        if moved >= owed || std::time::Instant::now() > deadline {
            return Ok(moved);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn usdc_balance(devnet: &Devnet, who: Address) -> Result<alloy::primitives::U256, BenchError> {
    let token =
        facilitator::chain::token::IFiatToken::new(protocol::network::ARC_USDC, devnet.admin_provider().clone());
    token.balanceOf(who).call().await.map_err(setup)
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
    let batched = start_proxy(&stack, "proxy-batched", Settling::Batched).await?;
    let single = start_proxy(&stack, "proxy-single", Settling::Single).await?;
    // The deferred proxy's seller is its own, so what it is owed can be checked on chain alone.
    let deferred_pay_to = state.accounts.get(3).map(|a| a.address).unwrap_or_default();
    let deferred_stack = Stack {
        pay_to: deferred_pay_to,
        ..stack
    };
    let deferred = start_proxy(&deferred_stack, "proxy-deferred", Settling::Deferred).await?;
    let verifier = super::facilitator::start_facilitator(
        &cores,
        &work,
        &devnet_file,
        "facilitator-mirrored",
        "[mirror]\nenabled = true\n",
    )
    .await?;
    let buyers = payments::buyers(&devnet, 64, 1_000_000_000).await?;
    // One payment of every buyer first, so the mirrors behind the deferred proxy and the verifier know them.
    progress("warming the chain-state mirrors");
    let seller_before = usdc_balance(&devnet, deferred_pay_to).await?;
    let warm = paid_job(&deferred, &buyers, buyers.len(), 8).await?;
    let mut deferred_paid = warm.requests.len();
    let mut settled_deferred = alloy::primitives::U256::ZERO;
    drive(&cores, work.path(), &warm).await?;
    let verify_requirement = super::facilitator::requirement(&state.network, pay_to, 1_000);
    let verify_job = |count: usize| {
        let buyers = buyers.clone();
        let requirement = verify_requirement.clone();
        let address = verifier.1.clone();
        async move {
            let signed = payments::sign(&buyers, &requirement, None, count).await?;
            let bodies = signed
                .iter()
                .map(|p| super::facilitator::verify_body(p, &requirement))
                .collect();
            Ok::<_, BenchError>(super::facilitator::json_post_job(
                &address,
                "/verify",
                options.connections,
                bodies,
            ))
        }
    };
    drive(&cores, work.path(), &verify_job(buyers.len()).await?).await?;

    const DIRECT: &str = "free route, upstream direct";
    const NGINX: &str = "free route, nginx → upstream";
    const FREE: &str = "free route, our proxy → upstream";
    const OFFER: &str = "unpaid → 402 offer";
    const PAID_SINGLE: &str = "paid, settle-after, one tx each";
    const PAID_BATCHED: &str = "paid, settle-after, batched";
    const VERIFY: &str = "verify, mirror on, unique payments (facilitator HTTP)";
    const PAID_DEFERRED: &str = "paid, settle = deferred (mirror on)";
    let names = [
        DIRECT,
        NGINX,
        FREE,
        OFFER,
        PAID_SINGLE,
        PAID_BATCHED,
        VERIFY,
        PAID_DEFERRED,
    ];
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
        let job = paid_job(&single, &buyers, counts.single, 256).await?;
        push(PAID_SINGLE, drive(&cores, work.path(), &job).await?);
        let job = paid_job(&batched, &buyers, counts.batched, 256).await?;
        push(PAID_BATCHED, drive(&cores, work.path(), &job).await?);
        progress(format!("round {}/{}: verify and deferred", round + 1, options.rounds));
        push(
            VERIFY,
            drive(&cores, work.path(), &verify_job(counts.batched).await?).await?,
        );
        let job = paid_job(&deferred, &buyers, counts.batched, options.connections).await?;
        deferred_paid += job.requests.len();
        push(PAID_DEFERRED, drive(&cores, work.path(), &job).await?);
        // Deferred answers were served before settlement: every one must be paid for on chain — and the
        // settling must be over before the next round measures anything else.
        progress(format!(
            "round {}/{}: waiting for the deferred payments to settle",
            round + 1,
            options.rounds
        ));
        settled_deferred = settled_for(&devnet, deferred_pay_to, seller_before, deferred_paid).await?;
    }
    let owed = alloy::primitives::U256::from(1_000u64 * deferred_paid as u64);

    progress("memory at 1,000 idle keep-alive connections");
    let mut readings = Vec::new();
    let pid = batched.server.pid();
    let nginx_pid = nginx.pid();
    let before = rss_mib(pid);
    let held = idle_connections(&batched.address, 1_000).await?;
    let nginx_held = idle_connections(nginx.url.trim_start_matches("http://"), 1_000).await?;
    let after_load = rss_mib(pid);
    // The same proxy freshly started, with no load before: what the run left behind is the difference.
    let fresh = start_proxy(&stack, "proxy-fresh", Settling::Batched).await?;
    let fresh_before = rss_mib(fresh.server.pid());
    let fresh_held = idle_connections(&fresh.address, 1_000).await?;
    let fresh_after = rss_mib(fresh.server.pid());
    drop(fresh_held);
    drop(fresh);
    for (name, value) in [
        ("proxy RSS, after the run, no connections", before),
        (
            "proxy RSS at 1,000 idle keep-alive connections, after the run",
            after_load,
        ),
        ("proxy RSS freshly started, no connections", fresh_before),
        (
            "proxy RSS freshly started, at 1,000 idle keep-alive connections",
            fresh_after,
        ),
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
    drop((single, batched, deferred, verifier, nginx));

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
    report.compare(PAID_DEFERRED, VERIFY);
    report.readings = readings;
    report.setup.push(format!(
        "deferred: the seller received {settled_deferred} atomic units on chain for {deferred_paid} payments served \
         (owed {owed})"
    ));
    report.readings.extend(super::routes::lookup_costs()?);
    Ok(report)
}
