//! The proxy's configuration file (`proxy.toml`) as written: listeners, the facilitator link, the defaults
//! every priced route inherits, limits, the access-token keys, trusted proxies, optional TLS, and the
//! `[[route]]` list. Parsing is strict (unknown keys are refused); turning routes into a matchable table is
//! [`crate::route_table`]'s job. Environment variables override the secrets so they need not sit in the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::client_ip::TrustedProxies;

use serde::Deserialize;

/// Env: the facilitator API key, instead of `[facilitator] api_key`.
pub const ENV_FACILITATOR_API_KEY: &str = "NERDCABAL_PROXY_FACILITATOR_KEY";
/// Env: the one secret that signs and verifies access tokens, instead of `access_token_secret(s)`.
pub const ENV_ACCESS_TOKEN_SECRET: &str = "NERDCABAL_PROXY_TOKEN_SECRET";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid proxy configuration: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Where buyers connect. Loopback unless told otherwise.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// `/metrics` and `/health`, kept off the public listener.
    #[serde(default = "default_admin_listen")]
    pub admin_listen: SocketAddr,
    pub facilitator: FacilitatorLinkConfig,
    #[serde(default)]
    pub defaults: RouteDefaults,
    /// What to do with a request no route matches.
    #[serde(default)]
    pub unmatched: Unmatched,
    /// Upstream for unmatched requests when `unmatched = "pass"`.
    #[serde(default)]
    pub unmatched_upstream: Option<String>,
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// Time to the upstream's response headers.
    #[serde(default = "default_upstream_timeout_ms")]
    pub upstream_timeout_ms: u64,
    /// Longest pause while streaming a body from the upstream.
    #[serde(default = "default_upstream_read_timeout_ms")]
    pub upstream_read_timeout_ms: u64,
    /// One HMAC key for access tokens, the older form of `access_token_secrets`: [`ProxyConfig::from_toml`]
    /// moves it into that list, so it is always `None` after loading.
    #[serde(default)]
    pub access_token_secret: Option<String>,
    /// HMAC keys for access tokens (routes with `access`), each at least 32 bytes: the first signs, every one
    /// verifies, so a key can be rotated without logging anyone out.
    #[serde(default)]
    pub access_token_secrets: Vec<String>,
    /// Peers (IPs or CIDRs) whose `X-Forwarded-For` is believed when finding the client's address for the
    /// per-IP limits.
    #[serde(default)]
    pub trusted_proxies: TrustedProxies,
    /// TLS on the public listener; plain HTTP when absent.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// The proxy's state database: every payment's lifecycle and stored answers, and call-window counts.
    /// A `sqlite://…` or `postgres://…` URL (PostgreSQL for replicas sharing payments), a file path, or
    /// `":memory:"` (nothing survives a restart). Absent: `proxy-state.db` under the user's state directory.
    #[serde(default)]
    pub state_database: Option<String>,
    /// Paid answers up to this size are stored and sent again, unchanged, to a resend of their payment.
    #[serde(default = "default_replay_body_limit")]
    pub replay_body_limit: usize,
    /// Collapse repeated slashes in request paths before matching (`//a` is `/a`).
    #[serde(default = "default_true")]
    pub merge_slashes: bool,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Bounds and batching of `settle = "deferred"` routes.
    #[serde(default)]
    pub deferred: DeferredConfig,
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacilitatorLinkConfig {
    /// A remote facilitator's base URL.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub api_key: Option<String>,
    /// Per call to the remote facilitator.
    #[serde(default = "default_facilitator_timeout_ms")]
    pub timeout_ms: u64,
    /// Run the facilitator engine inside the proxy instead.
    #[serde(default)]
    pub embedded: bool,
    /// The embedded facilitator's own TOML (networks, keys, database, batch); env overrides apply.
    #[serde(default)]
    pub config: Option<String>,
}

