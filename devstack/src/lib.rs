//! The local world around the libraries: `nerdcabal dev` (devnet, facilitator, paywall proxy and the demo API on
//! loopback from one command), the demo API itself, a local server in the shape of Circle's Compliance Engine
//! screening API (`circle_compliance`), and the benchmarks with their load drivers and baselines.
//! Nothing here is a library of the product: the product's crates use it only as a dev-dependency.

pub mod bench;
pub mod circle_compliance;
pub mod demo_api;
pub mod dev_stack;
