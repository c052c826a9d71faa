//! Who may reach the facilitator. It signs and pays gas for every settlement it accepts, so it refuses to
//! listen on a non-loopback address without an API key unless the operator said so
//! (`--allow-unauthenticated`, or `security.allow_unauthenticated`).

use std::net::SocketAddr;

/// Serving `addr` with these settings would expose an unauthenticated settle endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to listen on {addr} with no API key: anyone who can reach it could make this facilitator pay gas \
     for settlements; configure api keys, listen on a loopback address, or start with --allow-unauthenticated"
)]
pub struct Unauthenticated {
    pub addr: SocketAddr,
}

/// Whether serving `addr` is allowed.
pub fn check(addr: SocketAddr, has_api_keys: bool, allow_unauthenticated: bool) -> Result<(), Unauthenticated> {
    if addr.ip().is_loopback() || has_api_keys || allow_unauthenticated {
        Ok(())
    } else {
        Err(Unauthenticated { addr })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_may_go_without_keys() {
        let public: SocketAddr = "0.0.0.0:4020".parse().unwrap();
        let lan: SocketAddr = "192.168.1.5:4020".parse().unwrap();
        let v6_any: SocketAddr = "[::]:4020".parse().unwrap();
        for addr in [public, lan, v6_any] {
            assert_eq!(check(addr, false, false), Err(Unauthenticated { addr }));
            assert_eq!(check(addr, true, false), Ok(()));
            assert_eq!(check(addr, false, true), Ok(()));
        }
        for loopback in ["127.0.0.1:4020", "[::1]:4020", "127.9.9.9:1"] {
            assert_eq!(check(loopback.parse().unwrap(), false, false), Ok(()));
        }
    }
}
