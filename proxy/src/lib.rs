//! The paywall reverse proxy: it will own the routes configuration, the x402 `402` offers for priced routes,
//! the forwarding of paid requests to the upstream API, and settlement only after the upstream succeeded.