/// `[tls]`: PEM files, re-read on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDefaults {
    pub network: Option<String>,
    pub asset: Option<String>,
    pub pay_to: Option<String>,
    pub max_timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmatched {
    /// 404 with a JSON reason.
    #[default]
    Refuse,
    /// Forward untouched to `unmatched_upstream`.
    Pass,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettleTiming {
    /// Run the upstream first; settle only if it answered < 400.
    #[default]
    After,
    /// Settle first (expensive work), then run the upstream.
    Before,
    /// Verify, reserve the payment within the `[deferred]` bounds, serve at once, and settle in the
    /// background in batches; over a bound (or for a refused payer) the request is served as `after`.
    Deferred,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests per second per client IP (0: off).
    #[serde(default)]
    pub per_ip_per_second: u32,
    /// Paid requests per second per payer (0: off).
    #[serde(default)]
    pub per_payer_per_second: u32,
}

/// A price as an amount of the asset (dollars for USDC): `"$0.01"`, `"0.01"`, `"5"`, `5` or `0.5` — never
/// atomic units (those are `price_atomic`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PriceConfig {
    Text(String),
    Integer(i64),
    Float(f64),
}

impl PriceConfig {
    /// The amount as decimal text for [`protocol::money::parse_units`] (`5` → `"5"`, `0.5` → `"0.5"`).
    pub fn units_text(&self) -> Result<String, String> {
        match self {
            PriceConfig::Text(text) => Ok(text.clone()),
            PriceConfig::Integer(n) => Ok(n.to_string()),
            // `Display` for f64 prints the shortest decimal that reads back the same, never an exponent.
            PriceConfig::Float(x) if x.is_finite() => Ok(x.to_string()),
            PriceConfig::Float(x) => Err(format!("`{x}` is not an amount")),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    /// One payment buys this many seconds of access.
    #[serde(default)]
    pub seconds: Option<u64>,
    /// One payment buys this many calls.
    #[serde(default)]
    pub calls: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// A name for logs, metrics and access tokens; the path pattern when absent.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    /// `/literal/:param/*` — `:x` one segment, `*` the rest.
    pub path: String,
    /// Empty: every method.
    #[serde(default)]
    pub methods: Vec<String>,
    pub upstream: String,
    /// Path sent upstream, with `:param` and `*` filled from the match.
    #[serde(default)]
    pub rewrite: Option<String>,
    /// An amount of the asset (`"$0.01"`, `"0.01"`, `5` = five dollars of USDC).
    #[serde(default)]
    pub price: Option<PriceConfig>,
    /// The price in the asset's atomic units (`10000` = $0.01 of USDC), instead of `price`.
    #[serde(default)]
    pub price_atomic: Option<u64>,
    #[serde(default)]
    pub free: bool,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub settle: SettleTiming,
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub asset: Option<String>,
    #[serde(default)]
    pub pay_to: Option<String>,
    #[serde(default)]
    pub max_timeout_seconds: Option<u64>,
    /// Requests per second per client IP on this route.
    #[serde(default)]
    pub rate_limit_per_second: Option<u32>,
    #[serde(default)]
    pub access: Option<AccessConfig>,
}

/// `[deferred]`: how much may be served before it is settled, and how the background settler batches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeferredConfig {
    /// Most one payer (per network and asset) may owe in served, unsettled payments (USDC, `"$1"`).
    #[serde(default = "default_max_unsettled_per_payer")]
    pub max_unsettled_per_payer: PriceConfig,
    /// Most the whole proxy (every replica on its state database) may have served unsettled.
    #[serde(default = "default_max_unsettled_total")]
    pub max_unsettled_total: PriceConfig,
    /// A settlement round starts as soon as this many served payments wait.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// And at the latest this long after the last round.
    #[serde(default = "default_flush_interval_ms")]
    pub flush_interval_ms: u64,
}

impl Default for DeferredConfig {
    fn default() -> Self {
        DeferredConfig {
            max_unsettled_per_payer: default_max_unsettled_per_payer(),
            max_unsettled_total: default_max_unsettled_total(),
            batch_size: default_batch_size(),
            flush_interval_ms: default_flush_interval_ms(),
        }
    }
}

/// The bounds are amounts of USDC (six decimals), whatever the route's network.
pub const DEFERRED_BOUND_DECIMALS: u8 = 6;
/// Most payments one settlement round takes.
pub const MAX_DEFERRED_BATCH: usize = 1024;

/// `[deferred]` checked and in atomic units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeferredSettings {
    pub max_unsettled_per_payer: u64,
    pub max_unsettled_total: u64,
    pub batch_size: usize,
    pub flush_interval: std::time::Duration,
}

