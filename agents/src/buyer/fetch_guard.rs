//! The fetch policy of the MCP tools: an agent (perhaps prompt-injected) names the URLs, so before anything is
//! fetched — and again on every redirect — the host is screened, and loopback, private, link-local, CGNAT,
//! unique-local, metadata and other non-public addresses are refused unless `[fetch] allow_hosts` (or
//! `--devnet`, for the dev stack's proxy alone) names the host. Names are resolved by a resolver that screens
//! every address it returns, and the connection goes to exactly those addresses: no second lookup a DNS
//! rebinding could answer differently. Hop-by-hop headers and `Host` from the agent are dropped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName};

/// A URL the policy will not fetch, and the rule that says so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fetching `{host}` is refused by the fetch policy ({rule}): {detail}")]
pub struct FetchRefused {
    /// `loopback`, `private`, `link_local`, `cgnat`, `unique_local`, `metadata`, `unspecified`, `multicast`,
    /// `reserved`, `scheme`, `allow_hosts_port`, or `no_host`.
    pub rule: &'static str,
    pub host: String,
    pub detail: String,
}

/// One `[fetch] allow_hosts` entry: a host, on any port or on one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    /// Lower case, no trailing dot; an IP in its canonical text (IPv6 without brackets).
    host: String,
    port: Option<u16>,
}

#[derive(Debug, Clone, Default)]
pub struct FetchGuard {
    allowed: Vec<Allowed>,
}

/// A host as the policy compares it: lower case, no trailing dot, IPs canonical.
fn canonical_host(host: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host,
    }
}

impl FetchGuard {
    /// The policy with these `allow_hosts` entries (`name`, `name:port`, `10.0.0.5`, `[fd00::1]:8080`).
    pub fn new(allow_hosts: &[String]) -> Result<Self, String> {
        let mut guard = FetchGuard::default();
        for entry in allow_hosts {
            guard.allowed.push(parse_entry(entry)?);
        }
        Ok(guard)
    }

    /// Also allows the host and port of `url` (and only that port): the dev stack's proxy under `--devnet`.
    pub fn allow_origin_of(&mut self, url: &url::Url) {
        if let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) {
            self.allowed.push(Allowed {
                host: canonical_host(host),
                port: Some(port),
            });
        }
    }

    fn allows(&self, host: &str, port: u16) -> bool {
        self.allowed
            .iter()
            .any(|a| a.host == host && a.port.is_none_or(|p| p == port))
    }

    /// Whether a resolved name may skip screening: only a name `allow_hosts` lists. A name listed with ports
    /// reaches the resolver only on one of them, since [`Self::check_url`] refuses the others first.
    fn allows_name(&self, host: &str) -> bool {
        self.allowed.iter().any(|a| a.host == host)
    }

    /// Screens a URL about to be fetched (the first request and every redirect). An IP is judged here; a name
    /// is judged by the resolver, on every address it resolves to.
    pub fn check_url(&self, url: &url::Url) -> Result<(), FetchRefused> {
        let shown = url.host_str().unwrap_or("").to_owned();
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchRefused {
                rule: "scheme",
                host: shown,
                detail: format!("only http and https, not `{}`", url.scheme()),
            });
        }
        let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
            return Err(FetchRefused {
                rule: "no_host",
                host: shown,
                detail: "the URL names no host".into(),
            });
        };
        let (canonical, ip) = match host {
            url::Host::Domain(name) => (canonical_host(name), None),
            url::Host::Ipv4(ip) => (ip.to_string(), Some(IpAddr::V4(ip))),
            url::Host::Ipv6(ip) => (ip.to_string(), Some(IpAddr::V6(ip))),
        };
        if self.allows(&canonical, port) {
            return Ok(());
        }
        if let Some(ip) = ip {
            return match classify(ip) {
                Some(rule) => Err(FetchRefused {
                    rule,
                    host: shown,
                    detail: format!(
                        "{ip} is a {} address; `[fetch] allow_hosts` can allow it",
                        rule.replace('_', "-")
                    ),
                }),
                None => Ok(()),
            };
        }
        if self.allows_name(&canonical) {
            return Err(FetchRefused {
                rule: "allow_hosts_port",
                host: shown,
                detail: format!("`[fetch] allow_hosts` allows `{canonical}` on other ports, not {port}"),
            });
        }
        Ok(())
    }

    /// A resolver that refuses a name when any of its addresses is one the policy refuses.
    pub fn resolver(self: &Arc<Self>) -> Arc<dyn Resolve> {
        Arc::new(ScreeningResolver { guard: self.clone() })
    }

    /// A redirect policy that screens every hop (and stops after `limit`).
    pub fn redirects(self: &Arc<Self>, limit: usize) -> reqwest::redirect::Policy {
        let guard = self.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > limit {
                return attempt.error(format!("more than {limit} redirects"));
            }
            match guard.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        })
    }
}

