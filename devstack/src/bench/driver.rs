//! The load driver: a separate process (`nerdcabal bench drive --job FILE`, pinned to the load core) that sends
//! a job's requests over `connections` keep-alive HTTP/1.1 connections — each request once (unique signed
//! payments) or round and round for a time (a pool of bodies) — and prints one [`Sample`] as JSON. The bench
//! writes the job and reads the answer, so the server under test and its load never share a process or a core.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

use super::sample::Sample;

/// One request of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub body: String,
}

/// How long a job runs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobLimit {
    /// Every request once.
    EachOnce,
    /// Round and round the requests for this long.
    Millis(u64),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// `host:port`.
    pub address: String,
    pub connections: usize,
    pub limit: JobLimit,
    /// The statuses that count as success.
    pub expect: Vec<u16>,
    pub requests: Vec<JobRequest>,
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("reading the job {0}: {1}")]
    Job(String, String),
    #[error("the job has no requests")]
    Empty,
}

/// Reads a job file, runs it, and returns its sample.
pub async fn run_file(path: &Path) -> Result<Sample, DriverError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| DriverError::Job(path.display().to_string(), e.to_string()))?;
    let job: Job =
        serde_json::from_str(&text).map_err(|e| DriverError::Job(path.display().to_string(), e.to_string()))?;
    run(job).await
}

struct Prepared {
    request: hyper::Request<Full<Bytes>>,
}

fn prepare(job: &Job, r: &JobRequest) -> Prepared {
    let mut builder = hyper::Request::builder()
        .method(r.method.as_str())
        .uri(r.path.as_str())
        .header(hyper::header::HOST, job.address.as_str());
    for (name, value) in &r.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let request = builder
        .body(Full::new(Bytes::from(r.body.clone())))
        .unwrap_or_else(|_| hyper::Request::new(Full::new(Bytes::new())));
    Prepared { request }
}

fn clone_request(p: &Prepared) -> hyper::Request<Full<Bytes>> {
    let mut out = hyper::Request::new(p.request.body().clone());
    *out.method_mut() = p.request.method().clone();
    *out.uri_mut() = p.request.uri().clone();
    *out.headers_mut() = p.request.headers().clone();
    out
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(address: &str) -> Option<Sender> {
    let stream = TcpStream::connect(address).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(connection);
    Some(sender)
}

/// Runs a job.
pub async fn run(job: Job) -> Result<Sample, DriverError> {
    if job.requests.is_empty() {
        return Err(DriverError::Empty);
    }
    let prepared: Arc<Vec<Prepared>> = Arc::new(job.requests.iter().map(|r| prepare(&job, r)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let expect = Arc::new(job.expect.clone());
    let address = Arc::new(job.address.clone());
    let started = Instant::now();
    let mut workers = Vec::with_capacity(job.connections);
    for _ in 0..job.connections.max(1) {
        let (prepared, next, expect, address) = (prepared.clone(), next.clone(), expect.clone(), address.clone());
        let limit = job.limit;
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0u64;
            let mut sender: Option<Sender> = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let item = match limit {
                    JobLimit::EachOnce if i >= prepared.len() => break,
                    JobLimit::EachOnce => &prepared[i],
                    JobLimit::Millis(ms) if started.elapsed() >= Duration::from_millis(ms) => break,
                    JobLimit::Millis(_) => &prepared[i % prepared.len()],
                };
                let t = Instant::now();
                if sender.as_ref().is_none_or(|s| s.is_closed()) {
                    sender = connect(&address).await;
                }
                let Some(s) = sender.as_mut() else {
                    failed += 1;
                    continue;
                };
                if s.ready().await.is_err() {
                    sender = None;
                    failed += 1;
                    continue;
                }
                match s.send_request(clone_request(item)).await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let whole = response.into_body().collect().await.is_ok();
                        if whole && expect.contains(&status) {
                            latencies.push(t.elapsed().as_micros() as u64);
                        } else {
                            failed += 1;
                        }
                    }
                    Err(_) => {
                        sender = None;
                        failed += 1;
                    }
                }
            }
            (latencies, failed)
        }));
    }
    let mut latencies = Vec::new();
    let mut failed = 0;
    for worker in workers {
        if let Ok((l, f)) = worker.await {
            latencies.extend(l);
            failed += f;
        }
    }
    Ok(Sample::from_latencies(latencies, failed, started.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_request_goes_once_and_statuses_are_judged() {
        let hits = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen = hits.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let seen = seen.clone();
            async move {
                let path = uri.to_string();
                let status = if path.ends_with("/bad") { 500 } else { 200 };
                if let Ok(mut v) = seen.lock() {
                    v.push(path);
                }
                axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut requests: Vec<JobRequest> = (0..50)
            .map(|i| JobRequest {
                method: "GET".into(),
                path: format!("/item/{i}"),
                headers: vec![],
                body: String::new(),
            })
            .collect();
        requests.push(JobRequest {
            method: "GET".into(),
            path: "/item/bad".into(),
            headers: vec![],
            body: String::new(),
        });
        let sample = run(Job {
            address,
            connections: 8,
            limit: JobLimit::EachOnce,
            expect: vec![200],
            requests,
        })
        .await
        .unwrap();
        assert_eq!((sample.ok, sample.failed), (50, 1));
        let mut paths = hits.lock().unwrap().clone();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), 51, "every request went exactly once");
    }
}
