//! Beyond the reference: access windows (time and calls) bought with one payment, rate limits, the embedded
//! facilitator, and the admin listener's metrics and health.

mod common;

use alloy::primitives::U256;
use common::{Harness, Link, receipt};
use serde_json::Value;

const ROUTES: &str = r#"
[[route]]
name = "hour"
path = "/hour"
upstream = "{upstream}"
rewrite = "/data"
price = "$0.01"
access = { seconds = 3600 }

[[route]]
name = "three"
path = "/three"
upstream = "{upstream}"
rewrite = "/data"
price = "$0.01"
access = { calls = 3 }

[[route]]
name = "data"
path = "/data"
upstream = "{upstream}"
price = "$0.01"

[[route]]
name = "limited"
path = "/limited"
upstream = "{upstream}"
free = true
rate_limit_per_second = 1
"#;

const CENT: u64 = 10_000;

#[tokio::test]
async fn one_payment_buys_an_hour_of_access_by_token_or_cookie() {
    let h = Harness::start(ROUTES, Link::Real).await;
    let seller_before = h.balance(h.seller).await;
    let offer = h.offer("/hour").await;
    let paid = h.get_paid("/hour", &h.pay(&offer).await).await;
    assert_eq!(paid.status(), 200);
    assert!(receipt(paid.headers()).unwrap().success);
    let token = paid.headers()["x-access-token"].to_str().unwrap().to_owned();
    let cookie = paid.headers()[reqwest::header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("Max-Age=3600") && cookie.contains("HttpOnly"),
        "{cookie}"
    );

    for _ in 0..3 {
        let again = h.http.get(h.url("/hour")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(again.status(), 200);
        assert!(receipt(again.headers()).is_none(), "no new settlement");
    }
    let cookie_pair = cookie.split(';').next().unwrap().to_owned();
    let by_cookie = h
        .http
        .get(h.url("/hour"))
        .header("cookie", cookie_pair)
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);
    assert_eq!(h.upstream.calls("/data"), 5);
    // The bearer token is ours: it never reached the upstream.
    let with_bearer = h
        .upstream
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.headers.contains_key("authorization"))
        .count();
    assert_eq!(with_bearer, 0);
    assert_eq!(h.balance(h.seller).await, seller_before + U256::from(CENT), "paid once");

    // A token for another route, or a tampered one, buys nothing.
    let other = h.http.get(h.url("/three")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(other.status(), 402);
    let body: Value = other.json().await.unwrap();
    assert_eq!(body["reason"], "access_token_invalid", "{body}");
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    let forged = h.http.get(h.url("/hour")).bearer_auth(&tampered).send().await.unwrap();
    assert_eq!(forged.status(), 402);
}

