//! `nerdcabal treasury …`: create an organisation's Treasury, show it and its policy, propose a payment from it,
//! and (owners) approve, revoke or execute a proposal. Every subcommand takes `--treasury 0x…` (else
//! `[wallet] treasury` of `--config`), `--devnet STATE` (its RPC, and its TreasuryFactory for `create`) and
//! `--json` (one object: `address` for create; `proposal_id`, `state` — `executed | pending_approval | expired |
//! cancelled` —, `approvals`, `required`, `transaction` for proposals; `error` and `message` on failure).
//! Keys: `propose` and `execute` send with the buyer's key (`--key-file`, `[wallet] key_file`,
//! `NERDCABAL_BUYER_KEY`, the devnet buyer) — a spender; `approve` and `revoke` with `--key-file` — an owner;
//! `create` with `--key-file` (any funded account; on a devnet its deployer, account 0, by default).
//! Without a treasury address, a `[treasury]` section in `--config` selects local custody (`custody_for`): the
//! agent's own key pays under the policy in the spend ledger (`--ledger`), owners approve with EIP-712
//! signatures of their `--key-file`.
//!
//! Exit codes (those of `nerdcabal pay`): 0 done — a proposal waiting for approval is done too
//! (`pending_approval`); 2 configuration or usage (bad flags, no key, a key that is not a spender or owner,
//! an unknown proposal or one in the wrong state); 3 refused by the treasury's policy (`per_tx_cap`,
//! `daily_cap`, `payee_allow_list`, …); 6 the chain could not be reached or failed.

use std::io::Write;
use std::path::PathBuf;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use contracts::bindings::Treasury;
use serde_json::json;

use crate::buyer::buyer_config::{self, BuyerConfig, BuyerFlags, DevState};
use crate::buyer::pay_command::exit;
use crate::buyer::spend_ledger::SpendLedger;
use crate::compliance::compliance_config::ComplianceSection;
use crate::compliance::payment_check::PaymentScreen;
use crate::treasury::create::{self, DEFAULT_PROPOSAL_TTL_SECONDS, TreasurySpec};
use crate::treasury::custody::{Custody, CustodyError, PaymentProposal, ProposalStatus, TreasuryStatus};
use crate::treasury::local_custody::LocalCustody;
use crate::treasury::onchain_custody::OnChainCustody;
use crate::treasury::onchain_revert::custody_error;

/// What to do.
#[derive(Debug, Clone)]
pub enum TreasuryAction {
    Create {
        owners: Vec<String>,
        threshold: u64,
        spenders: Vec<String>,
        daily: String,
        per_tx: String,
        approval_above: String,
        proposal_ttl_seconds: Option<u64>,
        /// The factory (else the devnet's).
        factory: Option<Address>,
    },
    Status,
    Policy,
    Propose {
        to: Address,
        amount: String,
        memo: String,
    },
    Approve(u64),
    Revoke(u64),
    Execute(u64),
    /// One proposal as it stands.
    Show(u64),
}

#[derive(Debug, Clone)]
pub struct TreasuryOptions {
    pub action: TreasuryAction,
    pub treasury: Option<Address>,
    pub devnet: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Spend ledger URL, for local custody.
    pub ledger: Option<String>,
    pub json: bool,
}

/// Why the command stopped, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Custody(#[from] CustodyError),
}

impl CommandError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CommandError::Config(_) => exit::CONFIG,
            CommandError::Custody(CustodyError::Refused { .. }) => exit::OVER_BUDGET,
            CommandError::Custody(CustodyError::Compliance { .. }) => exit::COMPLIANCE,
            CommandError::Custody(CustodyError::Chain(_)) => exit::NETWORK,
            CommandError::Custody(_) => exit::CONFIG,
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            CommandError::Config(message) => json!({"error": "config_error", "message": message}),
            CommandError::Custody(e) => e.to_json(),
        }
    }
}

