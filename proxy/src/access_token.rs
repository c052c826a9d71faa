//! Access windows: after a payment settles on a route that sells time or a number of calls, the proxy hands
//! out a token as a cookie and for `Authorization: Bearer`; a valid token skips payment. A token is
//! `x402a.<key id>.<claims>.<HMAC-SHA256 of both>`: the claims name what was bought by its *fingerprint* — a
//! hash of the route's host, path pattern, amount, network, asset and payTo, not its name — so a token bought
//! on one host is refused on another, and a route whose price changed stops honouring older tokens. Several
//! keys may be configured: the first signs, each verifies (found by the key id, the first 8 hex digits of the
//! key's SHA-256), so a key can be rotated without logging everyone out. Tokens verify with the keys alone, so
//! time windows survive a restart; calls are counted per token ([`CallCounter`]). The token is ours: its
//! header and its cookie are never forwarded upstream ([`strip_token_cookies`]).

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use protocol::wire::v2;
use ring::{digest, hmac};
use serde::{Deserialize, Serialize};

use crate::call_counter::CallCounter;
use crate::route_table::AccessWindow;

const PREFIX: &str = "x402a.";
/// Every access-token cookie's name starts so.
pub const COOKIE_PREFIX: &str = "x402_access_";

/// What a token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The route's fingerprint ([`route_fingerprint`]).
    pub f: String,
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
    #[error("the access token was signed with a key this proxy does not have")]
    UnknownKey,
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

/// The id a token carries for the key that signed it: the first 8 hex digits of the key's SHA-256.
pub fn key_id(secret: &[u8]) -> String {
    alloy::hex::encode(&digest::digest(&digest::SHA256, secret).as_ref()[..4])
}

/// What a priced route sells, as 32 hex digits (128 bits of SHA-256): its host (lower case, empty for any
/// host), path pattern, and the requirement's amount, network, asset and payTo, each length-prefixed so no
/// two different routes can run together into the same bytes. The route's name and upstream are not in it.
pub fn route_fingerprint(host: Option<&str>, path_pattern: &str, requirement: &v2::PaymentRequirements) -> String {
    let host = host.map(str::to_ascii_lowercase).unwrap_or_default();
    let amount = requirement.amount.to_string();
    let fields: [&[u8]; 7] = [
        b"x402-route-fingerprint-v1",
        host.as_bytes(),
        path_pattern.as_bytes(),
        amount.as_bytes(),
        requirement.network.as_bytes(),
        requirement.asset.as_slice(),
        requirement.pay_to.as_slice(),
    ];
    let mut hash = digest::Context::new(&digest::SHA256);
    for field in fields {
        hash.update(&(field.len() as u64).to_be_bytes());
        hash.update(field);
    }
    alloy::hex::encode(&hash.finish().as_ref()[..16])
}

struct Key {
    id: String,
    hmac: hmac::Key,
}

#[derive(Clone)]
pub struct AccessTokens {
    /// The first signs; all verify.
    keys: Arc<[Key]>,
    calls: CallCounter,
}

/// Call windows still expire, so their counters can be dropped.
pub const CALL_WINDOW_LIFETIME: u64 = 30 * 86_400;

impl AccessTokens {
    /// Tokens signed with the first of `secrets` and verified with any; call windows counted in memory.
    /// `None` without a secret.
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Option<Self> {
        Self::with_counter(secrets, CallCounter::memory(Duration::from_secs(CALL_WINDOW_LIFETIME)))
    }

    pub fn with_counter<S: AsRef<[u8]>>(secrets: &[S], calls: CallCounter) -> Option<Self> {
        if secrets.is_empty() {
            return None;
        }
        let keys = secrets
            .iter()
            .map(|secret| Key {
                id: key_id(secret.as_ref()),
                hmac: hmac::Key::new(hmac::HMAC_SHA256, secret.as_ref()),
            })
            .collect();
        Some(AccessTokens { keys, calls })
    }

    /// The id of the key that signs new tokens.
    pub fn signing_key_id(&self) -> &str {
        self.keys.first().map_or("", |k| k.id.as_str())
    }