impl DeferredConfig {
    /// The bounds in atomic units, or an error naming the key.
    pub fn settings(&self) -> Result<DeferredSettings, ConfigError> {
        let bound = |key: &str, price: &PriceConfig| -> Result<u64, ConfigError> {
            let name = format!("deferred.{key}");
            let units = price
                .units_text()
                .and_then(|text| {
                    protocol::money::parse_units(&text, DEFERRED_BOUND_DECIMALS).map_err(|e| e.to_string())
                })
                .map_err(|e| ConfigError::invalid(&name, e))?;
            let units = u64::try_from(units).map_err(|_| ConfigError::invalid(&name, "is too large"))?;
            if units == 0 {
                return Err(ConfigError::invalid(&name, "must be above zero"));
            }
            Ok(units)
        };
        let per_payer = bound("max_unsettled_per_payer", &self.max_unsettled_per_payer)?;
        let total = bound("max_unsettled_total", &self.max_unsettled_total)?;
        if total < per_payer {
            return Err(ConfigError::invalid(
                "deferred.max_unsettled_total",
                "must be at least max_unsettled_per_payer",
            ));
        }
        if self.batch_size == 0 || self.batch_size > MAX_DEFERRED_BATCH {
            return Err(ConfigError::invalid(
                "deferred.batch_size",
                format!("must be between 1 and {MAX_DEFERRED_BATCH}"),
            ));
        }
        if self.flush_interval_ms == 0 || self.flush_interval_ms > 60_000 {
            return Err(ConfigError::invalid(
                "deferred.flush_interval_ms",
                "must be between 1 and 60000",
            ));
        }
        Ok(DeferredSettings {
            max_unsettled_per_payer: per_payer,
            max_unsettled_total: total,
            batch_size: self.batch_size,
            flush_interval: std::time::Duration::from_millis(self.flush_interval_ms),
        })
    }
}

fn default_max_unsettled_per_payer() -> PriceConfig {
    PriceConfig::Text("$1".into())
}

fn default_max_unsettled_total() -> PriceConfig {
    PriceConfig::Text("$100".into())
}

fn default_batch_size() -> usize {
    64
}

fn default_flush_interval_ms() -> u64 {
    200
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4021))
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4022))
}

fn default_body_limit() -> usize {
    10 * 1024 * 1024
}

fn default_replay_body_limit() -> usize {
    1024 * 1024
}

fn default_true() -> bool {
    true
}

fn default_upstream_timeout_ms() -> u64 {
    30_000
}

fn default_upstream_read_timeout_ms() -> u64 {
    30_000
}

fn default_facilitator_timeout_ms() -> u64 {
    15_000
}

impl ProxyConfig {
    /// Reads and parses `path`, then applies the environment overrides.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, |name| std::env::var(name).ok())
    }

    pub fn from_toml(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config: ProxyConfig = toml::from_str(text)?;
        if let Some(key) = env(ENV_FACILITATOR_API_KEY) {
            config.facilitator.api_key = Some(key);
        }
        config.access_token_secrets = token_secrets(&mut config, env(ENV_ACCESS_TOKEN_SECRET))?;
        match (&config.facilitator.url, config.facilitator.embedded) {
            (Some(_), true) => {
                return Err(ConfigError::invalid(
                    "facilitator",
                    "set either `url` or `embedded = true`, not both",
                ));
            }
            (None, false) => {
                return Err(ConfigError::invalid(
                    "facilitator",
                    "set `url` (a remote facilitator) or `embedded = true`",
                ));
            }
            _ => {}
        }
        if let Some(url) = &config.facilitator.url {
            check_http_url("facilitator.url", url)?;
        }
        config.deferred.settings()?;
        if config.unmatched == Unmatched::Pass {
            match &config.unmatched_upstream {
                Some(url) => {
                    check_http_url("unmatched_upstream", url)?;
                }
                None => {
                    return Err(ConfigError::invalid(
                        "unmatched_upstream",
                        "required when unmatched = \"pass\"",
                    ));
                }
            }
        }
        Ok(config)
    }
}

