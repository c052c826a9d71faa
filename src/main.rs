//! The `nerdcabal` command line: parses arguments and hands each subcommand to the crate that owns it.

use std::path::PathBuf;

use alloy::primitives::U256;
use anyhow::Context;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "nerdcabal",
    version,
    about = "x402 USDC payments on Arc: devnet, facilitator, paywall proxy, buyer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a local Arc devnet: anvil with USDC at 0x3600…0000, Multicall3, and funded dev accounts.
    Devnet {
        /// Chain id (anvil's 31337 by default; 5042002 mirrors Arc testnet).
        #[arg(long, default_value_t = contracts::devnet::DEFAULT_CHAIN_ID)]
        chain_id: u64,
        /// Seconds between blocks; without it every transaction is mined at once.
        #[arg(long)]
        block_time: Option<u64>,
        /// Loopback port for JSON-RPC (0 picks a free one).
        #[arg(long, default_value_t = 8545)]
        port: u16,
        /// How many funded dev accounts.
        #[arg(long, default_value_t = 10)]
        accounts: u32,
        /// USDC per account, in whole USDC.
        #[arg(long, default_value_t = 1_000_000)]
        usdc_per_account: u64,
        /// Write what was made (RPC URL, chain, USDC, accounts with keys) to this JSON file.
        #[arg(long)]
        state_file: Option<PathBuf>,
    },
    /// Run the x402 facilitator: /verify, /settle, /supported over a durable settlement ledger.
    Facilitator {
        /// TOML configuration (networks, keys, database, limits); environment variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Serve the devnet described by this `nerdcabal devnet --state-file` file.
        #[arg(long)]
        devnet: Option<PathBuf>,
        /// Listen on a non-loopback address even with no API key configured (refused otherwise).
        #[arg(long)]
        allow_unauthenticated: bool,
    },
    /// Run the paywall proxy: x402 offers in front of an HTTP API; verify, forward, settle after success.
    Proxy {
        /// TOML configuration (listen, facilitator, defaults, [[route]]s). SIGHUP reloads its routes.
        #[arg(long)]
        config: PathBuf,
        /// Price and (with the embedded facilitator) settle on the devnet described by this state file.
        #[arg(long)]
        devnet: Option<PathBuf>,
    },
    /// The whole local stack on loopback: devnet, facilitator, paywall proxy and a demo API with priced routes.
    Dev {
        /// Write the stack's URLs, prices and funded buyer key as JSON to this file (removed on exit).
        #[arg(long)]
        state_file: Option<PathBuf>,
        #[arg(long, default_value_t = 8545)]
        rpc_port: u16,
        #[arg(long, default_value_t = 4020)]
        facilitator_port: u16,
        #[arg(long, default_value_t = 4021)]
        proxy_port: u16,
        #[arg(long, default_value_t = 4022)]
        admin_port: u16,
        #[arg(long, default_value_t = 4030)]
        api_port: u16,
    },
    /// Call a URL and pay for it (x402) within the spending policy. Body to stdout, receipt to stderr.
    Pay {
        url: String,
        /// HTTP method (POST when -d is given, else GET).
        #[arg(short = 'X', long)]
        method: Option<String>,
        /// Request body.
        #[arg(short = 'd', long = "data")]
        data: Option<String>,
        /// Request header, `Name: value` (repeatable).
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        /// Most this call may cost, e.g. `$0.05`.
        #[arg(long)]
        max: Option<String>,
        /// Print one JSON object (status, body, receipt or error) instead.
        #[arg(long)]
        json: bool,
        /// Pay under this treasury proposal (from an earlier `needs_approval`), now approved by its owners.
        #[arg(long)]
        proposal: Option<u64>,
        #[command(flatten)]
        buyer: BuyerArgs,
    },
    /// Serve the buyer's tools over MCP (stdio by default): quote, x402_fetch, send_payment, balance,
    /// spending_report, budget_status — within the spending policy, with human approval above a threshold.
    Mcp {
        /// Serve streamable HTTP at http://ADDR/mcp instead of stdio (e.g. 127.0.0.1:4040).
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
        /// The bearer token HTTP clients must send (else one is generated for a loopback bind, written to
        /// --http-token-file and printed once; a non-loopback bind needs one).
        #[arg(long, env = "NERDCABAL_MCP_TOKEN", hide_env_values = true)]
        http_token: Option<String>,
        /// Where a generated token is written, mode 0600 (default ~/.nerdcabal/mcp-token).
        #[arg(long)]
        http_token_file: Option<PathBuf>,
        /// Also accept requests whose Origin is this (`https://app.example`), repeatable.
        #[arg(long = "http-allow-origin")]
        http_allow_origins: Vec<String>,
        /// Payments above this need a person's approval, e.g. `$0.02`.
        #[arg(long)]
        approval_threshold: Option<String>,
        /// Largest single payment, e.g. `$0.10`.
        #[arg(long)]
        max_per_request: Option<String>,
        #[command(flatten)]
        buyer: BuyerArgs,
    },
    /// The spend ledger: `reconcile` asks the chain about signed and pending payments.
    Spend {
        #[command(subcommand)]
        command: SpendCommand,
    },
    /// Approve (or --deny) a payment an agent asked to make above the approval threshold; --list shows them.
    Approve {
        id: Option<String>,
        #[arg(long)]
        deny: bool,
        #[arg(long)]
        list: bool,
        /// Spend ledger URL (else NERDCABAL_SPEND_DB, else ~/.nerdcabal/spend.db).
        #[arg(long)]
        ledger: Option<String>,
    },
    /// An organisation's on-chain Treasury: create (through the factory), status, policy, propose a payment,
    /// and (owners) approve, revoke or execute a proposal.
    Treasury {
        #[command(subcommand)]
        command: TreasuryCommand,
        #[command(flatten)]
        common: TreasuryArgs,
    },
    /// Counterparty screening: `screen` an address with every configured source (recorded), list the `audit`.
    Compliance {
        #[command(subcommand)]
        command: ComplianceCommand,
    },
    /// Benchmarks (not tests): print throughput and latency beside a baseline measured in the same run.
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
}

