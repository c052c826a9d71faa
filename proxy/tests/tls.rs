//! TLS on the public listener, in a test binary of its own (SIGHUP goes to the whole process): HTTPS with
//! HTTP/2 negotiated by ALPN, the pipeline seeing the client's address, and the certificate swapped on SIGHUP
//! for new connections — a bad certificate file is refused and the one in force stays.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Harness, Link, proxy_toml};

const ROUTES: &str = r#"
[[route]]
name = "free"
path = "/free"
upstream = "{upstream}"
free = true
"#;

const MORE_ROUTES: &str = r#"
[[route]]
name = "free"
path = "/free"
upstream = "{upstream}"
free = true

[[route]]
name = "later"
path = "/later"
upstream = "{upstream}"
free = true
"#;

/// A fresh self-signed certificate for 127.0.0.1 and localhost, written as the proxy's pair; its PEM.
fn new_certificate(cert: &Path, key: &Path) -> String {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let pem = made.cert.pem();
    std::fs::write(key, made.signing_key.serialize_pem()).unwrap();
    std::fs::write(cert, &pem).unwrap();
    pem
}

/// A client that trusts only `pem` and opens a new connection per request.
fn trusting(pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

fn hang_up() {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Polls `ready` (bounded): the reload on SIGHUP happens on another task.
async fn until(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 5 s");
}

#[tokio::test]
async fn https_negotiates_http2_and_sighup_swaps_the_certificate() {
    // Registered before anything else, so SIGHUP can never take the default action (exit) here.
    let _keep = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let dir = common::temp_dir("tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let first = new_certificate(&cert, &key);
    let top = format!("tls = {{ cert = \"{}\", key = \"{}\" }}", cert.display(), key.display());
    let h = Harness::start_with(&top, ROUTES, Link::Embedded).await;
    let url = |path: &str| format!("{}{path}", h.proxy_url.replacen("http://", "https://", 1));

    let response = trusting(&first).get(url("/free")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2, "h2 by ALPN");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["path"], "/free");
    let seen = h.upstream.last("/free").unwrap();
    assert_eq!(seen.headers["x-forwarded-proto"], "https");
    assert_eq!(
        seen.headers["x-forwarded-for"], "127.0.0.1",
        "the pipeline saw the peer"
    );
    // Plain HTTP on the TLS port gets nowhere.
    assert!(h.http.get(h.url("/free")).send().await.is_err());

    // A new certificate, then SIGHUP: new connections get it.
    let second = new_certificate(&cert, &key);
    hang_up();
    let by_second = trusting(&second);
    until("the new certificate is served", async || {
        by_second.get(url("/free")).send().await.is_ok()
    })
    .await;
    assert!(
        trusting(&first).get(url("/free")).send().await.is_err(),
        "the old certificate is no longer served"
    );

    // A broken certificate file is refused: the one in force stays. New routes in the same SIGHUP show
    // that it was handled (the certificate is read before the routes).
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let link = "[facilitator]\nembedded = true";
    std::fs::write(
        &h.config_path,
        format!(
            "{top}\n{}",
            proxy_toml(&h.devnet, h.seller, &h.upstream_url, link, MORE_ROUTES)
        ),
    )
    .unwrap();
    hang_up();
    until("the SIGHUP is handled", async || {
        by_second
            .get(url("/later"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let still = by_second.get(url("/free")).send().await.unwrap();
    assert_eq!(still.status(), 200, "the second certificate is still served");
    let _ = std::fs::remove_dir_all(&dir);
}