#[tokio::test]
async fn one_payment_buys_a_number_of_calls_counted_in_the_state_database() {
    let dir = common::temp_dir("calls");
    let url = format!("sqlite://{}", dir.join("state.db").display());
    let h = Harness::start_with(&format!("state_database = \"{url}\""), ROUTES, Link::Real).await;
    let offer = h.offer("/three").await;
    let paid = h.get_paid("/three", &h.pay(&offer).await).await;
    assert_eq!(paid.status(), 200);
    let token = paid.headers()["x-access-token"].to_str().unwrap().to_owned();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            h.http
                .get(h.url("/three"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 402], "the purchase was call one of three");
    assert_eq!(h.upstream.calls("/data"), 3);
    // The count lives in the database, where a restarted proxy finds it.
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let used: (i64,) = sqlx::query_as("SELECT used FROM access_calls")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(used.0, 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_route_rate_limit_answers_429_with_retry_after() {
    let h = Harness::start(ROUTES, Link::Real).await;
    let first = h.http.get(h.url("/limited")).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let refused_at = tokio::time::Instant::now();
    let second = h.http.get(h.url("/limited")).send().await.unwrap();
    assert_eq!(second.status(), 429);
    let wait: u64 = second.headers()[reqwest::header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1);
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["reason"], "rate_limited");
    assert_eq!(h.upstream.calls("/limited"), 1);
    // The answer names when to come back; at that moment (not before a guess of ours) the call passes.
    tokio::time::sleep_until(refused_at + std::time::Duration::from_secs(wait)).await;
    assert_eq!(
        h.http.get(h.url("/limited")).send().await.unwrap().status(),
        200,
        "a retry after the announced {wait} s passes"
    );
}

#[tokio::test]
async fn the_embedded_facilitator_settles_and_metrics_count_it() {
    let h = Harness::start(ROUTES, Link::Embedded).await;
    let seller_before = h.balance(h.seller).await;
    let offer = h.offer("/data").await;
    let payment = h.pay(&offer).await;
    let response = h.get_paid("/data", &payment).await;
    assert_eq!(response.status(), 200);
    let settled = receipt(response.headers()).unwrap();
    assert!(settled.success);
    assert_eq!(h.balance(h.seller).await, seller_before + U256::from(CENT));
    let resent = h.get_paid("/data", &payment).await;
    assert_eq!(resent.status(), 200, "the stored answer again");
    assert_eq!(receipt(resent.headers()).unwrap(), settled);
    assert_eq!(h.balance(h.seller).await, seller_before + U256::from(CENT));

    let health: Value = h
        .http
        .get(format!("{}/health", h.admin_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let metrics = h
        .http
        .get(format!("{}/metrics", h.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("proxy_requests_total{route=\"data\",outcome=\"paid\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("proxy_requests_total{route=\"data\",outcome=\"replayed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("proxy_requests_total{route=\"data\",outcome=\"payment_required\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("proxy_settled_atomic_units_total{"), "{metrics}");
    assert!(metrics.contains("} 10000"), "{metrics}");
    // The public listener does not serve the admin endpoints.
    assert_eq!(h.http.get(h.url("/metrics")).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn proxy_wide_limits_refuse_with_json() {
    let top = "body_limit_bytes = 1024\nlimits = { per_ip_per_second = 1000, per_payer_per_second = 1 }";
    let h = Harness::start_with(top, ROUTES, Link::Real).await;
    // An oversized body is refused before it goes anywhere.
    let big = h
        .http
        .post(h.url("/limited"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    let body: Value = big.json().await.unwrap();
    assert_eq!(body["reason"], "body_too_large");
    assert_eq!(h.upstream.calls("/limited"), 0);
    // One payer, two payments in the same second: the second waits its turn.
    let offer = h.offer("/data").await;
    let (first, second) = (h.pay(&offer).await, h.pay(&offer).await);
    assert_eq!(h.get_paid("/data", &first).await.status(), 200);
    let limited = h.get_paid("/data", &second).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key(reqwest::header::RETRY_AFTER));
    assert_eq!(h.upstream.calls("/data"), 1);
}

const TWO_HOSTS: &str = r#"
[[route]]
name = "a"
host = "a.test"
path = "/w"
upstream = "{upstream}"
rewrite = "/data"
price = "$0.01"
access = { seconds = 60 }

[[route]]
name = "b"
host = "b.test"
path = "/w"
upstream = "{upstream}"
rewrite = "/data"
price = "$0.01"
access = { seconds = 60 }
"#;

#[tokio::test]
async fn a_token_is_good_only_on_the_host_it_was_bought_on_and_never_reaches_the_upstream() {
    use protocol::header as codec;
    let h = Harness::start(TWO_HOSTS, Link::Real).await;
    let on = |host: &str| h.http.get(h.url("/w")).header(reqwest::header::HOST, host);
    let unpaid = on("a.test").send().await.unwrap();
    assert_eq!(unpaid.status(), 402);
    let offer = codec::decode_payment_required_v2(unpaid.headers()[codec::PAYMENT_REQUIRED].as_bytes()).unwrap();
    assert_eq!(offer.resource.url, "http://a.test/w");
    let paid = on("a.test")
        .header(codec::PAYMENT_SIGNATURE, h.pay(&offer).await)
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 200);
    assert!(receipt(paid.headers()).unwrap().success);
    let token = paid.headers()["x-access-token"].to_str().unwrap().to_owned();
    let cookie = paid.headers()[reqwest::header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("x402_access_a="), "{cookie}");

    // On a: by bearer and by cookie, beside a cookie of the upstream's own.
    let by_bearer = on("a.test").bearer_auth(&token).send().await.unwrap();
    assert_eq!(by_bearer.status(), 200);
    assert!(receipt(by_bearer.headers()).is_none(), "no new payment");
    let by_cookie = on("a.test")
        .header(
            reqwest::header::COOKIE,
            format!("theme=dark; x402_access_a={token}; lang=fr"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);
    assert_eq!(h.upstream.calls("/data"), 3);
    let last = h.upstream.last("/data").unwrap();
    assert_eq!(last.headers[reqwest::header::COOKIE], "theme=dark; lang=fr");
    for seen in h.upstream.seen.lock().unwrap().iter() {
        assert!(
            !seen.headers.contains_key(reqwest::header::AUTHORIZATION),
            "{:?}",
            seen.headers
        );
        let cookies: Vec<_> = seen.headers.get_all(reqwest::header::COOKIE).iter().collect();
        assert!(
            cookies.iter().all(|c| !c.to_str().unwrap().contains("x402")),
            "{cookies:?}"
        );
    }

    // On b — the same path and price, another host — the token buys nothing, as bearer or as b's cookie.
    for presented in [
        on("b.test").bearer_auth(&token),
        on("b.test").header(reqwest::header::COOKIE, format!("x402_access_b={token}")),
    ] {
        let refused = presented.send().await.unwrap();
        assert_eq!(refused.status(), 402);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["reason"], "access_token_invalid", "{body}");
    }
    assert_eq!(h.upstream.calls("/data"), 3, "b's upstream was never called");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let top = "trusted_proxies = [\"127.0.0.1\"]\nlimits = { per_ip_per_second = 1 }";
    let h = Harness::start_with(top, ROUTES, Link::Real).await;
    let from = |client: Option<&str>| {
        let request = h.http.get(h.url("/limited"));
        match client {
            Some(ip) => request.header("x-forwarded-for", format!("203.0.113.66, {ip}")),
            None => request,
        }
    };
    let status = async |client| from(client).send().await.unwrap().status().as_u16();
    assert_eq!(status(Some("198.51.100.1")).await, 200);
    assert_eq!(status(Some("198.51.100.1")).await, 429, "the same client, limited");
    // Another client behind the same proxy is not; neither is the proxy's own request.
    assert_eq!(status(Some("198.51.100.2")).await, 200);
    assert_eq!(status(None).await, 200);
    assert_eq!(status(None).await, 429);
}
