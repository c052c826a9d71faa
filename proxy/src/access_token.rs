//! Access windows: after a payment settles on a route that sells time or a number of calls, the proxy hands
//! out a token (HMAC-SHA256 over route, payer, payment nonce and expiry, key from config) as a cookie and for
//! `Authorization: Bearer`. A valid token skips payment. Tokens verify with the key alone, so time windows
//! survive a restart; calls are counted per token in memory.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::{Deserialize, Serialize};

use crate::call_counter::CallCounter;
use crate::route_table::AccessWindow;

const PREFIX: &str = "x402a.";

/// What a token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Route name.
    pub r: String,
    /// Payer.
    pub p: Address,
    /// The payment's nonce: the token's identity.
    pub n: B256,
    /// Unix expiry.
    pub e: u64,
    /// Calls granted, for call windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c: Option<u32>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is malformed")]
    Malformed,
    #[error("the access token's signature is wrong")]
    BadSignature,
    #[error("the access token is for another route")]
    OtherRoute,
    #[error("the access token expired")]
    Expired,
    #[error("the access token's calls are used up")]
    UsedUp,
    #[error("the access token's calls cannot be counted now: {0}")]
    Store(String),
}

#[derive(Clone)]
pub struct AccessTokens {
    key: Arc<hmac::Key>,
    calls: CallCounter,
}

/// Call windows still expire, so their counters can be dropped.
pub const CALL_WINDOW_LIFETIME: u64 = 30 * 86_400;

impl AccessTokens {
    /// Tokens signed with `secret`; call windows counted in memory.
    pub fn new(secret: &[u8]) -> Self {
        Self::with_counter(secret, CallCounter::memory(Duration::from_secs(CALL_WINDOW_LIFETIME)))
    }

    pub fn with_counter(secret: &[u8], calls: CallCounter) -> Self {
        AccessTokens {
            key: Arc::new(hmac::Key::new(hmac::HMAC_SHA256, secret)),
            calls,
        }
    }

    /// A token for `window` on `route`, bought by `payer` with the payment `nonce`.
    pub async fn issue(
        &self,
        route: &str,
        payer: Address,
        nonce: B256,
        window: AccessWindow,
        now: u64,
    ) -> (String, Claims) {
        let claims = match window {
            AccessWindow::Seconds(s) => Claims {
                r: route.to_owned(),
                p: payer,
                n: nonce,
                e: now.saturating_add(s),
                c: None,
            },
            AccessWindow::Calls(c) => Claims {
                r: route.to_owned(),
                p: payer,
                n: nonce,
                e: now.saturating_add(CALL_WINDOW_LIFETIME),
                c: Some(c),
            },
        };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let tag = hmac::sign(&self.key, body.as_bytes());
        let token = format!("{PREFIX}{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        // The purchase itself is the first call.
        if let Some(calls) = claims.c
            && let Err(e) = self.calls.take(nonce, calls, claims.e).await
        {
            tracing::warn!(error = %e, "cannot record the first call of a call window");
        }
        (token, claims)
    }

    /// Checks `token` for `route` and, for call windows, uses one call.
    pub async fn redeem(&self, token: &str, route: &str, now: u64) -> Result<Claims, TokenError> {
        let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
        let (body, tag) = rest.split_once('.').ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Malformed)?;
        hmac::verify(&self.key, body.as_bytes(), &tag).map_err(|_| TokenError::BadSignature)?;
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
        if claims.r != route {
            return Err(TokenError::OtherRoute);
        }
        if claims.e <= now {
            return Err(TokenError::Expired);
        }
        if let Some(calls) = claims.c {
            match self.calls.take(claims.n, calls, claims.e).await {
                Ok(true) => {}
                Ok(false) => return Err(TokenError::UsedUp),
                Err(e) => return Err(TokenError::Store(e.to_string())),
            }
        }
        Ok(claims)
    }
}

/// The cookie that carries a route's token.
pub fn cookie_name(route: &str) -> String {
    let safe: String = route
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("x402_access_{safe}")
}

/// A token presented as `Authorization: Bearer x402a.…` (then `true`: the header is ours) or as the route's
/// cookie.
pub fn presented<'a>(headers: &'a HeaderMap, route: &str) -> Option<(&'a str, bool)> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.starts_with(PREFIX))
    {
        return Some((bearer, true));
    }
    let name = cookie_name(route);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| (v, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn time_windows_verify_with_the_key_alone() {
        let tokens = AccessTokens::new(&[7; 32]);
        let (token, claims) = tokens
            .issue(
                "r",
                Address::repeat_byte(1),
                B256::repeat_byte(2),
                AccessWindow::Seconds(60),
                1000,
            )
            .await;
        assert_eq!(claims.e, 1060);
        let restarted = AccessTokens::new(&[7; 32]);
        assert_eq!(restarted.redeem(&token, "r", 1059).await, Ok(claims));
        assert_eq!(restarted.redeem(&token, "r", 1060).await, Err(TokenError::Expired));
        assert_eq!(
            restarted.redeem(&token, "other", 1000).await,
            Err(TokenError::OtherRoute)
        );
        assert_eq!(
            AccessTokens::new(&[8; 32]).redeem(&token, "r", 1000).await,
            Err(TokenError::BadSignature)
        );
        let mut forged = token.clone();
        forged.insert(10, 'A');
        assert!(tokens.redeem(&forged, "r", 1000).await.is_err());
        assert_eq!(tokens.redeem("nonsense", "r", 1000).await, Err(TokenError::Malformed));
    }

    #[tokio::test]
    async fn call_windows_count_the_purchase_and_run_out() {
        let tokens = AccessTokens::new(&[7; 32]);
        let (token, _) = tokens
            .issue(
                "r",
                Address::repeat_byte(1),
                B256::repeat_byte(3),
                AccessWindow::Calls(3),
                1000,
            )
            .await;
        assert!(tokens.redeem(&token, "r", 1001).await.is_ok());
        assert!(tokens.redeem(&token, "r", 1002).await.is_ok());
        assert_eq!(tokens.redeem(&token, "r", 1003).await, Err(TokenError::UsedUp));
    }

    #[tokio::test]
    async fn call_counts_in_a_database_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("nerdcabal-calls-{}", B256::random()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("state.db").display());
        let tokens = AccessTokens::with_counter(&[7; 32], CallCounter::database(&url).await.unwrap());
        let (token, _) = tokens
            .issue(
                "r",
                Address::repeat_byte(1),
                B256::repeat_byte(4),
                AccessWindow::Calls(3),
                1000,
            )
            .await;
        assert!(tokens.redeem(&token, "r", 1001).await.is_ok());
        drop(tokens);
        let restarted = AccessTokens::with_counter(&[7; 32], CallCounter::database(&url).await.unwrap());
        assert!(restarted.redeem(&token, "r", 1002).await.is_ok());
        assert_eq!(restarted.redeem(&token, "r", 1003).await, Err(TokenError::UsedUp));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tokens_are_found_in_bearer_or_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=b; x402_access__w=x402a.t.s".parse().unwrap());
        assert_eq!(presented(&headers, "/w"), Some(("x402a.t.s", false)));
        headers.insert(header::AUTHORIZATION, "Bearer x402a.u.v".parse().unwrap());
        assert_eq!(presented(&headers, "/w"), Some(("x402a.u.v", true)));
        headers.insert(header::AUTHORIZATION, "Bearer upstream-key".parse().unwrap());
        assert_eq!(presented(&headers, "/w"), Some(("x402a.t.s", false)));
    }
}
