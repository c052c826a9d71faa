//! `nerdcabal bench facilitator`: the facilitator as its own process against a fresh devnet. Read rounds
//! alternate the bare chain calls a verify makes (the same Multicall3 `aggregate3` eth_call, sent by wrk straight
//! to the node) with `/verify` over HTTP; settlement rounds alternate single-transaction settles, batched
//! settles, and the bare floor — the same multicall settlement transactions signed and sent directly to the node.

use std::collections::HashMap;
use std::time::Instant;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use contracts::{Devnet, DevnetConfig};
use facilitator::chain::token::{IFiatToken, IMulticall3, transfer_with_authorization_calldata};
use protocol::VerifyRequest;
use protocol::network::ARC_USDC;
use protocol::version::Version;
use protocol::wire::{Extra, SchemePayload, v2};

use super::cores::Cores;
use super::driver::{Job, JobLimit, JobRequest};
use super::process::{ServerProcess, drive, free_port, start_server};
use super::sample::{Report, Sample, Series};
use super::{BenchError, Options, WorkDir, payments, progress, setup};

/// Payments per settlement round.
#[derive(Debug, Clone)]
pub struct SettleCounts {
    pub single: usize,
    pub batch: usize,
}

impl Default for SettleCounts {
    fn default() -> Self {
        SettleCounts {
            single: 200,
            batch: 2_000,
        }
    }
}

const BATCH_ITEMS: usize = 200;
/// Connections of the batched settlement series (1,000 measured slower than 256 here: the facilitator, not
/// the number in flight, bounds it).
const BATCH_CONNECTIONS: usize = 256;

struct Facilitators {
    single: (ServerProcess, String),
    batched: (ServerProcess, String),
    mirrored: (ServerProcess, String),
}

pub(super) async fn start_facilitator(
    cores: &Cores,
    work: &WorkDir,
    devnet_file: &std::path::Path,
    name: &str,
    extra: &str,
) -> Result<(ServerProcess, String), BenchError> {
    let port = free_port()?;
    let db = work.path().join(format!("{name}.db"));
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\ndatabase_url = \"sqlite://{}\"\n\
         [limits]\nper_ip_per_second = 100000000\nper_key_per_second = 100000000\n{extra}",
        db.display()
    );
    let file = work.path().join(format!("{name}.toml"));
    std::fs::write(&file, config).map_err(setup)?;
    let (config_arg, devnet_arg) = (file.display().to_string(), devnet_file.display().to_string());
    let server = start_server(
        cores,
        name,
        &["facilitator", "--config", &config_arg, "--devnet", &devnet_arg],
        &[],
        &work.path().join(format!("{name}.log")),
        port,
    )
    .await?;
    Ok((server, format!("127.0.0.1:{port}")))
}

pub(super) fn requirement(network: &str, pay_to: Address, amount: u64) -> v2::PaymentRequirements {
    v2::PaymentRequirements {
        scheme: protocol::SCHEME_EXACT.into(),
        network: network.to_owned(),
        amount: U256::from(amount),
        asset: ARC_USDC,
        pay_to,
        max_timeout_seconds: 600,
        extra: Some(Extra::eip712("USDC", "2")),
    }
}

pub(super) fn verify_body(payload: &v2::PaymentPayload, requirement: &v2::PaymentRequirements) -> String {
    let request = VerifyRequest::V2(v2::VerifyRequest {
        x402_version: Version,
        payment_payload: payload.clone(),
        payment_requirements: requirement.clone(),
    });
    serde_json::to_string(&request).unwrap_or_default()
}

fn exact(payload: &v2::PaymentPayload) -> Option<&protocol::ExactEvmPayload> {
    match &payload.payload {
        SchemePayload::ExactEvm(p) => Some(p),
        _ => None,
    }
}

fn call3(target: Address, data: Vec<u8>) -> IMulticall3::Call3 {
    IMulticall3::Call3 {
        target,
        allowFailure: true,
        callData: data.into(),
    }
}

