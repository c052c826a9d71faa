//! The routes, compiled and validated: each `[[route]]` becomes a [`Route`] with its path pattern, upstream,
//! and — for priced routes — the exact payment requirements it sells (network, asset and its EIP-712 domain,
//! amount, payTo), built once at load so a request only matches and clones, and the fingerprint of what it sells
//! that binds its access tokens. Every mistake in the file names the route and the key. First match wins;
//! route names are unique.

use std::collections::HashSet;
use std::sync::Arc;

use alloy::primitives::{Address, U256};
use axum::http::Method;
use protocol::money;
use protocol::wire::{Extra, v2};
use protocol::{Asset, Network, Networks};

use crate::access_token;
use crate::config::{AccessConfig, ConfigError, PriceConfig, ProxyConfig, RouteConfig, SettleTiming, check_http_url};
use crate::path_pattern::PathPattern;
use crate::route_index::RouteIndex;

/// What a priced route sells, per request.
#[derive(Debug, Clone)]
pub struct Pricing {
    /// The v2 requirement (scheme `exact`), ready to put in `accepts`.
    pub requirement: v2::PaymentRequirements,
    /// The network's v1 name, for v1 offers and payments.
    pub v1_network: String,
    pub asset: Asset,
    pub settle: SettleTiming,
    pub access: Option<AccessWindow>,
    /// What the route sells (host, path pattern, amount, network, asset, payTo) as one hash: access tokens
    /// carry it, so a token is good only where the same thing is sold (see [`access_token::route_fingerprint`]).
    pub fingerprint: String,
    /// Its 402 answers already built, per resource URL and refusal (the route is rebuilt on reload, and the
    /// cache with it).
    pub offers: crate::offer::OfferCache,
}

/// What one payment buys on a route with an access window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessWindow {
    Seconds(u64),
    Calls(u32),
}

#[derive(Debug, Clone)]
pub struct Route {
    /// Name for logs, metrics and tokens (shared, so a metric label costs no allocation).
    pub name: Arc<str>,
    host: Option<String>,
    pattern: PathPattern,
    methods: Vec<Method>,
    /// The upstream base up to its path, without a trailing slash (`http://api:8080/v1`).
    pub upstream: String,
    rewrite: Option<String>,
    /// `None`: a free route, forwarded untouched.
    pub pricing: Option<Pricing>,
    pub description: String,
    pub mime_type: String,
    pub rate_limit_per_second: Option<u32>,
}

/// A matched route and the upstream URL the request goes to.
pub struct Matched<'a> {
    /// Position in the table (per-route limiters are kept by it).
    pub index: usize,
    pub route: &'a Route,
    /// The absolute URL the request goes to.
    pub upstream_url: String,
}

#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    index: RouteIndex,
    /// For unmatched requests when they pass through.
    pub unmatched_upstream: Option<String>,
}

impl RouteTable {
    /// Compiles `config.routes` against `networks`. Errors name the route (`route[2] "/weather"`) and the key.
    pub fn build(config: &ProxyConfig, networks: &Networks) -> Result<Arc<Self>, ConfigError> {
        let mut routes = Vec::with_capacity(config.routes.len());
        let mut names = HashSet::with_capacity(config.routes.len());
        for (index, raw) in config.routes.iter().enumerate() {
            let name = raw.name.as_deref().unwrap_or(&raw.path);
            let label = format!("route[{index}] \"{name}\"");
            if !names.insert(name) {
                return Err(ConfigError::invalid(
                    format!("{label}.name"),
                    format!(
                        "an earlier route is already called `{name}`; names must be unique (the path is the name when `name` is absent)"
                    ),
                ));
            }
            routes.push(compile(config, networks, raw, &label)?);
        }
        let unmatched_upstream = match (&config.unmatched, &config.unmatched_upstream) {
            (crate::config::Unmatched::Pass, Some(url)) => Some(base_of(&check_http_url("unmatched_upstream", url)?)),
            _ => None,
        };
        Ok(Arc::new(RouteTable {
            index: RouteIndex::build(routes.iter().map(|r| &r.pattern)),
            routes,
            unmatched_upstream,
        }))
    }

