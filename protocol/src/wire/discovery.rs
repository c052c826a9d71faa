//! The discovery ("bazaar") listing: `GET /discovery/resources` answers a page of sellable resources.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::JsonObject;
use crate::version::Version;

/// One listed resource. `accepts` are requirements of the item's `x402Version`, kept as JSON so one page can
/// hold items of either version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryItem {
    pub resource: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub x402_version: u8,
    pub accepts: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JsonObject>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pagination {
    pub limit: u64,
    pub offset: u64,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryResponse {
    pub x402_version: Version<2>,
    pub items: Vec<DiscoveryItem>,
    pub pagination: Pagination,
}