/// The JSON-RPC eth_call a verify made for one payment before the chain-state mirror: every read, then the
/// simulated settlement, in one Multicall3 `aggregate3` from the settlement address.
fn bare_verify_call(payload: &v2::PaymentPayload, multicall3: Address, from: Address, id: usize) -> Option<String> {
    let p = exact(payload)?;
    let a = &p.authorization;
    let calls = vec![
        call3(
            ARC_USDC,
            IFiatToken::authorizationStateCall {
                authorizer: a.from,
                nonce: a.nonce,
            }
            .abi_encode(),
        ),
        call3(ARC_USDC, IFiatToken::balanceOfCall { account: a.from }.abi_encode()),
        call3(ARC_USDC, IFiatToken::isBlacklistedCall { account: a.from }.abi_encode()),
        call3(ARC_USDC, IFiatToken::isBlacklistedCall { account: a.to }.abi_encode()),
        call3(ARC_USDC, IFiatToken::pausedCall {}.abi_encode()),
        call3(ARC_USDC, transfer_with_authorization_calldata(a, &p.signature).to_vec()),
    ];
    let data = IMulticall3::aggregate3Call { calls }.abi_encode();
    Some(
        serde_json::json!({
            "jsonrpc": "2.0", "id": id, "method": "eth_call",
            "params": [{"from": from, "to": multicall3, "data": alloy::primitives::Bytes::from(data)}, "latest"],
        })
        .to_string(),
    )
}

fn settle_job(address: &str, connections: usize, bodies: Vec<String>) -> Job {
    json_post_job(address, "/settle", connections, bodies)
}

/// Each JSON body POSTed once to `path`.
pub(super) fn json_post_job(address: &str, path: &str, connections: usize, bodies: Vec<String>) -> Job {
    Job {
        address: address.to_owned(),
        connections,
        limit: JobLimit::EachOnce,
        expect: vec![200],
        requests: bodies
            .into_iter()
            .map(|body| JobRequest {
                method: "POST".into(),
                path: path.into(),
                headers: vec![("content-type".into(), "application/json".into())],
                body,
            })
            .collect(),
    }
}

/// The floor for batched settlement: the same Multicall3 transactions of transferWithAuthorization calls, signed
/// by a funded account of the bench and sent straight to the node; the seller's balance must rise by every
/// payment. A payment's latency runs from the start to its transaction's receipt.
async fn bare_settlement_floor(
    devnet: &Devnet,
    rpc_url: &str,
    signer_index: usize,
    payments: &[v2::PaymentPayload],
    pay_to: Address,
) -> Result<Sample, BenchError> {
    let signer = devnet
        .signer(signer_index)
        .cloned()
        .ok_or_else(|| setup("the devnet has too few accounts"))?;
    let from = alloy::signers::Signer::address(&signer);
    let provider = alloy::providers::ProviderBuilder::new()
        .wallet(alloy::network::EthereumWallet::from(signer))
        .connect_http(rpc_url.parse().map_err(setup)?);
    let multicall3 = devnet.state().multicall3;
    let before = balance(devnet, pay_to).await?;
    let started = Instant::now();
    let mut nonce = provider.get_transaction_count(from).await.map_err(setup)?;
    let chain_id = devnet.state().chain_id;
    let gas_price = provider.get_gas_price().await.map_err(setup)?;
    let mut pending = Vec::new();
    for chunk in payments.chunks(BATCH_ITEMS) {
        let calls: Vec<_> = chunk
            .iter()
            .filter_map(exact)
            .map(|p| {
                call3(
                    ARC_USDC,
                    transfer_with_authorization_calldata(&p.authorization, &p.signature).to_vec(),
                )
            })
            .collect();
        let data = IMulticall3::aggregate3Call { calls }.abi_encode();
        let tx = TransactionRequest::default()
            .with_from(from)
            .with_to(multicall3)
            .with_input(data)
            .with_nonce(nonce)
            .with_chain_id(chain_id)
            .with_gas_limit(60_000 * chunk.len() as u64 + 100_000)
            .with_gas_price(gas_price * 2);
        nonce += 1;
        let sent = provider.send_transaction(tx).await.map_err(setup)?;
        pending.push((chunk.len(), sent));
    }
    let mut latencies = Vec::with_capacity(payments.len());
    for (count, sent) in pending {
        let receipt = sent.get_receipt().await.map_err(setup)?;
        if receipt.status() {
            let at = started.elapsed().as_micros() as u64;
            latencies.extend(std::iter::repeat_n(at, count));
        }
    }
    let elapsed = started.elapsed();
    let moved = balance(devnet, pay_to).await?.saturating_sub(before);
    let amount = payments
        .first()
        .and_then(exact)
        .map(|p| p.authorization.value)
        .unwrap_or_default();
    let settled = if amount.is_zero() {
        0
    } else {
        (moved / amount).to::<u64>() as usize
    };
    latencies.truncate(settled);
    let failed = (payments.len() - latencies.len()) as u64;
    Ok(Sample::from_latencies(latencies, failed, elapsed))
}