/// The access-token keys from the environment (one key), `access_token_secret` (one key) or
/// `access_token_secrets`, each checked; errors name where the key came from.
fn token_secrets(config: &mut ProxyConfig, from_env: Option<String>) -> Result<Vec<String>, ConfigError> {
    let single = config.access_token_secret.take();
    let list = std::mem::take(&mut config.access_token_secrets);
    if single.is_some() && !list.is_empty() {
        return Err(ConfigError::invalid(
            "access_token_secret",
            "set access_token_secret or access_token_secrets, not both",
        ));
    }
    let (keys, one_key_from) = match (from_env, single) {
        (Some(secret), _) => (vec![secret], Some(ENV_ACCESS_TOKEN_SECRET)),
        (None, Some(secret)) => (vec![secret], Some("access_token_secret")),
        (None, None) => (list, None),
    };
    let name = |i: usize| one_key_from.map_or_else(|| format!("access_token_secrets[{i}]"), str::to_owned);
    for (i, key) in keys.iter().enumerate() {
        if key.len() < 32 {
            return Err(ConfigError::invalid(name(i), "must be at least 32 bytes"));
        }
        if keys[..i].contains(key) {
            return Err(ConfigError::invalid(name(i), "the same key is listed twice"));
        }
    }
    Ok(keys)
}