fn config(message: impl std::fmt::Display) -> CommandError {
    CommandError::Config(message.to_string())
}

/// Where the treasury is and which chain it is on, from flags, the config file and the devnet state file.
pub struct TreasurySettings {
    pub rpc_url: String,
    pub treasury: Option<Address>,
    pub devnet: Option<DevState>,
    usdc: Address,
    ledger_url: String,
    compliance: ComplianceSection,
    flags: BuyerFlags,
}

impl TreasurySettings {
    pub fn resolve(options: &TreasuryOptions) -> Result<Self, CommandError> {
        let flags = BuyerFlags {
            config: options.config.clone(),
            key_file: options.key_file.clone(),
            devnet: options.devnet.clone(),
            ledger: options.ledger.clone(),
            ..BuyerFlags::default()
        };
        let file = buyer_config::read_file(&flags).map_err(config)?;
        let devnet = buyer_config::read_devnet(&flags, &file).map_err(config)?;
        let (rpc_url, _, usdc) = buyer_config::chain_of(devnet.as_ref(), &file);
        let ledger_url = buyer_config::ledger_of(&flags, &|name| std::env::var(name).ok(), &file);
        Ok(TreasurySettings {
            rpc_url,
            treasury: options.treasury.or(file.wallet.treasury),
            devnet,
            usdc,
            ledger_url,
            compliance: file.compliance,
            flags,
        })
    }

    /// The compliance screen every payment out of the treasury passes (the `[compliance]` section on this
    /// chain, decisions recorded in the spend ledger).
    async fn payment_screen(&self) -> Result<PaymentScreen, CommandError> {
        let ledger = SpendLedger::open(&self.ledger_url).await.map_err(config)?;
        PaymentScreen::for_section(&self.compliance, &self.rpc_url, self.usdc, ledger, &|name| {
            std::env::var(name).ok()
        })
        .await
        .map_err(|e| config(format!("[compliance]: {e}")))
    }

    /// The buyer's key, as `pay` finds it (it must be a local key: it sends transactions).
    fn buyer_key(&self) -> Result<PrivateKeySigner, CommandError> {
        let buyer = BuyerConfig::resolve(&self.flags, |name| std::env::var(name).ok()).map_err(config)?;
        buyer
            .local_key
            .ok_or_else(|| config("the treasury commands need a local key (--key-file or [wallet] key_file)"))
    }

    /// The key in `--key-file` (an owner's, or the creator's).
    fn key_file(&self, what: &str) -> Result<PrivateKeySigner, CommandError> {
        let path = self
            .flags
            .key_file
            .as_ref()
            .ok_or_else(|| config(format!("{what} needs --key-file")))?;
        let text = std::fs::read_to_string(path).map_err(|e| config(format!("{}: {e}", path.display())))?;
        buyer_config::parse_key("key_file", &text).map_err(config)
    }
}

/// The custody the settings name: on chain when a treasury address is set (`sender` proposes and executes),
/// else local custody when the configuration has a `[treasury]` section — the agent's own key (`[wallet]
/// key_file`, `NERDCABAL_BUYER_KEY`, the devnet buyer; `--key-file` too unless it is an owner's, `owner_key`)
/// pays under the policy in the spend ledger.
pub async fn custody_for(
    settings: &TreasurySettings,
    sender: Option<PrivateKeySigner>,
    owner_key: bool,
) -> Result<Box<dyn Custody>, CommandError> {
    if let Some(treasury) = settings.treasury {
        let custody = OnChainCustody::new(&settings.rpc_url, treasury, sender)?;
        return Ok(Box::new(custody.with_compliance(settings.payment_screen().await?)));
    }
    let flags = BuyerFlags {
        key_file: if owner_key {
            None
        } else {
            settings.flags.key_file.clone()
        },
        ..settings.flags.clone()
    };
    let buyer = BuyerConfig::resolve(&flags, |name| std::env::var(name).ok()).map_err(config)?;
    if buyer.treasury.is_none() {
        return Err(config(
            "no treasury: pass --treasury 0x…, set [wallet] treasury, or give --config a [treasury] section",
        ));
    }
    let ledger = SpendLedger::open(&buyer.ledger_url).await.map_err(config)?;
    let screen = PaymentScreen::for_buyer(&buyer, ledger.clone(), &|name| std::env::var(name).ok())
        .await
        .map_err(|e| config(format!("[compliance]: {e}")))?;
    Ok(Box::new(LocalCustody::open(&buyer, ledger)?.with_compliance(screen)))
}