async fn balance(devnet: &Devnet, who: Address) -> Result<U256, BenchError> {
    let token = IFiatToken::new(ARC_USDC, devnet.admin_provider().clone());
    token.balanceOf(who).call().await.map_err(setup)
}

/// Runs the facilitator benchmark.
pub async fn run(options: Options, counts: SettleCounts) -> Result<Report, BenchError> {
    super::tools::ensure_installed()?;
    let cores = Cores::pin_this_process();
    let work = WorkDir::new("facilitator")?;
    progress("starting the devnet");
    let devnet = Devnet::start(DevnetConfig {
        accounts: 10,
        ..DevnetConfig::default()
    })
    .await?;
    let rpc_url = match options.rpc_latency {
        Some(latency) => super::relay::start(devnet.rpc_url(), latency).await?,
        None => devnet.rpc_url().to_owned(),
    };
    let mut state = devnet.state().clone();
    state.rpc_url = rpc_url.clone();
    let devnet_file = work.path().join("devnet.json");
    state.write(&devnet_file).map_err(setup)?;
    let settlement_address = state
        .accounts
        .last()
        .map(|a| a.address)
        .ok_or_else(|| setup("the devnet has no accounts"))?;
    let pay_to = state.accounts.get(2).map(|a| a.address).unwrap_or_default();

    progress("starting the facilitators (single, batched, mirrored)");
    let batch = format!("[batch]\nenabled = true\nmax_wait_ms = 25\nmax_items = {BATCH_ITEMS}\n");
    let mirror = "[mirror]\nenabled = true\n";
    let facilitators = Facilitators {
        single: start_facilitator(
            &cores,
            &work,
            &devnet_file,
            "facilitator-single",
            "[batch]\nenabled = false\n",
        )
        .await?,
        batched: start_facilitator(&cores, &work, &devnet_file, "facilitator-batched", &batch).await?,
        mirrored: start_facilitator(&cores, &work, &devnet_file, "facilitator-mirrored", mirror).await?,
    };
    let buyers = payments::buyers(&devnet, 64, 1_000_000_000).await?;
    let req = requirement(&state.network, pay_to, 1_000);
    let pool = payments::sign(&buyers, &req, None, 256).await?;
    let verify_bodies: Vec<String> = pool.iter().map(|p| verify_body(p, &req)).collect();
    let bare_bodies: Vec<String> = pool
        .iter()
        .enumerate()
        .filter_map(|(i, p)| bare_verify_call(p, state.multicall3, settlement_address, i))
        .collect();

    // Each read series must answer what it claims before it is timed.
    let http = reqwest::Client::new();
    let probe = |url: String, body: String| {
        let http = http.clone();
        async move {
            let answer: serde_json::Value = http
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map_err(setup)?
                .json()
                .await
                .map_err(setup)?;
            Ok::<_, BenchError>(answer)
        }
    };
    let answer = probe(rpc_url.clone(), bare_bodies.first().cloned().unwrap_or_default()).await?;
    if answer.get("result").is_none() {
        return Err(setup(format!("the bare verify call failed: {answer}")));
    }
    let answer = probe(
        format!("http://{}/verify", facilitators.single.1),
        verify_bodies.first().cloned().unwrap_or_default(),
    )
    .await?;
    if answer["isValid"] != serde_json::Value::Bool(true) {
        return Err(setup(format!("a bench payment does not verify: {answer}")));
    }

    let mirrored_url = format!("http://{}/verify", facilitators.mirrored.1);
    warm_mirror(
        &http,
        &mirrored_url,
        &facilitators.mirrored.1,
        &verify_bodies,
        buyers.len(),
    )
    .await?;

    let mut series: HashMap<&str, Series> = HashMap::new();
    const BARE: &str = "bare chain calls of a verify (eth_call)";
    const VERIFY: &str = "verify, mirror off (HTTP)";
    const MIRRORED: &str = "verify, chain-state mirror (HTTP)";
    const SINGLE: &str = "settle, one transaction each (HTTP)";
    const BATCHED: &str = "settle, batched (HTTP)";
    const FLOOR: &str = "bare floor: the same multicall txs, direct";
    for name in [BARE, VERIFY, MIRRORED, SINGLE, BATCHED, FLOOR] {
        series.insert(name, Series::new(name));
    }
    let verify_url = format!("http://{}/verify", facilitators.single.1);
    // wrk posting a pool of JSON bodies round and round.
    let post_pool = |url: &str, bodies: &[String]| {
        super::wrk::run(
            &cores,
            work.path(),
            &super::wrk::WrkJob {
                url,
                connections: options.connections,
                duration: options.duration,
                method: "POST",
                headers: &[("content-type", "application/json")],
                bodies,
                expect_402: false,
            },
        )
    };
    for round in 0..options.rounds {
        progress(format!("read round {}/{}", round + 1, options.rounds));
        push(&mut series, BARE, post_pool(&rpc_url, &bare_bodies)?);
        push(&mut series, VERIFY, post_pool(&verify_url, &verify_bodies)?);
        push(&mut series, MIRRORED, post_pool(&mirrored_url, &verify_bodies)?);
    }
    for round in 0..options.rounds {
        progress(format!("settlement round {}/{}", round + 1, options.rounds));
        let singles = payments::sign(&buyers, &req, None, counts.single).await?;
        let bodies = singles.iter().map(|p| verify_body(p, &req)).collect();
        let sample = drive(
            &cores,
            work.path(),
            &settle_job(&facilitators.single.1, options.connections, bodies),
        )
        .await?;
        push(&mut series, SINGLE, sample);
        let batched = payments::sign(&buyers, &req, None, counts.batch).await?;
        let bodies = batched.iter().map(|p| verify_body(p, &req)).collect();
        let sample = drive(
            &cores,
            work.path(),
            &settle_job(&facilitators.batched.1, BATCH_CONNECTIONS, bodies),
        )
        .await?;
        push(&mut series, BATCHED, sample);
        let direct = payments::sign(&buyers, &req, None, counts.batch).await?;
        let sample = bare_settlement_floor(&devnet, &rpc_url, 3, &direct, pay_to).await?;
        push(&mut series, FLOOR, sample);
    }
    drop(facilitators);

    let mut report = Report::default();
    report.setup.push(cores.describe());
    report.setup.push(format!(
        "{} rounds; reads {} connections × {:?} (wrk); settlements {} single, {} batched ({} per batch; our driver, 256 connections single, {} batched)",
        options.rounds, options.connections, options.duration, counts.single, counts.batch, BATCH_ITEMS, BATCH_CONNECTIONS
    ));
    report.setup.push(match options.rpc_latency {
        Some(l) => format!("every JSON-RPC call delayed {l:?} by a relay"),
        None => "JSON-RPC straight to anvil".into(),
    });
    let mut take = |name: &str| series.remove(name).unwrap_or_else(|| Series::new(name));
    for name in [BARE, VERIFY, MIRRORED, SINGLE, BATCHED, FLOOR] {
        report.add(take(name));
    }
    report.compare(VERIFY, BARE);
    report.compare(MIRRORED, BARE);
    report.compare(MIRRORED, VERIFY);
    report.compare(BATCHED, FLOOR);
    report.compare(BATCHED, SINGLE);
    Ok(report)
}