/// An absolute `http`/`https` URL, or an error naming `key`.
pub fn check_http_url(key: &str, text: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(text).map_err(|e| ConfigError::invalid(key, format!("`{text}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::invalid(key, format!("`{text}` is not an http(s) URL")));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ProxyConfig, ConfigError> {
        ProxyConfig::from_toml(text, |_| None)
    }

    #[test]
    fn a_minimal_file_parses_with_loopback_defaults() {
        let config = parse("[facilitator]\nurl = \"http://127.0.0.1:4020\"\n").unwrap();
        assert_eq!(config.listen, default_listen());
        assert!(config.listen.ip().is_loopback());
        assert!(config.routes.is_empty());
    }

    #[test]
    fn the_facilitator_must_be_named_once() {
        let both = parse("[facilitator]\nurl = \"http://a\"\nembedded = true\n").unwrap_err();
        assert!(both.to_string().starts_with("facilitator:"), "{both}");
        let neither = parse("[facilitator]\n").unwrap_err();
        assert!(neither.to_string().starts_with("facilitator:"), "{neither}");
        let bad = parse("[facilitator]\nurl = \"ftp://x\"\n").unwrap_err();
        assert!(bad.to_string().starts_with("facilitator.url:"), "{bad}");
    }

    #[test]
    fn unknown_keys_and_short_secrets_are_refused() {
        let unknown =
            parse("[facilitator]\nembedded = true\n[[route]]\npath = \"/\"\nupstream = \"http://u\"\nprise = 1\n")
                .unwrap_err();
        assert!(unknown.to_string().contains("prise"), "{unknown}");
        let short = parse("access_token_secret = \"short\"\n[facilitator]\nembedded = true\n").unwrap_err();
        assert!(short.to_string().starts_with("access_token_secret:"), "{short}");
    }

    #[test]
    fn env_overrides_the_secrets() {
        let config = ProxyConfig::from_toml("[facilitator]\nurl = \"http://f\"\n", |name| match name {
            ENV_FACILITATOR_API_KEY => Some("k".into()),
            ENV_ACCESS_TOKEN_SECRET => Some("s".repeat(40)),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.facilitator.api_key.as_deref(), Some("k"));
        assert_eq!(config.access_token_secrets, ["s".repeat(40)]);
        assert_eq!(config.access_token_secret, None);
    }

    #[test]
    fn token_keys_come_as_a_list_or_as_the_one_older_key() {
        let (new, old) = ("n".repeat(32), "o".repeat(32));
        let list = parse(&format!(
            "access_token_secrets = [\"{new}\", \"{old}\"]\n[facilitator]\nembedded = true\n"
        ))
        .unwrap();
        assert_eq!(list.access_token_secrets, [new.clone(), old.clone()]);
        let single = parse(&format!(
            "access_token_secret = \"{old}\"\n[facilitator]\nembedded = true\n"
        ))
        .unwrap();
        assert_eq!(single.access_token_secrets, std::slice::from_ref(&old));
        let both = parse(&format!(
            "access_token_secret = \"{old}\"\naccess_token_secrets = [\"{new}\"]\n[facilitator]\nembedded = true\n"
        ))
        .unwrap_err();
        assert!(both.to_string().starts_with("access_token_secret:"), "{both}");
        let short = parse(&format!(
            "access_token_secrets = [\"{new}\", \"short\"]\n[facilitator]\nembedded = true\n"
        ))
        .unwrap_err();
        assert!(short.to_string().starts_with("access_token_secrets[1]:"), "{short}");
        let twice = parse(&format!(
            "access_token_secrets = [\"{new}\", \"{new}\"]\n[facilitator]\nembedded = true\n"
        ))
        .unwrap_err();
        assert!(twice.to_string().starts_with("access_token_secrets[1]:"), "{twice}");
    }

    #[test]
    fn prices_are_amounts_of_the_asset_in_every_spelling() {
        let route = |price: &str| {
            let text =
                format!("[facilitator]\nembedded = true\n[[route]]\npath = \"/\"\nupstream = \"http://u\"\n{price}\n");
            parse(&text).unwrap().routes.remove(0)
        };
        let text_of = |price: &str| route(price).price.unwrap().units_text().unwrap();
        assert_eq!(text_of("price = \"$0.01\""), "$0.01");
        assert_eq!(text_of("price = 5"), "5");
        assert_eq!(text_of("price = 0.5"), "0.5");
        assert_eq!(text_of("price = 0.01"), "0.01");
        assert_eq!(text_of("price = 0.0000001"), "0.0000001");
        assert_eq!(route("price_atomic = 10000").price_atomic, Some(10_000));
        assert!(PriceConfig::Float(f64::NAN).units_text().is_err());
    }

    #[test]
    fn deferred_bounds_default_to_a_dollar_and_are_checked() {
        let config = parse("[facilitator]\nembedded = true\n").unwrap();
        let settings = config.deferred.settings().unwrap();
        assert_eq!(settings.max_unsettled_per_payer, 1_000_000);
        assert_eq!(settings.max_unsettled_total, 100_000_000);
        assert_eq!(settings.batch_size, 64);
        assert_eq!(settings.flush_interval, std::time::Duration::from_millis(200));
        let custom = parse(
            "[facilitator]\nembedded = true\n[deferred]\nmax_unsettled_per_payer = 0.5\n\
             max_unsettled_total = \"$20\"\nbatch_size = 8\nflush_interval_ms = 50\n\
             [[route]]\npath = \"/\"\nupstream = \"http://u\"\nprice = 1\nsettle = \"deferred\"\n",
        )
        .unwrap();
        assert_eq!(custom.routes[0].settle, SettleTiming::Deferred);
        let settings = custom.deferred.settings().unwrap();
        assert_eq!(
            (settings.max_unsettled_per_payer, settings.max_unsettled_total),
            (500_000, 20_000_000)
        );
        let refused = |section: &str, key: &str| {
            let error = parse(&format!("[facilitator]\nembedded = true\n[deferred]\n{section}\n")).unwrap_err();
            assert!(error.to_string().starts_with(key), "{section}: {error}");
        };
        refused("max_unsettled_per_payer = \"$0\"", "deferred.max_unsettled_per_payer:");
        refused(
            "max_unsettled_per_payer = \"lots\"",
            "deferred.max_unsettled_per_payer:",
        );
        refused(
            "max_unsettled_per_payer = \"0.0000001\"",
            "deferred.max_unsettled_per_payer:",
        );
        refused("max_unsettled_total = \"$0.5\"", "deferred.max_unsettled_total:");
        refused("batch_size = 0", "deferred.batch_size:");
        refused("batch_size = 5000", "deferred.batch_size:");
        refused("flush_interval_ms = 0", "deferred.flush_interval_ms:");
        let unknown = parse("[facilitator]\nembedded = true\n[deferred]\nmax_unsettled = 1\n").unwrap_err();
        assert!(unknown.to_string().contains("max_unsettled"), "{unknown}");
    }

    #[test]
    fn tls_names_two_files() {
        let config = parse("[facilitator]\nembedded = true\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n").unwrap();
        assert_eq!(
            config.tls,
            Some(TlsConfig {
                cert: "c.pem".into(),
                key: "k.pem".into()
            })
        );
        assert!(parse("[facilitator]\nembedded = true\n[tls]\ncert = \"c.pem\"\n").is_err());
    }
}
