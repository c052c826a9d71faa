//! The `[compliance]` section (the same shape in the buyer's and the facilitator's configuration) and the
//! builder of a [`ComplianceScreen`] from it. The token's on-chain blocklist is always consulted; the OFAC
//! list when `ofac_list` (a path or an http(s) URL) is set; Circle's Compliance Engine when its key is set
//! (env `CIRCLE_COMPLIANCE_API_KEY`, else `circle_api_key_file`); the local deny/allow file when
//! `local_list` names one. `advisory` names sources whose *unavailability* does not refuse a payment (their
//! `blocked` still does). `cache_seconds` (default 60) is how long the remote sources' answers (token
//! blocklist, Circle) are reused, `token_blocklist_cache_seconds` and `circle_cache_seconds` set one source's
//! own TTL; the OFAC and local lists are in memory and not cached.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use serde::Deserialize;

use crate::compliance::circle_screening::CircleScreening;
use crate::compliance::decision::{ComplianceScreen, Source};
use crate::compliance::local_list::LocalList;
use crate::compliance::ofac_sdn::{ListLocation, OfacSdn};
use crate::compliance::screener::source_name;
use crate::compliance::token_blocklist::TokenBlocklist;

/// Env: the Circle Compliance Engine API key.
pub const ENV_CIRCLE_COMPLIANCE_KEY: &str = "CIRCLE_COMPLIANCE_API_KEY";
/// How long remote answers are cached unless `cache_seconds` says otherwise.
pub const DEFAULT_CACHE_SECONDS: u64 = 60;
/// How often the OFAC list is reloaded unless `ofac_refresh_seconds` says otherwise (0: never).
pub const DEFAULT_OFAC_REFRESH_SECONDS: u64 = 86_400;
/// How long one source may take to answer.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 10;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceSection {
    /// `SDN_ADVANCED.XML`: a path or an http(s) URL.
    #[serde(default)]
    pub ofac_list: Option<String>,
    #[serde(default)]
    pub ofac_refresh_seconds: Option<u64>,
    /// Circle's API host (`https://api.circle.com` by default).
    #[serde(default)]
    pub circle_base_url: Option<String>,
    /// A file holding the Circle compliance API key (when the env variable is not set).
    #[serde(default)]
    pub circle_api_key_file: Option<PathBuf>,
    /// Circle's chain name for the screened addresses (`ETH` by default: Circle's enum has no Arc).
    #[serde(default)]
    pub circle_chain: Option<String>,
    /// The local deny/allow file.
    #[serde(default)]
    pub local_list: Option<PathBuf>,
    /// Sources whose unavailability does not refuse: `token_blocklist`, `ofac`, `circle`, `local_list`.
    #[serde(default)]
    pub advisory: Vec<String>,
    /// How long remote answers are reused (0: never), unless a source's own setting says otherwise.
    #[serde(default)]
    pub cache_seconds: Option<u64>,
    #[serde(default)]
    pub token_blocklist_cache_seconds: Option<u64>,
    #[serde(default)]
    pub circle_cache_seconds: Option<u64>,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ComplianceConfigError {
    #[error("compliance.{key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error(transparent)]
    LocalList(#[from] crate::compliance::local_list::LocalListError),
}

fn invalid(key: &'static str, message: impl Into<String>) -> ComplianceConfigError {
    ComplianceConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// The chain the token blocklist is read on.
#[derive(Debug, Clone)]
pub struct ScreenChain {
    pub rpc_url: String,
    /// The token whose `isBlacklisted` is asked (USDC).
    pub token: Address,
}

impl ComplianceSection {
    /// Checks the names in `advisory` (a typo must not make a source silently fail-closed or open).
    pub fn validate(&self) -> Result<(), ComplianceConfigError> {
        for name in &self.advisory {
            if !source_name::ALL.contains(&name.as_str()) {
                return Err(invalid(
                    "advisory",
                    format!("`{name}` is not a source (one of {})", source_name::ALL.join(", ")),
                ));
            }
        }
        if let Some(text) = &self.ofac_list {
            ListLocation::parse(text).map_err(|e| invalid("ofac_list", e))?;
        }
        Ok(())
    }

    fn advisory(&self, name: &str) -> bool {
        self.advisory.iter().any(|a| a == name)
    }

    /// The Circle key: env first, then the file.
    fn circle_key(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, ComplianceConfigError> {
        if let Some(key) = env(ENV_CIRCLE_COMPLIANCE_KEY).filter(|k| !k.trim().is_empty()) {
            return Ok(Some(key));
        }
        match &self.circle_api_key_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|k| Some(k.trim().to_owned()))
                .map_err(|e| invalid("circle_api_key_file", format!("{}: {e}", path.display()))),
            None => Ok(None),
        }
    }
}

impl ComplianceScreen {
    /// Builds the screen `section` describes on `chain`; loads the OFAC list once (a failed first load is
    /// logged and the source answers `unavailable` until a load succeeds) and schedules its refresh.
    pub async fn from_section(
        section: &ComplianceSection,
        chain: &ScreenChain,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ComplianceConfigError> {
        Self::from_section_on(section, std::slice::from_ref(chain), env).await
    }

    /// [`Self::from_section`] with the token blocklist of every chain in `chains` (a facilitator serving
    /// several networks: an address blacklisted by any of their tokens is blocked).
    pub async fn from_section_on(
        section: &ComplianceSection,
        chains: &[ScreenChain],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ComplianceConfigError> {
        section.validate()?;
        let timeout = Duration::from_secs(section.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS).max(1));
        let ttl =
            |own: Option<u64>| Duration::from_secs(own.or(section.cache_seconds).unwrap_or(DEFAULT_CACHE_SECONDS));
        let mut sources = Vec::new();
        for chain in chains {
            let token = TokenBlocklist::new(&chain.rpc_url, chain.token).map_err(|e| invalid("rpc_url", e))?;
            sources.push(Source::new(
                Arc::new(token),
                section.advisory(source_name::TOKEN_BLOCKLIST),
                ttl(section.token_blocklist_cache_seconds),
            ));
        }
        if let Some(text) = &section.ofac_list {
            let location = ListLocation::parse(text).map_err(|e| invalid("ofac_list", e))?;
            let ofac = Arc::new(OfacSdn::new(location, timeout).map_err(|e| invalid("ofac_list", e.to_string()))?);
            if let Err(e) = ofac.load().await {
                tracing::warn!(error = %e, "the OFAC SDN list did not load; it answers `unavailable` until it does");
            }
            let refresh = section.ofac_refresh_seconds.unwrap_or(DEFAULT_OFAC_REFRESH_SECONDS);
            if refresh > 0 {
                OfacSdn::refresh_every(&ofac, Duration::from_secs(refresh));
            }
            sources.push(Source::new(ofac, section.advisory(source_name::OFAC), Duration::ZERO));
        }
        if let Some(key) = section.circle_key(env)? {
            let chain_name = section.circle_chain.clone().unwrap_or_else(|| "ETH".into());
            let circle = CircleScreening::new(section.circle_base_url.clone(), key, chain_name, timeout)
                .map_err(|e| invalid("circle_base_url", e))?;
            sources.push(Source::new(
                Arc::new(circle),
                section.advisory(source_name::CIRCLE),
                ttl(section.circle_cache_seconds),
            ));
        }
        if let Some(path) = &section.local_list {
            let list = LocalList::read(path)?;
            sources.push(Source::new(
                Arc::new(list),
                section.advisory(source_name::LOCAL_LIST),
                Duration::ZERO,
            ));
        }
        Ok(ComplianceScreen::new(sources))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_unknown_advisory_sources_are_refused_at_load() {
        assert!(toml::from_str::<ComplianceSection>("ofac_lists = \"x\"\n").is_err());
        let section: ComplianceSection = toml::from_str("advisory = [\"circle\", \"ofac\"]\n").unwrap();
        section.validate().unwrap();
        let typo: ComplianceSection = toml::from_str("advisory = [\"circel\"]\n").unwrap();
        let err = typo.validate().unwrap_err();
        assert!(err.to_string().contains("circel"), "{err}");
        let bad_url: ComplianceSection = toml::from_str("ofac_list = \"https://\"\n").unwrap();
        assert!(bad_url.validate().is_err());
    }

    #[test]
    fn the_circle_key_comes_from_the_env_first_then_the_file() {
        let dir = std::env::temp_dir().join(format!("nerdcabal-circle-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, "from-file\n").unwrap();
        let section = ComplianceSection {
            circle_api_key_file: Some(path),
            ..ComplianceSection::default()
        };
        let env = |name: &str| (name == ENV_CIRCLE_COMPLIANCE_KEY).then(|| "from-env".to_owned());
        assert_eq!(section.circle_key(&env).unwrap().as_deref(), Some("from-env"));
        assert_eq!(section.circle_key(&|_| None).unwrap().as_deref(), Some("from-file"));
        assert_eq!(ComplianceSection::default().circle_key(&|_| None).unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