/// Wallet, policy and ledger settings shared by `pay` and `mcp`.
#[derive(Args)]
struct BuyerArgs {
    /// Buyer configuration (TOML: wallet, policy, ledger, rpc_url).
    #[arg(long)]
    config: Option<PathBuf>,
    /// File holding the buyer's private key (else NERDCABAL_BUYER_KEY).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Spend ledger URL (else NERDCABAL_SPEND_DB, else ~/.nerdcabal/spend.db).
    #[arg(long)]
    ledger: Option<String>,
    /// Pay on the devnet of this `nerdcabal dev --state-file` (its network, USDC and buyer key).
    #[arg(long)]
    devnet: Option<PathBuf>,
    /// Daily budget across hosts, e.g. `$5`.
    #[arg(long)]
    daily_budget: Option<String>,
    /// Daily budget per host.
    #[arg(long)]
    host_budget: Option<String>,
    /// Also allow this network (CAIP-2), repeatable.
    #[arg(long = "network")]
    networks: Vec<String>,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

impl BuyerArgs {
    fn flags(
        self,
        approval_threshold: Option<String>,
        max_per_request: Option<String>,
    ) -> agents::buyer::buyer_config::BuyerFlags {
        agents::buyer::buyer_config::BuyerFlags {
            config: self.config,
            key_file: self.key_file,
            ledger: self.ledger,
            devnet: self.devnet,
            approval_threshold,
            max_per_request,
            daily_budget: self.daily_budget,
            per_host_daily_budget: self.host_budget,
            networks: self.networks,
        }
    }
}

/// What every `treasury` subcommand takes.
#[derive(Args)]
struct TreasuryArgs {
    /// The Treasury contract (else `[wallet] treasury` of --config).
    #[arg(long, global = true)]
    treasury: Option<alloy::primitives::Address>,
    /// The devnet of this `nerdcabal dev --state-file` (its RPC and TreasuryFactory).
    #[arg(long, global = true)]
    devnet: Option<PathBuf>,
    /// Buyer configuration (TOML: [wallet] key_file and treasury, rpc_url, devnet).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// The key that sends: an owner's for approve/revoke, the creator's for create, else the spender's.
    #[arg(long, global = true)]
    key_file: Option<PathBuf>,
    /// Spend ledger URL, for local custody (else NERDCABAL_SPEND_DB, else ~/.nerdcabal/spend.db).
    #[arg(long, global = true)]
    ledger: Option<String>,
    /// Print one JSON object instead.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum TreasuryCommand {
    /// Deploy a Treasury through the TreasuryFactory; prints its address.
    Create {
        /// Owner addresses, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        owners: Vec<String>,
        /// Approvals needed (M of the N owners).
        #[arg(long)]
        threshold: u64,
        /// Spender (agent) addresses, comma-separated.
        #[arg(long, value_delimiter = ',')]
        spenders: Vec<String>,
        /// The most that may leave in one UTC day, e.g. `$100`.
        #[arg(long)]
        daily: String,
        /// The most one payment may move, e.g. `$10`.
        #[arg(long)]
        per_tx: String,
        /// Payments above this need M approvals, e.g. `$5`.
        #[arg(long)]
        approval_above: String,
        /// Seconds a proposal stays executable (one day by default).
        #[arg(long)]
        proposal_ttl: Option<u64>,
        /// The factory (else the devnet's).
        #[arg(long)]
        factory: Option<alloy::primitives::Address>,
    },
    /// Owners, threshold, spenders, token, balance, what may still leave today, proposal count.
    Status,
    /// The rules the contract enforces.
    Policy,
    /// Propose a payment (executed at once below the approval amount, else it waits for M approvals).
    Propose {
        #[arg(long)]
        to: alloy::primitives::Address,
        /// e.g. `$2.50`.
        #[arg(long)]
        amount: String,
        #[arg(long, default_value = "")]
        memo: String,
    },
    /// An owner approves a proposal (the approval that reaches M executes it).
    Approve { id: u64 },
    /// An owner withdraws an approval.
    Revoke { id: u64 },
    /// Execute an approved proposal whose execution failed or was deferred.
    Execute { id: u64 },
    /// One proposal as it stands.
    Proposal { id: u64 },
}

#[derive(Subcommand)]
enum SpendCommand {
    /// Settle signed and pending payments from the chain: settled when the authorization was used (or the
    /// transfer mined), unsettled — no longer counted — once it can never settle. `pay` and `mcp` do a cheap
    /// pass of this as they start.
    Reconcile {
        /// Buyer configuration (TOML: ledger, rpc_url, devnet).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Spend ledger URL (else NERDCABAL_SPEND_DB, else ~/.nerdcabal/spend.db).
        #[arg(long)]
        ledger: Option<String>,
        /// The payments are on the devnet of this `nerdcabal dev --state-file` (its RPC).
        #[arg(long)]
        devnet: Option<PathBuf>,
        /// Print one JSON object instead.
        #[arg(long)]
        json: bool,
    },
}

/// Where `compliance` reads its settings: the buyer's configuration, ledger and devnet (no key).
#[derive(Args)]
struct ComplianceArgs {
    /// Buyer configuration (TOML: [compliance], ledger, rpc_url, devnet).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Spend ledger URL, where decisions are recorded (else NERDCABAL_SPEND_DB, else ~/.nerdcabal/spend.db).
    #[arg(long)]
    ledger: Option<String>,
    /// Screen on the devnet of this `nerdcabal dev --state-file` (its RPC and USDC).
    #[arg(long)]
    devnet: Option<PathBuf>,
    /// Print one JSON object instead.
    #[arg(long)]
    json: bool,
}

impl ComplianceArgs {
    fn flags(self) -> (agents::buyer::buyer_config::BuyerFlags, bool) {
        let flags = agents::buyer::buyer_config::BuyerFlags {
            config: self.config,
            ledger: self.ledger,
            devnet: self.devnet,
            ..Default::default()
        };
        (flags, self.json)
    }
}

#[derive(Subcommand)]
enum ComplianceCommand {
    /// Screen one address with every configured source; prints `decision` (clear, blocked, unavailable) and
    /// each source's answer, records it; exit 0 when clear, 8 otherwise.
    Screen {
        address: String,
        #[command(flatten)]
        args: ComplianceArgs,
    },
    /// List recorded screening decisions since a date (YYYY-MM-DD), a time (RFC 3339), Unix seconds or a
    /// duration back from now (24h, 7d).
    Audit {
        #[arg(long, default_value = "24h")]
        since: String,
        #[command(flatten)]
        args: ComplianceArgs,
    },
}

/// What every benchmark takes.
#[derive(clap::Args)]
struct BenchArgs {
    /// Concurrent connections of the read series.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds each read round runs.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Rounds per series, alternating with their baselines (medians and min–max are printed).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Delay every JSON-RPC call by this many milliseconds (a relay in front of anvil), as a remote node would.
    #[arg(long)]
    rpc_latency: Option<u64>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

impl BenchArgs {
    fn options(&self) -> devstack::bench::Options {
        devstack::bench::Options {
            connections: self.connections,
            duration: std::time::Duration::from_secs(self.seconds),
            rounds: self.rounds.max(1),
            rpc_latency: self.rpc_latency.map(std::time::Duration::from_millis),
        }
    }

