//! The token's own blocklist on chain: `isBlacklisted(address)` on the USDC contract over JSON-RPC. It is
//! authoritative for "would the transfer revert" and always consulted. An RPC failure is `Unavailable`.

use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};

use crate::compliance::screener::{ScreenFuture, Screener, SourceAnswer, source_name};

alloy::sol! {
    #[sol(rpc)]
    interface IBlacklistable {
        function isBlacklisted(address account) external view returns (bool);
    }
}

pub struct TokenBlocklist {
    token: Address,
    provider: DynProvider,
    /// For error messages (redacted there: it may carry an API key).
    rpc_url: String,
}

impl TokenBlocklist {
    pub fn new(rpc_url: &str, token: Address) -> Result<Self, String> {
        let url: url::Url = rpc_url
            .parse()
            .map_err(|e| format!("RPC URL {}: {e}", protocol::redact::redact_url(rpc_url)))?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        Ok(TokenBlocklist {
            token,
            provider,
            rpc_url: rpc_url.to_owned(),
        })
    }
}

impl Screener for TokenBlocklist {
    fn name(&self) -> &'static str {
        source_name::TOKEN_BLOCKLIST
    }

    fn screen(&self, address: Address) -> ScreenFuture<'_> {
        Box::pin(async move {
            let token = IBlacklistable::new(self.token, &self.provider);
            match token.isBlacklisted(address).call().await {
                Ok(true) => SourceAnswer::Blocked {
                    reason: "blacklisted".into(),
                    detail: format!("blacklisted by the token {}", self.token),
                },
                Ok(false) => SourceAnswer::Clear,
                Err(e) => SourceAnswer::Unavailable {
                    error: format!(
                        "isBlacklisted on {} via {}: {}",
                        self.token,
                        protocol::redact::redact_url(&self.rpc_url),
                        protocol::redact::redact_in(&e.to_string(), &self.rpc_url)
                    ),
                },
            }
        })
    }
}