fn amount(flag: &str, text: &str) -> Result<U256, CommandError> {
    protocol::money::parse_price(text, 6).map_err(|e| config(format!("{flag}: {e}")))
}

fn addresses(flag: &str, items: &[String]) -> Result<Vec<Address>, CommandError> {
    items
        .iter()
        .flat_map(|item| item.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse()
                .map_err(|_| config(format!("{flag}: `{item}` is not an address")))
        })
        .collect()
}

/// Runs the command; returns the exit code.
pub async fn run(options: TreasuryOptions, stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    let json = options.json;
    match execute(options).await {
        Ok(output) => {
            let _ = writeln!(stdout, "{}", if json { output.json.to_string() } else { output.text });
            exit::OK
        }
        Err(e) => {
            if json {
                let _ = writeln!(stdout, "{}", e.to_json());
            } else {
                let reason = match &e {
                    CommandError::Config(_) => "config_error",
                    CommandError::Custody(c) => c.reason(),
                };
                let _ = writeln!(stderr, "error ({reason}): {e}");
            }
            e.exit_code()
        }
    }
}

struct Output {
    json: serde_json::Value,
    text: String,
}

fn proposal_output(status: &ProposalStatus) -> Output {
    let mut text = format!(
        "proposal {}: {} ({} of {} approvals) — {} atomic to {}",
        status.proposal_id,
        status.state.as_str(),
        status.approvals,
        status.required,
        status.amount,
        status.to
    );
    if let Some(tx) = &status.transaction {
        text.push_str(&format!("\ntransaction {tx}"));
    }
    Output {
        json: serde_json::to_value(status).unwrap_or_default(),
        text,
    }
}

fn status_output(status: &TreasuryStatus) -> Output {
    let text = format!(
        "treasury {} ({})\ntoken {}  balance {} atomic\nowners {} of {}: {:?}\nspenders {:?}\n\
         remaining today {}\nproposals {}",
        status.address,
        status.mode,
        status.token,
        status.balance,
        status.threshold,
        status.owners.len(),
        status.owners,
        status.spenders,
        status.remaining_today.as_deref().unwrap_or("unlimited"),
        status.proposals
    );
    Output {
        json: serde_json::to_value(status).unwrap_or_default(),
        text,
    }
}

