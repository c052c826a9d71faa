//! Circle's Compliance Engine as an optional screening source: `POST {base}/v1/w3s/compliance/screening/addresses`
//! with `Authorization: Bearer <key>` and `{idempotencyKey, address, chain}`. `DENIED` is `Blocked` (the rule
//! name and the risk categories of its reasons); `APPROVED` is `Clear`; an HTTP error, a timeout or an answer
//! of another shape is `Unavailable`. The answer is read with or without the `data` wrapper. The API key never
//! appears in logs, errors or `Debug`.

use std::time::Duration;

use alloy::primitives::Address;
use serde::Deserialize;

use crate::compliance::screener::{ScreenFuture, Screener, SourceAnswer, source_name};

/// Circle's API host.
pub const CIRCLE_API: &str = "https://api.circle.com";
pub const SCREENING_PATH: &str = "/v1/w3s/compliance/screening/addresses";
/// The largest answer read.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

pub struct CircleScreening {
    base_url: String,
    api_key: String,
    /// Circle's chain name for the addresses (its enum has no Arc; EVM addresses are screened as `ETH`).
    chain: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for CircleScreening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircleScreening")
            .field("base_url", &protocol::redact::redact_url(&self.base_url))
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct Answer {
    result: String,
    #[serde(default)]
    decision: Option<Decision>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Decision {
    #[serde(default)]
    rule_name: Option<String>,
    #[serde(default)]
    reasons: Vec<Reason>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reason {
    #[serde(default)]
    risk_categories: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Wrapped {
    data: Answer,
}

impl CircleScreening {
    pub fn new(base_url: Option<String>, api_key: String, chain: String, timeout: Duration) -> Result<Self, String> {
        let base_url = base_url.unwrap_or_else(|| CIRCLE_API.to_owned());
        url::Url::parse(&base_url).map_err(|e| format!("circle_base_url: {e}"))?;
        if api_key.trim().is_empty() {
            return Err("the Circle compliance API key is empty".into());
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(CircleScreening {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.trim().to_owned(),
            chain,
            http,
        })
    }

    /// Removes the key from a message (an error text could echo a header).
    fn scrub(&self, text: &str) -> String {
        text.replace(&self.api_key, "***")
    }

    async fn ask(&self, address: Address) -> Result<SourceAnswer, String> {
        let body = serde_json::json!({
            "idempotencyKey": uuid::Uuid::new_v4().to_string(),
            "address": address.to_checksum(None),
            "chain": self.chain,
        });
        let response = self
            .http
            .post(format!("{}{SCREENING_PATH}", self.base_url))
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("Circle screening request failed: {e}"))?;
        let status = response.status();
        let read = crate::buyer::bounded_body::read(response, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| format!("Circle screening answer broke off: {e}"))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&read.bytes);
            let text: String = text.chars().take(200).collect();
            return Err(format!("Circle screening answered HTTP {}: {text}", status.as_u16()));
        }
        let answer = serde_json::from_slice::<Wrapped>(&read.bytes)
            .map(|w| w.data)
            .or_else(|_| serde_json::from_slice::<Answer>(&read.bytes))
            .map_err(|e| format!("Circle screening answer is not a screening result: {e}"))?;
        match answer.result.as_str() {
            "APPROVED" => Ok(SourceAnswer::Clear),
            "DENIED" => {
                let decision = answer.decision.unwrap_or(Decision {
                    rule_name: None,
                    reasons: Vec::new(),
                });
                let mut categories: Vec<String> =
                    decision.reasons.into_iter().flat_map(|r| r.risk_categories).collect();
                categories.dedup();
                let reason = categories
                    .first()
                    .map(|c| c.to_ascii_lowercase())
                    .unwrap_or_else(|| "denied".into());
                Ok(SourceAnswer::Blocked {
                    reason,
                    detail: format!(
                        "Circle Compliance Engine denied it (rule {}; {})",
                        decision.rule_name.as_deref().unwrap_or("unnamed"),
                        if categories.is_empty() {
                            "no risk category given".to_owned()
                        } else {
                            categories.join(", ")
                        }
                    ),
                })
            }
            other => Err(format!("Circle screening answered an unknown result `{other}`")),
        }
    }
}

impl Screener for CircleScreening {
    fn name(&self) -> &'static str {
        source_name::CIRCLE
    }

    fn screen(&self, address: Address) -> ScreenFuture<'_> {
        Box::pin(async move {
            match self.ask(address).await {
                Ok(answer) => answer,
                Err(error) => SourceAnswer::Unavailable {
                    error: self.scrub(&error),
                },
            }
        })
    }
}
