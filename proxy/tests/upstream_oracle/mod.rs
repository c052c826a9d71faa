//! The oracle for "no path reaches a priced upstream path through a free or cheaper route", shared by the
//! `canonical_properties` tests and the `canonical_path` fuzz target: what an upstream that percent-decodes
//! everything, resolves dot segments and (when it does) merges slashes — nginx, Python's `http.server`, or a
//! router that resolves before it decodes — makes of the path it is sent, and the check that the route the
//! proxy charged for prices that path as the table does.

#![allow(dead_code)]

use std::sync::Arc;

use axum::http::Method;
use proxy::canonical_path::canonicalize;
use proxy::config::ProxyConfig;
use proxy::route_table::{Route, RouteTable};

/// A route table from `[[route]]` entries (priced ones need only `price`), on the built-in networks.
pub fn table(routes: &str) -> Arc<RouteTable> {
    let text = format!(
        "access_token_secret = \"{}\"\n[facilitator]\nembedded = true\n[defaults]\nnetwork = \"eip155:5042002\"\n\
         pay_to = \"0x000000000000000000000000000000000000bEEF\"\n{routes}",
        "k".repeat(32)
    );
    let config = match ProxyConfig::from_toml(&text, |_| None) {
        Ok(config) => config,
        Err(e) => panic!("test route file: {e}\n{text}"),
    };
    match RouteTable::build(&config, &protocol::Networks::builtin()) {
        Ok(table) => table,
        Err(e) => panic!("test route table: {e}\n{text}"),
    }
}

/// In which order the upstream decodes and resolves a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Percent-decode everything, then merge slashes and resolve dot segments (nginx, Python's `http.server`).
    DecodeFirst,
    /// Merge slashes and resolve dot segments on the path as sent, then percent-decode (a router that matches
    /// the encoded path and hands the decoded one on).
    DotsFirst,
}

/// What the upstream serves for `path`: every `%XX` decoded (a backslash read as a slash, as Windows servers
/// do), runs of `/` merged when `merge_slashes`, `.` and `..` resolved (never above the root), in the order
/// `reads` says; one trailing slash kept.
pub fn served_path(path: &str, merge_slashes: bool, reads: Reads) -> String {
    match reads {
        Reads::DecodeFirst => resolve(&decode_all(path), merge_slashes),
        Reads::DotsFirst => decode_all(&resolve(path, merge_slashes)),
    }
}

fn decode_all(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        match (byte, hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                decoded.push((high * 16 + low) as u8);
                i += 3;
            }
            _ => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).replace('\\', "/")
}

fn resolve(path: &str, merge_slashes: bool) -> String {
    let body = path.strip_prefix('/').unwrap_or(path);
    let parts: Vec<&str> = body.split('/').collect();
    let mut out: Vec<&str> = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        match *part {
            "" if merge_slashes && !last => {}
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            part => out.push(part),
        }
    }
    format!("/{}", out.join("/"))
}

fn price(route: &Route) -> Option<String> {
    route.pricing.as_ref().map(|p| p.requirement.amount.to_string())
}

/// What one request path did, when the proxy forwarded it.
#[derive(Debug)]
pub struct Forwarded {
    pub canonical: String,
    pub route: String,
    pub upstream_path: String,
    /// What the upstream serves, for each [`Reads`] in turn.
    pub served: Vec<String>,
}

/// Which path goes upstream once a route matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Send {
    /// The matched (canonical) path, as `RouteTable::find` builds `upstream_url`.
    Matched,
    /// The request's own path, untouched.
    Raw,
}

/// Canonicalizes `raw` (merging slashes as the upstream does), matches it, and checks that the path the upstream
/// then serves is priced by the table as the matched route is. `Ok(None)`: refused or unmatched (not forwarded).
/// Only for tables without rewrites, all on one upstream.
pub fn check(table: &RouteTable, raw: &str, merge_slashes: bool, send: Send) -> Result<Option<Forwarded>, String> {
    let Ok(canonical) = canonicalize(raw, merge_slashes) else {
        return Ok(None);
    };
    check_matched(table, raw, canonical, merge_slashes, send)
}

/// [`check`] for a path matched as `canonical` (pass `raw` itself to see what the check catches without
/// canonicalization).
pub fn check_matched(
    table: &RouteTable,
    raw: &str,
    canonical: String,
    merge_slashes: bool,
    send: Send,
) -> Result<Option<Forwarded>, String> {
    let Some(matched) = table.find(None, &Method::GET, &canonical, None) else {
        return Ok(None);
    };
    let upstream_path = match send {
        Send::Raw => raw,
        Send::Matched => match matched.upstream_url.strip_prefix(matched.route.upstream.as_str()) {
            Some(path) => path,
            None => {
                return Err(format!(
                    "{} does not start with {}",
                    matched.upstream_url, matched.route.upstream
                ));
            }
        },
    };
    let mut forwarded = Forwarded {
        canonical: canonical.clone(),
        route: matched.route.name.to_string(),
        upstream_path: upstream_path.to_owned(),
        served: Vec::new(),
    };
    for reads in [Reads::DecodeFirst, Reads::DotsFirst] {
        let served = served_path(upstream_path, merge_slashes, reads);
        forwarded.served.push(served.clone());
        let Some(target) = table.find(None, &Method::GET, &served, None) else {
            continue;
        };
        let (paid, owed) = (price(matched.route), price(target.route));
        if owed.is_none() || paid == owed {
            continue;
        }
        return Err(format!(
            "bypass: {raw:?} (merge_slashes = {merge_slashes}, {send:?} path sent) was read as {canonical:?}, \
             matched route {:?} (price {paid:?}), but an upstream that reads {reads:?} serves {served:?}, which \
             route {:?} prices at {owed:?}",
            matched.route.name, target.route.name
        ));
    }
    Ok(Some(forwarded))
}