async fn execute(options: TreasuryOptions) -> Result<Output, CommandError> {
    let settings = TreasurySettings::resolve(&options)?;
    match options.action {
        TreasuryAction::Create {
            owners,
            threshold,
            spenders,
            daily,
            per_tx,
            approval_above,
            proposal_ttl_seconds,
            factory,
        } => {
            let spec = TreasurySpec {
                owners: addresses("--owners", &owners)?,
                threshold,
                spenders: addresses("--spenders", &spenders)?,
                per_tx: amount("--per-tx", &per_tx)?,
                daily: amount("--daily", &daily)?,
                approval_above: amount("--approval-above", &approval_above)?,
                proposal_ttl_seconds: proposal_ttl_seconds.unwrap_or(DEFAULT_PROPOSAL_TTL_SECONDS),
            };
            let factory = factory
                .or(settings
                    .devnet
                    .as_ref()
                    .and_then(|d| d.contracts)
                    .map(|c| c.treasury_factory))
                .ok_or_else(|| config("no TreasuryFactory: pass --factory or --devnet"))?;
            let creator = match (&settings.flags.key_file, &settings.devnet) {
                (None, Some(devnet)) => devnet
                    .accounts
                    .first()
                    .and_then(|a| a.private_key)
                    .and_then(|k| PrivateKeySigner::from_bytes(&k).ok())
                    .ok_or_else(|| config("the devnet state file lists no deployer key; pass --key-file"))?,
                _ => settings.key_file("create")?,
            };
            let address = create::create(&settings.rpc_url, factory, &creator, &spec).await?;
            Ok(Output {
                json: json!({"address": address, "factory": factory, "owners": spec.owners,
                    "threshold": spec.threshold, "spenders": spec.spenders}),
                text: address.to_checksum(None),
            })
        }
        TreasuryAction::Status => Ok(status_output(
            &custody_for(&settings, None, false).await?.status().await?,
        )),
        TreasuryAction::Policy => policy(&settings).await,
        TreasuryAction::Propose { to, amount: text, memo } => {
            let proposal = PaymentProposal {
                to,
                amount: amount("--amount", &text)?,
                memo,
            };
            let sender = settings.treasury.map(|_| settings.buyer_key()).transpose()?;
            let custody = custody_for(&settings, sender, false).await?;
            Ok(proposal_output(&custody.propose(&proposal).await?))
        }
        TreasuryAction::Approve(id) => {
            let owner = settings.key_file("approve")?;
            Ok(proposal_output(
                &custody_for(&settings, None, true).await?.approve(id, &owner).await?,
            ))
        }
        TreasuryAction::Revoke(id) => {
            let owner = settings.key_file("revoke")?;
            Ok(proposal_output(
                &custody_for(&settings, None, true).await?.revoke(id, &owner).await?,
            ))
        }
        TreasuryAction::Execute(id) => {
            let sender = settings.treasury.map(|_| settings.buyer_key()).transpose()?;
            let custody = custody_for(&settings, sender, false).await?;
            Ok(proposal_output(&custody.execute(id).await?))
        }
        TreasuryAction::Show(id) => Ok(proposal_output(
            &custody_for(&settings, None, false).await?.proposal(id).await?,
        )),
    }
}

/// The rules the contract enforces, as it reports them.
async fn policy(settings: &TreasurySettings) -> Result<Output, CommandError> {
    let treasury = settings
        .treasury
        .ok_or_else(|| config("no treasury: pass --treasury 0x… or set [wallet] treasury"))?;
    let url = url::Url::parse(&settings.rpc_url).map_err(config)?;
    let provider = alloy::providers::ProviderBuilder::new().connect_http(url);
    let t = Treasury::new(treasury, &provider);
    let policy = t.policy().call().await.map_err(|e| custody_error(&e))?;
    let remaining = t
        .remainingDailyAllowance()
        .call()
        .await
        .map_err(|e| custody_error(&e))?;
    let usd = |v: U256| protocol::money::format_usd(v, 6);
    let document = json!({
        "treasury": treasury,
        "per_tx_cap": policy.perTxLimit.to_string(),
        "daily_cap": policy.dailyLimit.to_string(),
        // The first amount that needs M approvals.
        "approval_threshold": policy.approvalThreshold.to_string(),
        "proposal_ttl_seconds": policy.proposalTtl,
        "payee_allow_list": policy.allowListEnabled,
        "remaining_today": remaining.to_string(),
    });
    let text = format!(
        "per_tx_cap {}\ndaily_cap {} ({} left today)\nneeds approval from {}\nproposal TTL {} s\nallow-list {}",
        usd(policy.perTxLimit),
        usd(policy.dailyLimit),
        usd(remaining),
        usd(policy.approvalThreshold),
        policy.proposalTtl,
        if policy.allowListEnabled { "on" } else { "off" }
    );
    Ok(Output { json: document, text })
}