    fn print(&self, report: &devstack::bench::sample::Report) {
        if self.json {
            println!("{}", report.to_json());
        } else {
            print!("{report}");
        }
    }
}

#[derive(Subcommand)]
enum BenchTarget {
    /// The proxy as its own process on one core: a free route against the upstream direct and nginx, 402
    /// offers, paid requests end to end (single and batched settlement), RSS at 1,000 idle connections.
    Proxy {
        #[command(flatten)]
        args: BenchArgs,
        /// Paid requests per round through the single-transaction proxy.
        #[arg(long, default_value_t = 200)]
        single: usize,
        /// Paid requests per round through the batching proxy.
        #[arg(long, default_value_t = 2000)]
        paid: usize,
    },
    /// The facilitator as its own process on one core: verify against the bare chain calls it replaces, single
    /// and batched settlement against the same multicall transactions sent directly.
    Facilitator {
        #[command(flatten)]
        args: BenchArgs,
        /// Payments per round settled one transaction each.
        #[arg(long, default_value_t = 200)]
        single: usize,
        /// Payments per round settled in batches (and sent directly for the floor).
        #[arg(long, default_value_t = 2000)]
        batch: usize,
    },
    /// The load driver the benchmarks run as a separate process: runs a job file, prints one JSON sample.
    #[command(hide = true)]
    Drive {
        #[arg(long)]
        job: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr: stdout carries command output (and the MCP protocol over stdio).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().command {
        Command::Devnet {
            chain_id,
            block_time,
            port,
            accounts,
            usdc_per_account,
            state_file,
        } => {
            let config = contracts::DevnetConfig {
                chain_id,
                block_time,
                port: (port != 0).then_some(port),
                accounts,
                usdc_per_account: U256::from(usdc_per_account) * U256::from(1_000_000u64),
                ..Default::default()
            };
            contracts::run::run_devnet(config, state_file).await.context("devnet")?;
        }
        Command::Facilitator {
            config,
            devnet,
            allow_unauthenticated,
        } => {
            let mut config = facilitator::config::FacilitatorConfig::load(config.as_deref(), Vec::new())?;
            config.allow_unauthenticated |= allow_unauthenticated;
            if let Some(path) = devnet {
                config.add_devnet(&contracts::DevnetState::read(&path)?)?;
            }
            // `[compliance]`: the agents' screener, on every network the facilitator settles on.
            if let Some(table) = &config.compliance {
                let env = |name: &str| std::env::var(name).ok();
                let screen = agents::compliance::facilitator_screen::FacilitatorScreen::from_table(
                    table,
                    &config.screened_tokens(),
                    &env,
                )
                .await
                .context("[compliance]")?;
                config.screen = Some(std::sync::Arc::new(screen));
            }
            tracing::info!(?config, "starting the facilitator");
            facilitator::service::Facilitator::build(config)
                .await?
                .run(contracts::run::shutdown_signal())
                .await?;
        }
        Command::Dev {
            state_file,
            rpc_port,
            facilitator_port,
            proxy_port,
            admin_port,
            api_port,
        } => {
            let options = devstack::dev_stack::DevOptions {
                state_file,
                rpc_port,
                facilitator_port,
                proxy_port,
                admin_port,
                api_port,
            };
            devstack::dev_stack::run(options, contracts::run::shutdown_signal()).await?;
        }
        Command::Pay {
            url,
            method,
            data,
            headers,
            max,
            json,
            proposal,
            buyer,
        } => {
            let options = agents::buyer::pay_command::PayOptions {
                url,
                method,
                data,
                headers,
                max,
                json,
                proposal,
                timeout: std::time::Duration::from_secs(buyer.timeout),
                buyer: buyer.flags(None, None),
            };
            let code = agents::buyer::pay_command::run(options, &mut std::io::stdout(), &mut std::io::stderr()).await;
            std::process::exit(code);
        }
        Command::Mcp {
            http,
            http_token,
            http_token_file,
            http_allow_origins,
            approval_threshold,
            max_per_request,
            buyer,
        } => {
            let options = agents::mcp::server::McpOptions {
                http,
                http_token,
                http_token_file,
                http_allowed_origins: http_allow_origins,
                timeout: std::time::Duration::from_secs(buyer.timeout),
                buyer: buyer.flags(approval_threshold, max_per_request),
            };
            agents::mcp::server::run(options, contracts::run::shutdown_signal()).await?;
        }
        Command::Approve { id, deny, list, ledger } => {
            let options = agents::buyer::approve_command::ApproveOptions { id, deny, list, ledger };
            let code =
                agents::buyer::approve_command::run(options, &mut std::io::stdout(), &mut std::io::stderr()).await;
            std::process::exit(code);
        }
        Command::Spend {
            command:
                SpendCommand::Reconcile {
                    config,
                    ledger,
                    devnet,
                    json,
                },
        } => {
            let options = agents::buyer::spend_command::ReconcileOptions {
                buyer: agents::buyer::buyer_config::BuyerFlags {
                    config,
                    ledger,
                    devnet,
                    ..Default::default()
                },
                json,
            };
            let code =
                agents::buyer::spend_command::run_reconcile(options, &mut std::io::stdout(), &mut std::io::stderr())
                    .await;
            std::process::exit(code);
        }
        Command::Treasury { command, common } => {
            use agents::treasury::command::{TreasuryAction, TreasuryOptions};
            let action = match command {
                TreasuryCommand::Create {
                    owners,
                    threshold,
                    spenders,
                    daily,
                    per_tx,
                    approval_above,
                    proposal_ttl,
                    factory,
                } => TreasuryAction::Create {
                    owners,
                    threshold,
                    spenders,
                    daily,
                    per_tx,
                    approval_above,
                    proposal_ttl_seconds: proposal_ttl,
                    factory,
                },
                TreasuryCommand::Status => TreasuryAction::Status,
                TreasuryCommand::Policy => TreasuryAction::Policy,
                TreasuryCommand::Propose { to, amount, memo } => TreasuryAction::Propose { to, amount, memo },
                TreasuryCommand::Approve { id } => TreasuryAction::Approve(id),
                TreasuryCommand::Revoke { id } => TreasuryAction::Revoke(id),
                TreasuryCommand::Execute { id } => TreasuryAction::Execute(id),
                TreasuryCommand::Proposal { id } => TreasuryAction::Show(id),
            };
            let options = TreasuryOptions {
                action,
                treasury: common.treasury,
                devnet: common.devnet,
                config: common.config,
                key_file: common.key_file,
                ledger: common.ledger,
                json: common.json,
            };
            let code = agents::treasury::command::run(options, &mut std::io::stdout(), &mut std::io::stderr()).await;
            std::process::exit(code);
        }
        Command::Compliance {
            command: ComplianceCommand::Screen { address, args },
        } => {
            let (buyer, json) = args.flags();
            let options = agents::compliance::command::ScreenOptions { address, json, buyer };
            let code =
                agents::compliance::command::run_screen(options, &mut std::io::stdout(), &mut std::io::stderr()).await;
            std::process::exit(code);
        }
        Command::Compliance {
            command: ComplianceCommand::Audit { since, args },
        } => {
            let (buyer, json) = args.flags();
            let options = agents::compliance::command::AuditOptions { since, json, buyer };
            let code =
                agents::compliance::command::run_audit(options, &mut std::io::stdout(), &mut std::io::stderr()).await;
            std::process::exit(code);
        }
        Command::Proxy { config, devnet } => {
            let devnet = devnet.map(|path| contracts::DevnetState::read(&path)).transpose()?;
            let proxy_config = proxy::config::ProxyConfig::load(&config)?;
            let options = proxy::service::ProxyOptions {
                config_path: Some(config),
                devnet,
                facilitator_config: None,
            };
            proxy::service::Proxy::build(proxy_config, options)
                .await?
                .run(contracts::run::shutdown_signal())
                .await?;
        }
        Command::Bench {
            target: BenchTarget::Proxy { args, single, paid },
        } => {
            let counts = devstack::bench::proxy::PaidCounts { single, batched: paid };
            args.print(&devstack::bench::proxy::run(args.options(), counts).await?);
        }
        Command::Bench {
            target: BenchTarget::Facilitator { args, single, batch },
        } => {
            let counts = devstack::bench::facilitator::SettleCounts { single, batch };
            args.print(&devstack::bench::facilitator::run(args.options(), counts).await?);
        }
        Command::Bench {
            target: BenchTarget::Drive { job },
        } => {
            let sample = devstack::bench::driver::run_file(&job).await?;
            println!("{}", serde_json::to_string(&sample)?);
        }
    }
    Ok(())
}