/// Verifies one payment of every buyer at the mirrored facilitator, then waits until its mirror answers them
/// (every buyer and the seller loaded, and a verify counted as answered from the mirror).
async fn warm_mirror(
    http: &reqwest::Client,
    verify_url: &str,
    address: &str,
    bodies: &[String],
    buyers: usize,
) -> Result<(), BenchError> {
    progress("warming the mirror");
    let counter = |text: &str, name: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        for body in bodies.iter().take(buyers) {
            let response = http
                .post(verify_url)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .map_err(setup)?;
            let answer: serde_json::Value = response.json().await.map_err(setup)?;
            if answer["isValid"] != serde_json::Value::Bool(true) {
                return Err(setup(format!(
                    "a bench payment does not verify at the mirrored facilitator: {answer}"
                )));
            }
        }
        let metrics = http
            .get(format!("http://{address}/metrics"))
            .send()
            .await
            .map_err(setup)?
            .text()
            .await
            .map_err(setup)?;
        let loads: u64 = metrics
            .lines()
            .filter(|l| l.starts_with("facilitator_mirror_events_total{") && l.contains("event=\"load\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        let from_mirror = counter(&metrics, "facilitator_verify_source_total{source=\"mirror\"}");
        if loads > buyers as u64 && from_mirror >= buyers as u64 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(setup(format!(
                "the mirror did not warm up in 30 s ({loads} loads, {from_mirror} verifies answered from it)"
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn push(series: &mut HashMap<&str, Series>, name: &str, sample: Sample) {
    if let Some(s) = series.get_mut(name) {
        s.samples.push(sample);
    }
}