fn parse_entry(entry: &str) -> Result<Allowed, String> {
    let entry = entry.trim();
    let bad = || format!("`[fetch] allow_hosts` entry `{entry}` is not `host` or `host:port`");
    if entry.is_empty() || entry.contains('/') {
        return Err(bad());
    }
    // `[v6]`, `[v6]:port`, a bare IPv6 address, `host`, `host:port`.
    if let Some(rest) = entry.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or_else(bad)?;
        let ip: Ipv6Addr = ip.parse().map_err(|_| bad())?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(bad)?.parse().map_err(|_| bad())?),
        };
        return Ok(Allowed {
            host: ip.to_string(),
            port,
        });
    }
    if let Ok(ip) = entry.parse::<Ipv6Addr>() {
        return Ok(Allowed {
            host: ip.to_string(),
            port: None,
        });
    }
    let (host, port) = match entry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port.parse::<u16>().map_err(|_| bad())?)),
        None => (entry, None),
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok(Allowed {
        host: canonical_host(host),
        port,
    })
}

/// Why an address is not one an agent may reach, or `None` for a public address.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, d] = ip.octets();
    // Cloud metadata endpoints first: they sit inside the link-local and CGNAT ranges.
    const METADATA: [[u8; 4]; 4] = [
        [169, 254, 169, 254], // AWS, GCP, Azure, OpenStack
        [169, 254, 170, 2],   // AWS ECS task metadata
        [169, 254, 169, 123], // AWS time sync
        [100, 100, 100, 200], // Alibaba Cloud
    ];
    if METADATA.contains(&[a, b, c, d]) {
        return Some("metadata");
    }
    Some(match (a, b) {
        (127, _) => "loopback",
        (0, _) => "unspecified",
        (10, _) | (192, 168) => "private",
        (172, 16..=31) => "private",
        (169, 254) => "link_local",
        (100, 64..=127) => "cgnat",
        (224..=239, _) => "multicast",
        (240..=255, _) => "reserved",
        // IETF protocol assignments (192.0.0.0/24) and benchmarking (198.18.0.0/15).
        (192, 0) if c == 0 => "reserved",
        (198, 18..=19) => "reserved",
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    let embedded = || Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::/96) addresses reach the IPv4 address inside.
    if s[..6] == [0; 6] || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4]) {
        return classify_v4(embedded()).or(Some("reserved"));
    }
    // 6to4 (2002::/16) carries an IPv4 address in its second and third segments.
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2]));
        if let Some(rule) = classify_v4(v4) {
            return Some(rule);
        }
    }
    if s == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] {
        return Some("metadata"); // AWS IMDS over IPv6
    }
    Some(match s[0] {
        x if x & 0xfe00 == 0xfc00 => "unique_local",
        x if x & 0xffc0 == 0xfe80 => "link_local",
        x if x & 0xffc0 == 0xfec0 => "private", // deprecated site-local
        x if x & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    })
}

struct ScreeningResolver {
    guard: Arc<FetchGuard>,
}

impl Resolve for ScreeningResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let host = canonical_host(name.as_str());
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !guard.allows_name(&host) {
                for addr in &addrs {
                    if let Some(rule) = classify(addr.ip()) {
                        return Err(Box::new(FetchRefused {
                            rule,
                            host: host.clone(),
                            detail: format!(
                                "`{host}` resolves to {}, a {} address; `[fetch] allow_hosts` can allow it",
                                addr.ip(),
                                rule.replace('_', "-")
                            ),
                        }) as Box<dyn std::error::Error + Send + Sync>);
                    }
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The refusal inside a reqwest error, when the fetch policy caused it (at the resolver or a redirect).
pub fn refusal_in(error: &reqwest::Error) -> Option<FetchRefused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<FetchRefused>() {
            return Some(refused.clone());
        }
        source = e.source();
    }
    None
}

