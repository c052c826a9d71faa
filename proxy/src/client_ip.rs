//! Which address a request comes from, for the per-IP rate limits. The socket's peer is the answer unless that
//! peer is one of the configured `trusted_proxies` (IPs or CIDRs): only then is `X-Forwarded-For` read, from
//! the right, skipping the addresses that are themselves trusted proxies; the first one that is not is the
//! client. Everything left of it was written by the client and is never believed, so a spoofed header from an
//! untrusted peer changes nothing.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;
use serde::Deserialize;

/// The peers whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("trusted_proxies: `{0}` is not an IP address or a CIDR block (10.0.0.0/8)")]
pub struct TrustedProxiesError(String);

impl TryFrom<Vec<String>> for TrustedProxies {
    type Error = TrustedProxiesError;

    fn try_from(entries: Vec<String>) -> Result<Self, Self::Error> {
        Self::parse(&entries)
    }
}

impl TrustedProxies {
    /// `["127.0.0.1", "10.0.0.0/8", "::1"]`: plain addresses are single-address blocks.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, TrustedProxiesError> {
        let nets = entries
            .iter()
            .map(|entry| {
                let text = entry.as_ref().trim();
                text.parse::<IpNet>()
                    .map(|net| net.trunc())
                    .or_else(|_| text.parse::<IpAddr>().map(|ip| IpNet::from(ip.to_canonical())))
                    .map_err(|_| TrustedProxiesError(text.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies { nets })
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }
}

/// The client's address: the socket's peer, or — when that peer is a trusted proxy — the right-most
/// `X-Forwarded-For` address that is not itself trusted. If every forwarded address is trusted, the left-most
/// one; if an entry cannot be read, the trusted hop just right of it (the last address that can be believed).
pub fn client_ip(socket: SocketAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = socket.ip().to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    // Several headers read as one list, in order (RFC 9110 §5.3).
    let hops = headers.get_all("x-forwarded-for").iter().rev().flat_map(|value| {
        value
            .to_str()
            .map(|text| text.rsplit(',').map(parse_hop).collect::<Vec<_>>())
            .unwrap_or_else(|_| vec![None])
    });
    let mut nearest = peer;
    for hop in hops {
        let Some(ip) = hop else {
            return nearest;
        };
        if !trusted.contains(ip) {
            return ip;
        }
        nearest = ip;
    }
    nearest
}

/// One `X-Forwarded-For` entry: `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:443` or `203.0.113.7:5000`.
fn parse_hop(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> TrustedProxies {
        TrustedProxies::parse(&["127.0.0.1", "10.0.0.0/8", "::1"]).unwrap()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn from(peer: &str, forwarded: &[&str]) -> IpAddr {
        client_ip(peer.parse().unwrap(), &headers(forwarded), &trusted())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        assert_eq!(from("203.0.113.7:4000", &[]), ip("203.0.113.7"));
        assert_eq!(from("203.0.113.7:4000", &["198.51.100.1"]), ip("203.0.113.7"));
        assert_eq!(from("203.0.113.7:4000", &["10.0.0.1, 127.0.0.1"]), ip("203.0.113.7"));
        // Nothing is trusted by default.
        let none = TrustedProxies::default();
        assert_eq!(
            client_ip("127.0.0.1:1".parse().unwrap(), &headers(&["198.51.100.1"]), &none),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        assert_eq!(from("127.0.0.1:4000", &["198.51.100.1"]), ip("198.51.100.1"));
        // The client prepended a lie; the proxies appended what they saw.
        assert_eq!(
            from("127.0.0.1:4000", &["1.2.3.4, 198.51.100.1, 10.1.2.3"]),
            ip("198.51.100.1")
        );
        // Several headers are one list.
        assert_eq!(
            from("10.0.0.5:4000", &["1.2.3.4", "198.51.100.1", "10.1.2.3"]),
            ip("198.51.100.1")
        );
        assert_eq!(from("[::1]:4000", &["[2001:db8::1]:443"]), ip("2001:db8::1"));
        assert_eq!(from("127.0.0.1:4000", &["198.51.100.1:5000"]), ip("198.51.100.1"));
        // An IPv4 peer seen on a dual-stack socket is still trusted.
        assert_eq!(from("[::ffff:127.0.0.1]:4000", &["198.51.100.1"]), ip("198.51.100.1"));
    }

    #[test]
    fn without_a_usable_header_the_nearest_believable_address_stands() {
        assert_eq!(from("127.0.0.1:4000", &[]), ip("127.0.0.1"));
        assert_eq!(from("127.0.0.1:4000", &["10.0.0.9, 10.0.0.8"]), ip("10.0.0.9"));
        assert_eq!(
            from("127.0.0.1:4000", &["198.51.100.1, garbage, 10.0.0.8"]),
            ip("10.0.0.8")
        );
        assert_eq!(from("127.0.0.1:4000", &["garbage"]), ip("127.0.0.1"));
    }

    #[test]
    fn entries_are_addresses_or_blocks() {
        let parsed = TrustedProxies::parse(&["192.168.1.7/16"]).unwrap();
        assert!(parsed.contains(ip("192.168.200.1")));
        assert!(!parsed.contains(ip("192.169.0.1")));
        assert_eq!(
            TrustedProxies::parse(&["10.0.0.0/33"]),
            Err(TrustedProxiesError("10.0.0.0/33".into()))
        );
        assert!(TrustedProxies::parse(&["localhost"]).is_err());
        let err = crate::config::ProxyConfig::from_toml(
            "trusted_proxies = [\"nope\"]\n[facilitator]\nembedded = true\n",
            |_| None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("trusted_proxies"), "{err}");
    }
}