    /// A token for `window` on the route with `fingerprint`, bought by `payer` with the payment `nonce`.
    pub async fn issue(
        &self,
        fingerprint: &str,
        payer: Address,
        nonce: B256,
        window: AccessWindow,
        now: u64,
    ) -> (String, Claims) {
        let (e, c) = match window {
            AccessWindow::Seconds(s) => (now.saturating_add(s), None),
            AccessWindow::Calls(c) => (now.saturating_add(CALL_WINDOW_LIFETIME), Some(c)),
        };
        let claims = Claims {
            f: fingerprint.to_owned(),
            p: payer,
            n: nonce,
            e,
            c,
        };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let token = match self.keys.first() {
            Some(key) => {
                let signed = format!("{}.{body}", key.id);
                let tag = hmac::sign(&key.hmac, signed.as_bytes());
                format!("{PREFIX}{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
            }
            // Not built without a key.
            None => String::new(),
        };
        // The purchase itself is the first call.
        if let Some(calls) = claims.c
            && let Err(e) = self.calls.take(nonce, calls, claims.e).await
        {
            tracing::warn!(error = %e, "cannot record the first call of a call window");
        }
        (token, claims)
    }

    /// Checks `token` for the route with `fingerprint` and, for call windows, uses one call.
    pub async fn redeem(&self, token: &str, fingerprint: &str, now: u64) -> Result<Claims, TokenError> {
        let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
        let (signed, tag) = rest.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (id, body) = signed.split_once('.').ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Malformed)?;
        if !self.keys.iter().any(|k| k.id == id) {
            return Err(TokenError::UnknownKey);
        }
        // Two keys may share an id (8 hex digits): any of them may have signed it.
        if !self
            .keys
            .iter()
            .any(|k| k.id == id && hmac::verify(&k.hmac, signed.as_bytes(), &tag).is_ok())
        {
            return Err(TokenError::BadSignature);
        }
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
        if claims.f != fingerprint {
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
    format!("{COOKIE_PREFIX}{safe}")
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

/// Removes every access-token pair (`x402_access_…=…`) from the `Cookie` headers, keeping the other cookies
/// as they were; a header left empty goes.
pub fn strip_token_cookies(headers: &mut HeaderMap) {
    let prefix = COOKIE_PREFIX.as_bytes();
    let ours = |value: &HeaderValue| value.as_bytes().windows(prefix.len()).any(|w| w == prefix);
    if !headers.get_all(header::COOKIE).iter().any(ours) {
        return;
    }
    let kept: Vec<HeaderValue> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| {
            if !ours(value) {
                return Some(value.clone());
            }
            let pairs: Vec<&[u8]> = value
                .as_bytes()
                .split(|b| *b == b';')
                .map(<[u8]>::trim_ascii)
                .filter(|pair| !pair.is_empty() && !pair.starts_with(prefix))
                .collect();
            // The remaining bytes came from a valid header value, so they make one.
            (!pairs.is_empty())
                .then(|| HeaderValue::from_bytes(&pairs.join(&b"; "[..])).ok())
                .flatten()
        })
        .collect();
    headers.remove(header::COOKIE);
    for value in kept {
        headers.append(header::COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::U256;

    const K7: &[u8] = &[7; 32];
    const K8: &[u8] = &[8; 32];

    fn tokens(secrets: &[&[u8]]) -> AccessTokens {
        AccessTokens::new(secrets).unwrap()
    }

    async fn hour(tokens: &AccessTokens, fingerprint: &str) -> (String, Claims) {
        tokens
            .issue(
                fingerprint,
                Address::repeat_byte(1),
                B256::repeat_byte(2),
                AccessWindow::Seconds(60),
                1000,
            )
            .await
    }

    #[tokio::test]
    async fn time_windows_verify_with_the_key_alone() {
        let issuer = tokens(&[K7]);
        let (token, claims) = hour(&issuer, "r").await;
        assert_eq!(claims.e, 1060);
        assert!(token.starts_with(&format!("x402a.{}.", key_id(K7))), "{token}");
        let restarted = tokens(&[K7]);
        assert_eq!(restarted.redeem(&token, "r", 1059).await, Ok(claims));
        assert_eq!(restarted.redeem(&token, "r", 1060).await, Err(TokenError::Expired));
        assert_eq!(
            restarted.redeem(&token, "other", 1000).await,
            Err(TokenError::OtherRoute)
        );
        assert_eq!(
            tokens(&[K8]).redeem(&token, "r", 1000).await,
            Err(TokenError::UnknownKey)
        );
        let mut forged = token.clone();
        forged.insert(20, 'A');
        assert!(issuer.redeem(&forged, "r", 1000).await.is_err());
        assert_eq!(issuer.redeem("nonsense", "r", 1000).await, Err(TokenError::Malformed));
        assert_eq!(issuer.redeem("x402a.abc", "r", 1000).await, Err(TokenError::Malformed));
        assert!(AccessTokens::new::<&[u8]>(&[]).is_none());
    }

    #[tokio::test]
    async fn a_token_signed_by_a_key_with_a_known_id_but_other_bytes_is_refused() {
        let (token, _) = hour(&tokens(&[K7]), "r").await;
        let (_, rest) = token.split_at(PREFIX.len() + 8);
        // Same key id, tag made with another key: the signature check, not the id, decides.
        let (signed, _) = rest.rsplit_once('.').unwrap();
        let other = hmac::Key::new(hmac::HMAC_SHA256, K8);
        let signed = format!("{}{signed}", key_id(K7));
        let tag = hmac::sign(&other, signed.as_bytes());
        let forged = format!("{PREFIX}{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        assert_eq!(
            tokens(&[K7]).redeem(&forged, "r", 1000).await,
            Err(TokenError::BadSignature)
        );
    }

    #[tokio::test]
    async fn rotation_signs_with_the_new_key_and_still_accepts_the_old() {
        let (old_token, _) = hour(&tokens(&[K7]), "r").await;
        let rotated = tokens(&[K8, K7]);
        assert_eq!(rotated.signing_key_id(), key_id(K8));
        assert!(
            rotated.redeem(&old_token, "r", 1000).await.is_ok(),
            "no one is logged out"
        );
        let (new_token, _) = hour(&rotated, "r").await;
        assert!(new_token.starts_with(&format!("x402a.{}.", key_id(K8))), "{new_token}");
        assert!(rotated.redeem(&new_token, "r", 1000).await.is_ok());
        // Once the old key is dropped, its tokens go; the new ones stay.
        let retired = tokens(&[K8]);
        assert_eq!(retired.redeem(&old_token, "r", 1000).await, Err(TokenError::UnknownKey));
        assert!(retired.redeem(&new_token, "r", 1000).await.is_ok());
        // An older proxy that has only the old key refuses the new tokens rather than misreading them.
        assert_eq!(
            tokens(&[K7]).redeem(&new_token, "r", 1000).await,
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn key_ids_are_short_and_differ_per_key() {
        assert_eq!(key_id(K7).len(), 8);
        assert_ne!(key_id(K7), key_id(K8));
        // SHA-256("abc") starts ba7816bf.
        assert_eq!(key_id(b"abc"), "ba7816bf");
    }

    #[test]
    fn fingerprints_bind_host_pattern_price_network_asset_and_pay_to() {
        let requirement = v2::PaymentRequirements {
            scheme: "exact".into(),
            network: "eip155:5042002".into(),
            amount: U256::from(10_000),
            asset: Address::repeat_byte(0x36),
            pay_to: Address::repeat_byte(0xbe),
            max_timeout_seconds: 60,
            extra: None,
        };
        let base = route_fingerprint(Some("a.test"), "/w", &requirement);
        assert_eq!(base.len(), 32);
        assert_eq!(route_fingerprint(Some("A.Test"), "/w", &requirement), base);
        let with = |f: &dyn Fn(&mut v2::PaymentRequirements)| {
            let mut changed = requirement.clone();
            f(&mut changed);
            route_fingerprint(Some("a.test"), "/w", &changed)
        };
        // Not part of what is sold: the buyer's time to pay.
        assert_eq!(with(&|r| r.max_timeout_seconds = 120), base);
        let changed = [
            route_fingerprint(Some("b.test"), "/w", &requirement),
            route_fingerprint(None, "/w", &requirement),
            route_fingerprint(Some("a.test"), "/w/*", &requirement),
            with(&|r| r.amount = U256::from(10_001)),
            with(&|r| r.network = "eip155:5042".into()),
            with(&|r| r.asset = Address::repeat_byte(0x37)),
            with(&|r| r.pay_to = Address::repeat_byte(0xbf)),
        ];
        for (i, other) in changed.iter().enumerate() {
            assert_ne!(*other, base, "change {i}");
        }
        // Length prefixes: moving bytes from one field to the next changes the hash.
        assert_ne!(
            route_fingerprint(Some("a.tes"), "t/w", &requirement),
            route_fingerprint(Some("a.test"), "/w", &requirement)
        );
    }

    #[tokio::test]
    async fn call_windows_count_the_purchase_and_run_out() {
        let tokens = tokens(&[K7]);
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
        let tokens = AccessTokens::with_counter(&[K7], CallCounter::database(&url).await.unwrap()).unwrap();
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
        let restarted = AccessTokens::with_counter(&[K7], CallCounter::database(&url).await.unwrap()).unwrap();
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

    #[test]
    fn token_cookies_are_stripped_and_the_others_kept() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "a=b; x402_access_w=x402a.t.s;c=d".parse().unwrap());
        headers.append(header::COOKIE, "x402_access_other=x".parse().unwrap());
        headers.append(header::COOKIE, "e=f".parse().unwrap());
        strip_token_cookies(&mut headers);
        let left: Vec<_> = headers.get_all(header::COOKIE).iter().collect();
        assert_eq!(left, ["a=b; c=d", "e=f"]);
        let mut untouched = HeaderMap::new();
        untouched.insert(header::COOKIE, "session=1;theme=dark".parse().unwrap());
        strip_token_cookies(&mut untouched);
        assert_eq!(untouched[header::COOKIE], "session=1;theme=dark");
        let mut only_ours = HeaderMap::new();
        only_ours.insert(header::COOKIE, "x402_access_w=x402a.t.s".parse().unwrap());
        strip_token_cookies(&mut only_ours);
        assert!(!only_ours.contains_key(header::COOKIE));
    }
}