/// Headers an agent may not set: hop-by-hop ones (RFC 9110 §7.6.1), those its own `Connection` names,
/// `Host`, and the framing the client computes itself.
pub fn drop_agent_only_headers(headers: &mut HeaderMap) {
    const DROPPED: &[&str] = &[
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    ];
    let named: Vec<HeaderName> = headers
        .get_all(reqwest::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in DROPPED {
        headers.remove(*name);
    }
    for name in named {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(guard: &FetchGuard, url: &str) -> Result<(), &'static str> {
        guard.check_url(&url.parse().unwrap()).map_err(|r| r.rule)
    }

    #[test]
    fn every_non_public_range_is_refused_by_its_rule() {
        let guard = FetchGuard::default();
        for (url, rule) in [
            ("http://127.0.0.1:4022/metrics", "loopback"),
            ("http://127.9.9.9/", "loopback"),
            ("http://0x7f.1/", "loopback"),
            ("http://2130706433/", "loopback"),
            ("http://[::1]/", "loopback"),
            ("http://[::ffff:127.0.0.1]/", "loopback"),
            ("http://0.0.0.0:80/", "unspecified"),
            ("http://[::]/", "unspecified"),
            ("http://10.1.2.3/", "private"),
            ("http://172.16.0.1/", "private"),
            ("http://172.31.255.255/", "private"),
            ("http://192.168.1.1/", "private"),
            ("http://169.254.169.254/latest/meta-data/", "metadata"),
            ("http://[fd00:ec2::254]/", "metadata"),
            ("http://100.100.100.200/", "metadata"),
            ("http://[::ffff:169.254.169.254]/", "metadata"),
            ("http://169.254.1.1/", "link_local"),
            ("http://[fe80::1]/", "link_local"),
            ("http://100.64.0.1/", "cgnat"),
            ("http://100.127.255.254/", "cgnat"),
            ("http://[fd12:3456::1]/", "unique_local"),
            ("http://[fc00::1]/", "unique_local"),
            ("http://[64:ff9b::a00:1]/", "private"),
            ("http://[2002:7f00:1::1]/", "loopback"),
            ("http://224.0.0.1/", "multicast"),
            ("http://255.255.255.255/", "reserved"),
            ("file:///etc/passwd", "scheme"),
        ] {
            assert_eq!(check(&guard, url), Err(rule), "{url}");
        }
        for url in [
            "https://api.example.com/x",
            "http://8.8.8.8/",
            "http://172.32.0.1/",
            "http://100.128.0.1/",
            "http://[2606:4700::1111]/",
        ] {
            assert_eq!(check(&guard, url), Ok(()), "{url}");
        }
    }

    #[test]
    fn allow_hosts_opens_a_host_on_its_ports_only() {
        let mut guard = FetchGuard::new(&[
            "Intranet.Example".into(),
            "wiki.corp:8080".into(),
            "10.0.0.5".into(),
            "[fd00::7]:9000".into(),
        ])
        .unwrap();
        guard.allow_origin_of(&"http://127.0.0.1:4021/weather".parse().unwrap());
        assert_eq!(check(&guard, "http://intranet.example:1234/"), Ok(()));
        assert_eq!(check(&guard, "http://wiki.corp:8080/page"), Ok(()));
        assert_eq!(check(&guard, "http://wiki.corp:8081/"), Err("allow_hosts_port"));
        assert_eq!(check(&guard, "http://10.0.0.5:22/"), Ok(()));
        assert_eq!(check(&guard, "http://[fd00::7]:9000/"), Ok(()));
        assert_eq!(check(&guard, "http://[fd00::7]:9001/"), Err("unique_local"));
        // The devnet allowance is the proxy's port, not the rest of the dev stack on the same address.
        assert_eq!(check(&guard, "http://127.0.0.1:4021/weather/paris"), Ok(()));
        assert_eq!(check(&guard, "http://127.0.0.1:4022/metrics"), Err("loopback"));
        assert_eq!(check(&guard, "http://127.0.0.1:4020/settle"), Err("loopback"));
        assert!(FetchGuard::new(&["http://x/".into()]).is_err());
        assert!(FetchGuard::new(&["host:notaport".into()]).is_err());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_a_refused_address_is_refused_by_the_resolver() {
        let guard = Arc::new(FetchGuard::default());
        let error = guard
            .resolver()
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("refused");
        let refused = error.downcast_ref::<FetchRefused>().expect("a FetchRefused");
        assert_eq!((refused.rule, refused.host.as_str()), ("loopback", "localhost"));
        let allowed = Arc::new(FetchGuard::new(&["localhost".into()]).unwrap());
        let addrs: Vec<SocketAddr> = allowed
            .resolver()
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }

    #[test]
    fn hop_by_hop_headers_and_host_from_the_agent_are_dropped() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "metadata.google.internal"),
            ("connection", "close, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("proxy-authorization", "Basic Zm9v"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("accept", "application/json"),
            ("x-request-id", "42"),
        ] {
            headers.append(name, value.parse().unwrap());
        }
        drop_agent_only_headers(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["accept", "x-request-id"]);
    }
}
