//! The paywall reverse proxy: routes with prices in front of any HTTP API. Request paths are canonicalised before
//! they are priced, and the upstream receives exactly the path that was priced. Unpaid requests to a priced route
//! get an x402 `402` offer (JSON for programs, an HTML paywall for browsers); a paid one runs a durable lifecycle
//! shared by replicas — verified with the facilitator (remote or embedded), forwarded upstream once, settled only
//! when the upstream succeeded, its answer kept and re-delivered to a resend — so content is never served unpaid
//! (except on a `settle = "deferred"` route, within bounded exposure, settled in background batches) and a
//! payment never buys nothing. Access windows, rate limits, metrics, optional TLS, and route (and
//! certificate) reload on SIGHUP.

pub mod access_token;
pub mod admission_group;
pub mod call_counter;
pub mod canonical_path;
pub mod client_ip;
pub mod config;
pub mod deferred_ledger;
pub mod deferred_settler;
pub mod error_response;
pub mod facilitator_link;
pub mod heap_release;
pub mod metrics;
pub mod offer;
pub mod paid_request;
pub mod path_pattern;
pub mod payment_header;
pub mod payment_store;
pub mod paywall_page;
pub mod pipeline;
pub mod rate_limits;
pub mod route_index;
pub mod route_table;
pub mod service;
pub mod store_writer;
pub mod tls_listener;
pub mod upstream;
