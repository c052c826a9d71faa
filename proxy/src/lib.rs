//! The paywall reverse proxy: routes with prices in front of any HTTP API. Unpaid requests to a priced route get
//! an x402 `402` offer (JSON for programs, an HTML paywall for browsers); paid ones are matched to the route,
//! verified with the facilitator (remote or embedded), forwarded upstream, and settled only when the upstream
//! succeeded — content is never served unpaid. Access windows, rate limits, metrics, optional TLS, and route (and
//! certificate) reload on SIGHUP.

pub mod access_token;
pub mod bench;
pub mod call_counter;
pub mod client_ip;
pub mod config;
pub mod demo_api;
pub mod dev_stack;
pub mod error_response;
pub mod facilitator_link;
pub mod metrics;
pub mod offer;
pub mod path_pattern;
pub mod payment_header;
pub mod payment_state;
pub mod paywall_page;
pub mod pipeline;
pub mod rate_limits;
pub mod route_table;
pub mod service;
pub mod tls_listener;
pub mod upstream;
