//! How the route table's lookup cost grows with the number of routes: tables of 10 to 10,000 priced routes,
//! each looked up many times at its last route (the worst case for a scan), in this process.

use std::time::Instant;

use axum::http::Method;
use proxy::config::ProxyConfig;
use proxy::route_table::RouteTable;

use super::sample::Reading;
use super::{BenchError, setup};

fn table(routes: usize) -> Result<std::sync::Arc<RouteTable>, BenchError> {
    let mut text = String::from(
        "[facilitator]\nembedded = true\n[defaults]\nnetwork = \"eip155:5042002\"\n\
         pay_to = \"0x000000000000000000000000000000000000bEEF\"\n",
    );
    for i in 0..routes {
        text.push_str(&format!(
            "[[route]]\npath = \"/api/v{}/item{i}/:id\"\nupstream = \"http://127.0.0.1:9\"\nprice = \"$0.001\"\n",
            i % 7
        ));
    }
    let config = ProxyConfig::from_toml(&text, |_| None).map_err(setup)?;
    RouteTable::build(&config, &protocol::Networks::builtin()).map_err(setup)
}

/// Nanoseconds per lookup at each table size.
pub fn lookup_costs() -> Result<Vec<Reading>, BenchError> {
    let mut out = Vec::new();
    for size in [10, 100, 1_000, 10_000] {
        let t = table(size)?;
        let path = format!("/api/v{}/item{}/42", (size - 1) % 7, size - 1);
        const LOOKUPS: u32 = 200_000;
        let started = Instant::now();
        let mut found = 0usize;
        for _ in 0..LOOKUPS {
            found += t
                .find(None, &Method::GET, std::hint::black_box(&path), None)
                .map_or(0, |m| m.index);
        }
        let ns = started.elapsed().as_nanos() as f64 / f64::from(LOOKUPS);
        if found != (size - 1) * LOOKUPS as usize {
            return Err(setup(format!("the lookup in {size} routes found the wrong route")));
        }
        out.push(Reading {
            name: format!("route lookup among {size} routes"),
            value: ns,
            unit: "ns".into(),
        });
    }
    Ok(out)
}
