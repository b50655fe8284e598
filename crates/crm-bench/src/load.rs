//! The HTTP load generator: N keep-alive connections over loopback, each sending one
//! request after another for a fixed time; every latency goes into an HDR histogram.

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// A request slower than this is abandoned and counted as a timeout (its connection is
/// replaced).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Highest latency the histograms hold, in microseconds.
const MAX_LATENCY_US: u64 = 120_000_000;

pub type Body = Full<Bytes>;

/// Builds the `seq`-th request of a connection.
pub type MakeRequest = Arc<dyn Fn(&mut StdRng, u64) -> Result<Request<Body>> + Send + Sync>;

/// Where requests go and with which credentials.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub token: String,
}

impl Target {
    pub fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, String)>,
    ) -> Result<Request<Body>> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.addr.to_string())
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            );
        let body = match body {
            Some((content_type, json)) => {
                b = b.header(hyper::header::CONTENT_TYPE, content_type);
                Bytes::from(json)
            }
            None => Bytes::new(),
        };
        b.body(Full::new(body)).context("building a request")
    }
}

/// What one scenario at one concurrency measured.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub requests: u64,
    /// Responses that were not 2xx, and transport failures.
    pub errors: u64,
    pub timeouts: u64,
    pub seconds: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The first failure seen, to tell what went wrong.
    pub first_error: Option<String>,
    /// Failures by HTTP status (`transport` and `timeout` for the others).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub errors_by_status: BTreeMap<String, u64>,
}

struct ConnStats {
    hist: Histogram<u64>,
    errors: u64,
    timeouts: u64,
    first_error: Option<String>,
    by_status: BTreeMap<String, u64>,
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Body>> {
    let stream = TcpStream::connect(addr).await.context("connect")?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // The connection ends when its sender is dropped or the server closes it.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request on a fresh connection and returns the status and body.
pub async fn send_once(addr: SocketAddr, req: Request<Body>) -> Result<(StatusCode, Bytes)> {
    let mut sender = connect(addr).await?;
    let res = sender.send_request(req).await?;
    let status = res.status();
    let body = res.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// The most of a response body a connection keeps (to report a failure); the rest of a
/// long body (an export) is read and dropped as it arrives.
const KEPT_BODY_BYTES: usize = 64 * 1024;

async fn exchange(
    sender: &mut SendRequest<Body>,
    req: Request<Body>,
) -> Result<(StatusCode, Bytes)> {
    sender.ready().await?;
    let res = sender.send_request(req).await?;
    let status = res.status();
    let mut body = res.into_body();
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            let room = KEPT_BODY_BYTES.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok((status, Bytes::from(kept)))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_LATENCY_US)
}

async fn connection(
    addr: SocketAddr,
    index: u64,
    deadline: Instant,
    make: MakeRequest,
) -> Result<ConnStats> {
    let mut stats = ConnStats {
        hist: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?,
        errors: 0,
        timeouts: 0,
        first_error: None,
        by_status: BTreeMap::new(),
    };
    let mut rng = StdRng::seed_from_u64(0x5eed ^ index);
    let mut sender = connect(addr).await?;
    let mut seq = 0u64;
    while Instant::now() < deadline {
        let req = make(&mut rng, (index << 32) | seq)?;
        seq += 1;
        let started = Instant::now();
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, exchange(&mut sender, req)).await;
        stats.hist.record(micros(started.elapsed()))?;
        match outcome {
            Ok(Ok((status, body))) => {
                if !status.is_success() {
                    stats.errors += 1;
                    *stats
                        .by_status
                        .entry(status.as_u16().to_string())
                        .or_default() += 1;
                    if stats.first_error.is_none() {
                        let text =
                            String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                        stats.first_error = Some(format!("{status}: {text}"));
                    }
                }
            }
            Ok(Err(e)) => {
                stats.errors += 1;
                *stats.by_status.entry("transport".into()).or_default() += 1;
                stats
                    .first_error
                    .get_or_insert_with(|| format!("transport: {e}"));
                sender = connect(addr).await?;
            }
            Err(_) => {
                stats.timeouts += 1;
                *stats.by_status.entry("timeout".into()).or_default() += 1;
                sender = connect(addr).await?;
            }
        }
    }
    Ok(stats)
}

/// Runs `concurrency` connections for `duration`; requests started before the end are
/// waited for (up to [`REQUEST_TIMEOUT`]) and counted.
pub async fn run(
    addr: SocketAddr,
    concurrency: usize,
    duration: Duration,
    make: MakeRequest,
) -> Result<Measured> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..concurrency as u64)
        .map(|i| tokio::spawn(connection(addr, i, deadline, make.clone())))
        .collect();
    let mut hist: Histogram<u64> = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?;
    let (mut errors, mut timeouts, mut first_error) = (0, 0, None);
    let mut errors_by_status = BTreeMap::new();
    for t in tasks {
        let s = t.await.map_err(|e| anyhow!("load task: {e}"))??;
        hist.add(&s.hist)?;
        errors += s.errors;
        timeouts += s.timeouts;
        for (k, n) in s.by_status {
            *errors_by_status.entry(k).or_default() += n;
        }
        if first_error.is_none() {
            first_error = s.first_error;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    Ok(Measured {
        requests: hist.len(),
        errors,
        timeouts,
        seconds,
        rps: hist.len() as f64 / seconds,
        p50_ms: ms(0.50),
        p90_ms: ms(0.90),
        p99_ms: ms(0.99),
        max_ms: hist.max() as f64 / 1000.0,
        first_error,
        errors_by_status,
    })
}