    /// The first route matching host, method and path, with its upstream URL (query kept). The index walks
    /// the path's segments; each candidate is checked exactly, lowest position first.
    pub fn find(&self, host: Option<&str>, method: &Method, path: &str, query: Option<&str>) -> Option<Matched<'_>> {
        let host = host.map(|h| h.split(':').next().unwrap_or(h));
        // The index only offers a candidate below the best so far, so the last one accepted wins: keep its
        // captures rather than matching the winner again.
        let mut captures = None;
        let index = self.index.first(path, &mut |i| {
            let route = &self.routes[i];
            if !route.serves(host, method) {
                return false;
            }
            captures = route.pattern.matches(path);
            captures.is_some()
        })?;
        let (route, captures) = (&self.routes[index], captures?);
        let upstream_url = match &route.rewrite {
            Some(template) => join(&route.upstream, &captures.fill(template), query),
            None => join(&route.upstream, path, query),
        };
        Some(Matched {
            index,
            upstream_url,
            route,
        })
    }

    /// The first match by a scan of every route in order: what [`RouteTable::find`] must agree with.
    #[cfg(test)]
    fn find_by_scan(&self, host: Option<&str>, method: &Method, path: &str) -> Option<usize> {
        let host = host.map(|h| h.split(':').next().unwrap_or(h));
        self.routes
            .iter()
            .position(|r| r.serves(host, method) && r.pattern.matches(path).is_some())
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

impl Route {
    /// Whether the route is for this host (port removed) and method; the path is the index's part.
    fn serves(&self, host: Option<&str>, method: &Method) -> bool {
        let host_ok = match &self.host {
            Some(want) => host.is_some_and(|h| h.eq_ignore_ascii_case(want)),
            None => true,
        };
        host_ok && self.allows(method)
    }

    /// Empty method list: any. A `HEAD` matches wherever `GET` does.
    fn allows(&self, method: &Method) -> bool {
        self.methods.is_empty()
            || self.methods.contains(method)
            || (method == Method::HEAD && self.methods.contains(&Method::GET))
    }
}

/// An upstream URL as a base for [`join`]: scheme, authority and path, without a trailing slash.
pub fn base_of(url: &url::Url) -> String {
    url[..url::Position::AfterPath].trim_end_matches('/').to_owned()
}

/// The upstream base, then the request path, then the query: one allocation.
pub fn join(base: &str, path: &str, query: Option<&str>) -> String {
    let mut url = String::with_capacity(base.len() + path.len() + query.map_or(0, |q| q.len() + 1));
    url.push_str(base);
    url.push_str(path);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

fn compile(config: &ProxyConfig, networks: &Networks, raw: &RouteConfig, label: &str) -> Result<Route, ConfigError> {
    let key = |k: &str| format!("{label}.{k}");
    let pattern = PathPattern::parse(&raw.path).map_err(|m| ConfigError::invalid(key("path"), m))?;
    let upstream = check_http_url(&key("upstream"), &raw.upstream)?;
    if let Some(rewrite) = &raw.rewrite {
        pattern
            .check_template(rewrite)
            .map_err(|m| ConfigError::invalid(key("rewrite"), m))?;
    }
    let methods = raw
        .methods
        .iter()
        .map(|m| {
            Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| ConfigError::invalid(key("methods"), format!("`{m}` is not an HTTP method")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let price = match (&raw.price, raw.price_atomic) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                key("price"),
                "set price (an amount of the asset) or price_atomic (atomic units), not both",
            ));
        }
        (Some(amount), None) => Some(Price::Amount(amount)),
        (None, Some(units)) => Some(Price::Atomic(units)),
        (None, None) => None,
    };
    let pricing = match (raw.free, price) {
        (true, Some(_)) => {
            return Err(ConfigError::invalid(key("price"), "a free route has no price"));
        }
        (true, None) => None,
        (false, None) => {
            return Err(ConfigError::invalid(
                key("price"),
                "missing (set a price, or free = true)",
            ));
        }
        (false, Some(price)) => Some(pricing(config, networks, raw, price, &key)?),
    };
    if raw.free && raw.access.is_some() {
        return Err(ConfigError::invalid(key("access"), "a free route sells no access"));
    }
    if raw.rate_limit_per_second == Some(0) {
        return Err(ConfigError::invalid(key("rate_limit_per_second"), "must be at least 1"));
    }
    Ok(Route {
        name: raw.name.as_deref().unwrap_or(&raw.path).into(),
        host: raw.host.clone(),
        pattern,
        methods,
        upstream: base_of(&upstream),
        rewrite: raw.rewrite.clone(),
        pricing,
        description: raw.description.clone().unwrap_or_default(),
        mime_type: raw.mime_type.clone().unwrap_or_else(|| "application/json".into()),
        rate_limit_per_second: raw.rate_limit_per_second,
    })
}

/// `price` or `price_atomic`, whichever the route set.
enum Price<'a> {
    Amount(&'a PriceConfig),
    Atomic(u64),
}

fn pricing(
    config: &ProxyConfig,
    networks: &Networks,
    raw: &RouteConfig,
    price: Price<'_>,
    key: &dyn Fn(&str) -> String,
) -> Result<Pricing, ConfigError> {
    let defaults = &config.defaults;
    let network_name = raw
        .network
        .as_ref()
        .or(defaults.network.as_ref())
        .ok_or_else(|| ConfigError::invalid(key("network"), "missing (set it here or in [defaults])"))?;
    let network: &Network = networks
        .get(network_name)
        .map_err(|e| ConfigError::invalid(key("network"), e.to_string()))?;
    let asset_name = raw.asset.as_ref().or(defaults.asset.as_ref());
    let asset = match asset_name {
        None => network.assets.first(),
        Some(name) => match name.parse::<Address>() {
            Ok(address) => network.asset(address),
            Err(_) => network.asset_by_symbol(name),
        },
    }
    .ok_or_else(|| {
        ConfigError::invalid(
            key("asset"),
            format!(
                "`{}` is not an asset of {}",
                asset_name.map(String::as_str).unwrap_or("(default)"),
                network.name
            ),
        )
    })?
    .clone();
    let pay_to_text = raw
        .pay_to
        .as_ref()
        .or(defaults.pay_to.as_ref())
        .ok_or_else(|| ConfigError::invalid(key("pay_to"), "missing (set it here or in [defaults])"))?;
    let pay_to: Address = pay_to_text
        .parse()
        .map_err(|_| ConfigError::invalid(key("pay_to"), format!("`{pay_to_text}` is not an address")))?;
    if pay_to == Address::ZERO {
        return Err(ConfigError::invalid(key("pay_to"), "the zero address cannot be paid"));
    }
    let (amount, price_key) = match price {
        Price::Amount(amount) => (
            amount
                .units_text()
                .and_then(|text| money::parse_units(&text, asset.decimals).map_err(|e| e.to_string()))
                .map_err(|e| ConfigError::invalid(key("price"), e))?,
            "price",
        ),
        Price::Atomic(units) => (U256::from(units), "price_atomic"),
    };
    if amount.is_zero() {
        return Err(ConfigError::invalid(
            key(price_key),
            "must be above zero (use free = true)",
        ));
    }
    let max_timeout_seconds = raw.max_timeout_seconds.or(defaults.max_timeout_seconds).unwrap_or(60);
    if max_timeout_seconds < 10 {
        return Err(ConfigError::invalid(
            key("max_timeout_seconds"),
            "must be at least 10 (buyers need time to sign and send)",
        ));
    }
    // The authorization must still be valid when it is settled: after the upstream answered and the
    // facilitator's settle call returned (`timeout_ms` is the settle budget, remote or embedded).
    // A deferred payment also waits for the background settler's next round.
    let settler_wait = match raw.settle {
        SettleTiming::Deferred => config.deferred.flush_interval_ms,
        SettleTiming::After | SettleTiming::Before => 0,
    };
    let needed_ms = config
        .upstream_timeout_ms
        .saturating_add(config.facilitator.timeout_ms)
        .saturating_add(settler_wait);
    let needed = needed_ms.div_ceil(1000);
    if max_timeout_seconds < needed {
        return Err(ConfigError::invalid(
            key("max_timeout_seconds"),
            format!(
                "{max_timeout_seconds} is shorter than upstream_timeout_ms ({}) + [facilitator] timeout_ms ({}): \
                 set at least {needed}, or the payment can expire before it is settled",
                config.upstream_timeout_ms, config.facilitator.timeout_ms
            ),
        ));
    }
    let access = raw.access.map(|a| access_window(a, key)).transpose()?;
    if access.is_some() && raw.settle == SettleTiming::Deferred {
        return Err(ConfigError::invalid(
            key("settle"),
            "\"deferred\" cannot sell an access window (a token would be issued before the payment settles)",
        ));
    }
    if access.is_some() && config.access_token_secrets.is_empty() {
        return Err(ConfigError::invalid(
            key("access"),
            "needs access_token_secrets (or access_token_secret, or NERDCABAL_PROXY_TOKEN_SECRET)",
        ));
    }
    let requirement = v2::PaymentRequirements {
        scheme: protocol::SCHEME_EXACT.into(),
        network: network.caip2(),
        amount,
        asset: asset.address,
        pay_to,
        max_timeout_seconds,
        extra: Some(Extra::eip712(&asset.eip712_name, &asset.eip712_version)),
    };
    Ok(Pricing {
        fingerprint: access_token::route_fingerprint(raw.host.as_deref(), &raw.path, &requirement),
        requirement,
        v1_network: network.name.clone(),
        asset,
        settle: raw.settle,
        access,
        offers: crate::offer::OfferCache::default(),
    })
}

fn access_window(access: AccessConfig, key: &dyn Fn(&str) -> String) -> Result<AccessWindow, ConfigError> {
    match (access.seconds, access.calls) {
        (Some(s), None) if s > 0 => Ok(AccessWindow::Seconds(s)),
        (None, Some(c)) if c > 0 => Ok(AccessWindow::Calls(c)),
        _ => Err(ConfigError::invalid(
            key("access"),
            "set exactly one of seconds or calls, above zero",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAY_TO: &str = "0x000000000000000000000000000000000000bEEF";

    fn table(routes: &str) -> Result<Arc<RouteTable>, ConfigError> {
        let text = format!(
            "access_token_secret = \"{}\"\n[facilitator]\nembedded = true\n[defaults]\nnetwork = \"eip155:5042002\"\npay_to = \"{PAY_TO}\"\n{routes}",
            "k".repeat(32)
        );
        let config = ProxyConfig::from_toml(&text, |_| None)?;
        RouteTable::build(&config, &Networks::builtin())
    }

    #[test]
    fn a_priced_route_carries_its_requirement() {
        let t = table("[[route]]\npath = \"/weather/:city\"\nupstream = \"http://127.0.0.1:9/api\"\nprice = \"$0.01\"\nmethods = [\"get\"]\n")
            .unwrap();
        let m = t.find(None, &Method::GET, "/weather/paris", Some("u=c")).unwrap();
        let pricing = m.route.pricing.as_ref().unwrap();
        assert_eq!(pricing.requirement.amount, U256::from(10_000));
        assert_eq!(pricing.requirement.network, "eip155:5042002");
        assert_eq!(pricing.requirement.asset, protocol::network::ARC_USDC);
        assert_eq!(pricing.requirement.extra, Some(Extra::eip712("USDC", "2")));
        assert_eq!(m.upstream_url, "http://127.0.0.1:9/api/weather/paris?u=c");
        assert!(t.find(None, &Method::HEAD, "/weather/paris", None).is_some());
        assert!(t.find(None, &Method::POST, "/weather/paris", None).is_none());
        assert!(t.find(None, &Method::GET, "/weather", None).is_none());
    }

    #[test]
    fn first_match_wins_and_hosts_and_rewrites_apply() {
        let t = table(
            "[[route]]\nname = \"a\"\nhost = \"api.example.com\"\npath = \"/x/*\"\nupstream = \"http://u\"\nfree = true\nrewrite = \"/v2/*\"\n\
             [[route]]\nname = \"b\"\npath = \"/x/*\"\nupstream = \"http://u\"\nprice_atomic = 5\n",
        )
        .unwrap();
        let a = t
            .find(Some("API.example.com:443"), &Method::GET, "/x/y/z", None)
            .unwrap();
        assert_eq!(&*a.route.name, "a");
        assert!(a.route.pricing.is_none());
        assert_eq!(a.upstream_url, "http://u/v2/y/z");
        let b = t.find(Some("other"), &Method::GET, "/x/y", None).unwrap();
        assert_eq!(&*b.route.name, "b");
        assert_eq!(b.route.pricing.as_ref().unwrap().requirement.amount, U256::from(5));
    }

    #[test]
    fn mistakes_name_the_route_and_key() {
        let cases = [
            ("network = \"eip155:1\"\nprice = 1", "route[0] \"/p\".network"),
            ("asset = \"DAI\"\nprice = 1", "route[0] \"/p\".asset"),
            ("pay_to = \"0x12\"\nprice = 1", "route[0] \"/p\".pay_to"),
            ("price = \"ten\"", "route[0] \"/p\".price"),
            ("price = \"$0.0000001\"", "route[0] \"/p\".price"),
            ("price = 0", "route[0] \"/p\".price"),
            ("", "route[0] \"/p\".price"),
            ("free = true\nprice = 1", "route[0] \"/p\".price"),
            ("price = 1\nmethods = [\"G T\"]", "route[0] \"/p\".methods"),
            ("price = 1\nrewrite = \"/:nope\"", "route[0] \"/p\".rewrite"),
            ("price = 1\naccess = { seconds = 0 }", "route[0] \"/p\".access"),
            (
                "price = 1\nmax_timeout_seconds = 1",
                "route[0] \"/p\".max_timeout_seconds",
            ),
        ];
        for (extra, want) in cases {
            let err = table(&format!("[[route]]\npath = \"/p\"\nupstream = \"http://u\"\n{extra}\n")).unwrap_err();
            assert!(err.to_string().starts_with(want), "{extra:?}: {err}");
        }
        let err = table("[[route]]\npath = \"/p\"\nupstream = \"not a url\"\nprice = 1\n").unwrap_err();
        assert!(err.to_string().starts_with("route[0] \"/p\".upstream"), "{err}");
        let err = table("[[route]]\npath = \"/p\"\nupstream = \"http://u\"\nprice_atomic = 0\n").unwrap_err();
        assert!(err.to_string().starts_with("route[0] \"/p\".price_atomic"), "{err}");
        let err =
            table("[[route]]\npath = \"/p\"\nupstream = \"http://u\"\nprice = 1\nprice_atomic = 1\n").unwrap_err();
        assert!(err.to_string().starts_with("route[0] \"/p\".price"), "{err}");
        let err =
            table("[[route]]\npath = \"/p\"\nupstream = \"http://u\"\nfree = true\nprice_atomic = 1\n").unwrap_err();
        assert!(err.to_string().starts_with("route[0] \"/p\".price"), "{err}");
    }

    fn amount(price: &str) -> U256 {
        let t = table(&format!("[[route]]\npath = \"/p\"\nupstream = \"http://u\"\n{price}\n")).unwrap();
        t.routes()[0].pricing.as_ref().unwrap().requirement.amount
    }

    #[test]
    fn a_price_is_an_amount_of_the_asset_and_price_atomic_is_atomic() {
        let five_dollars = U256::from(5_000_000);
        assert_eq!(amount("price = 5"), five_dollars);
        assert_eq!(amount("price = \"5\""), five_dollars);
        assert_eq!(amount("price = \"$5\""), five_dollars);
        assert_eq!(amount("price = 5.0"), five_dollars);
        assert_eq!(amount("price = 0.5"), U256::from(500_000));
        assert_eq!(amount("price = \"0.01\""), U256::from(10_000));
        assert_eq!(amount("price = 0.01"), U256::from(10_000));
        assert_eq!(amount("price_atomic = 10000"), U256::from(10_000));
        for bad in [
            "price = -1",
            "price = 0.0000001",
            "price = \"10000 atomic\"",
            "price = nan",
        ] {
            let err = table(&format!("[[route]]\npath = \"/p\"\nupstream = \"http://u\"\n{bad}\n")).unwrap_err();
            assert!(err.to_string().starts_with("route[0] \"/p\".price:"), "{bad}: {err}");
        }
    }

    #[test]
    fn route_names_are_unique() {
        let err = table(
            "[[route]]\nname = \"w\"\nhost = \"a.test\"\npath = \"/w\"\nupstream = \"http://u\"\nfree = true\n\
             [[route]]\nname = \"w\"\nhost = \"b.test\"\npath = \"/w\"\nupstream = \"http://u\"\nfree = true\n",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("route[1] \"w\".name:"), "{err}");
        // Without a name the path is the name.
        let err = table(
            "[[route]]\nhost = \"a.test\"\npath = \"/w\"\nupstream = \"http://u\"\nfree = true\n\
             [[route]]\nhost = \"b.test\"\npath = \"/w\"\nupstream = \"http://u\"\nfree = true\n",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("route[1] \"/w\".name:"), "{err}");
    }

    #[test]
    fn a_payment_must_outlive_the_upstream_and_the_settlement() {
        // Defaults: 30 s upstream + 15 s facilitator = 45 s.
        let route = |timeout: u64| {
            format!("[[route]]\npath = \"/p\"\nupstream = \"http://u\"\nprice = 1\nmax_timeout_seconds = {timeout}\n")
        };
        let err = table(&route(44)).unwrap_err();
        assert!(
            err.to_string().starts_with("route[0] \"/p\".max_timeout_seconds:"),
            "{err}"
        );
        assert!(err.to_string().contains("at least 45"), "{err}");
        assert!(table(&route(45)).is_ok());
        // Rounded up to whole seconds, with the remote facilitator's timeout.
        let text = format!(
            "upstream_timeout_ms = 9001\n[facilitator]\nurl = \"http://f\"\ntimeout_ms = 1000\n[defaults]\n\
             network = \"eip155:5042002\"\npay_to = \"{PAY_TO}\"\nmax_timeout_seconds = 10\n\
             [[route]]\npath = \"/p\"\nupstream = \"http://u\"\nprice = 1\n"
        );
        let config = ProxyConfig::from_toml(&text, |_| None).unwrap();
        let err = RouteTable::build(&config, &Networks::builtin()).unwrap_err();
        assert!(err.to_string().contains("at least 11"), "{err}");
    }

    #[test]
    fn a_deferred_route_waits_for_the_settler_and_sells_no_window() {
        let route = |extra: &str| {
            format!(
                "[deferred]\nflush_interval_ms = 5000\n[[route]]\npath = \"/p\"\nupstream = \"http://u\"\nprice = 1\nsettle = \"deferred\"\n{extra}"
            )
        };
        // 30 s upstream + 15 s facilitator + 5 s until the settler's round.
        let err = table(&route("max_timeout_seconds = 49\n")).unwrap_err();
        assert!(err.to_string().contains("at least 50"), "{err}");
        let t = table(&route("max_timeout_seconds = 50\n")).unwrap();
        assert_eq!(t.routes()[0].pricing.as_ref().unwrap().settle, SettleTiming::Deferred);
        let err = table(&route("max_timeout_seconds = 60\naccess = { seconds = 60 }\n")).unwrap_err();
        assert!(err.to_string().starts_with("route[0] \"/p\".settle:"), "{err}");
    }

    #[test]
    fn the_fingerprint_follows_what_is_sold_not_the_name() {
        let fingerprint = |route: &str| {
            let t = table(route).unwrap();
            t.routes()[0].pricing.as_ref().unwrap().fingerprint.clone()
        };
        let base = "[[route]]\nname = \"n\"\nhost = \"a.test\"\npath = \"/w\"\nupstream = \"http://u\"\nprice = 1\n";
        let same = fingerprint(base);
        assert_eq!(fingerprint(&base.replace("name = \"n\"", "name = \"renamed\"")), same);
        assert_eq!(fingerprint(&base.replace("http://u", "http://elsewhere")), same);
        assert_eq!(
            fingerprint(&base.replace("a.test", "A.TEST")),
            same,
            "hosts match case-insensitively"
        );
        for changed in [
            base.replace("a.test", "b.test"),
            base.replace("host = \"a.test\"\n", ""),
            base.replace("/w", "/x"),
            base.replace("price = 1", "price = 2"),
            base.replace(
                "price = 1",
                &format!("price = 1\npay_to = \"{}\"", Address::repeat_byte(7)),
            ),
            base.replace("price = 1", "price = 1\nnetwork = \"arc\""),
        ] {
            assert_ne!(fingerprint(&changed), same, "{changed}");
        }
    }

    fn pattern_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let segment = prop_oneof![Just("a"), Just("b"), Just("c"), Just(":p"), Just(":q")];
        (proptest::collection::vec(segment, 0..4), any::<bool>()).prop_map(|(parts, rest)| {
            let mut pattern = String::new();
            for (i, part) in parts.iter().enumerate() {
                // A parameter name is used once per pattern.
                let part = if part.starts_with(':') {
                    format!("{part}{i}")
                } else {
                    (*part).to_owned()
                };
                pattern.push('/');
                pattern.push_str(&part);
            }
            if rest {
                pattern.push_str("/*");
            }
            if pattern.is_empty() { "/".to_owned() } else { pattern }
        })
    }

    proptest::proptest! {
        #[test]
        fn the_index_finds_what_a_scan_finds(
            patterns in proptest::collection::vec((pattern_strategy(), proptest::option::of(proptest::prop_oneof![proptest::strategy::Just("x.example"), proptest::strategy::Just("y.example")]), proptest::bool::ANY), 1..12),
            paths in proptest::collection::vec("(/(a|b|c|d|)){0,5}/?", 1..20),
            host in proptest::option::of(proptest::prop_oneof![proptest::strategy::Just("x.example"), proptest::strategy::Just("Y.example:8080")]),
        ) {
            let mut routes = String::new();
            for (i, (pattern, route_host, post_only)) in patterns.iter().enumerate() {
                routes.push_str(&format!("[[route]]\nname = \"r{i}\"\npath = \"{pattern}\"\nupstream = \"http://u\"\nfree = true\n"));
                if let Some(h) = route_host {
                    routes.push_str(&format!("host = \"{h}\"\n"));
                }
                if *post_only {
                    routes.push_str("methods = [\"post\"]\n");
                }
            }
            let t = table(&routes).unwrap();
            for path in &paths {
                let path = if path.is_empty() { "/" } else { path.as_str() };
                for method in [Method::GET, Method::POST] {
                    let found = t.find(host, &method, path, None).map(|m| m.index);
                    proptest::prop_assert_eq!(found, t.find_by_scan(host, &method, path), "path {} method {}", path, method);
                }
            }
        }
    }

    #[test]
    fn a_lookup_among_ten_thousand_routes_finds_the_right_one() {
        let mut routes = String::new();
        for i in 0..10_000 {
            routes.push_str(&format!(
                "[[route]]\npath = \"/api/v{}/item{i}/:id\"\nupstream = \"http://u\"\nfree = true\n",
                i % 7
            ));
        }
        routes.push_str("[[route]]\npath = \"/*\"\nupstream = \"http://fallback\"\nfree = true\n");
        let t = table(&routes).unwrap();
        let m = t.find(None, &Method::GET, "/api/v2/item9998/42", None).unwrap();
        assert_eq!(m.index, 9998);
        assert_eq!(m.upstream_url, "http://u/api/v2/item9998/42");
        assert_eq!(
            t.find(None, &Method::GET, "/api/v4/item9998/42", None).unwrap().index,
            10_000
        );
    }
}
