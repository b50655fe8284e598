//! Operations: the request id, the access log and the Prometheus metrics.
//!
//! Every response carries `X-Request-Id` (the caller's, when it sent a usable one, else a new
//! UUID), and every log line written while the request runs carries it too. `GET /metrics`
//! serves request counts and latencies by route and status, and the database pool's use.

use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{get, web, HttpMessage, HttpResponse, ResponseError};
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};
use std::sync::LazyLock;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served (in the request's extensions).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

struct Metrics {
    registry: Registry,
    requests: HistogramVec,
    pool_size: IntGauge,
    pool_idle: IntGauge,
    pool_max: IntGauge,
    webhook_attempts: IntCounterVec,
    worker_rounds: Histogram,
    batch_items: IntCounterVec,
    text_index_pages: IntCounter,
    import_rows: IntCounterVec,
    import_jobs: IntGaugeVec,
    deliveries_pending: IntGauge,
    oldest_delivery_age: Gauge,
}

static METRICS: LazyLock<Option<Metrics>> = LazyLock::new(|| {
    let registry = Registry::new_custom(Some("crm".into()), None).ok()?;
    let requests = HistogramVec::new(
        HistogramOpts::new(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route pattern and status",
        )
        .buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ]),
        &["method", "route", "status"],
    )
    .ok()?;
    let gauge = |name: &str, help: &str| IntGauge::with_opts(Opts::new(name, help)).ok();
    let pool_size = gauge("db_pool_connections", "Open database connections")?;
    let pool_idle = gauge(
        "db_pool_idle_connections",
        "Open database connections not in use",
    )?;
    let pool_max = gauge(
        "db_pool_max_connections",
        "Most database connections the pool opens",
    )?;
    registry.register(Box::new(requests.clone())).ok()?;
    registry.register(Box::new(pool_size.clone())).ok()?;
    registry.register(Box::new(pool_idle.clone())).ok()?;
    registry.register(Box::new(pool_max.clone())).ok()?;
    let webhook_attempts = IntCounterVec::new(
        Opts::new(
            "webhook_attempts_total",
            "Webhook delivery attempts by outcome: succeeded, retrying (failed, will retry) or failed (retries spent)",
        ),
        &["outcome"],
    )
    .ok()?;
    let worker_rounds = Histogram::with_opts(
        HistogramOpts::new(
            "webhook_worker_round_seconds",
            "Time the webhook worker spends per round (queueing and sending)",
        )
        .buckets(vec![0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10.0, 60.0]),
    )
    .ok()?;
    registry.register(Box::new(webhook_attempts.clone())).ok()?;
    registry.register(Box::new(worker_rounds.clone())).ok()?;
    let batch_items = IntCounterVec::new(
        Opts::new(
            "batch_items_total",
            "Operations of batches and import rows run, by object and write path: bulk (written together) or itemwise (one by one, each in its own savepoint)",
        ),
        &["object", "path"],
    )
    .ok()?;
    registry.register(Box::new(batch_items.clone())).ok()?;
    let text_index_pages = IntCounter::with_opts(Opts::new(
        "text_index_pages_flushed_total",
        "Pending-list pages of PostgreSQL's free-text (GIN) indexes the server merged into the indexes in the background",
    ))
    .ok()?;
    registry.register(Box::new(text_index_pages.clone())).ok()?;
    let import_rows = IntCounterVec::new(
        Opts::new(
            "import_rows_total",
            "Import rows written by this process's import workers, by outcome: created, updated or failed (committed batches only; dry runs are not counted)",
        ),
        &["outcome"],
    )
    .ok()?;
    registry.register(Box::new(import_rows.clone())).ok()?;
    let import_jobs = IntGaugeVec::new(
        Opts::new(
            "import_jobs",
            "Import jobs waiting (queued) or being worked on (running), in all workspaces, read from the database at each scrape",
        ),
        &["status"],
    )
    .ok()?;
    registry.register(Box::new(import_jobs.clone())).ok()?;
    let deliveries_pending = gauge(
        "webhook_deliveries_pending",
        "Webhook deliveries not yet made (due or waiting to retry), in all workspaces, read from the database at each scrape",
    )?;
    registry
        .register(Box::new(deliveries_pending.clone()))
        .ok()?;
    let oldest_delivery_age = Gauge::with_opts(Opts::new(
        "webhook_oldest_pending_delivery_seconds",
        "Age of the oldest webhook delivery not yet made (0 when none waits): how far receivers lag behind",
    ))
    .ok()?;
    registry
        .register(Box::new(oldest_delivery_age.clone()))
        .ok()?;
    Some(Metrics {
        registry,
        requests,
        pool_size,
        pool_idle,
        pool_max,
        webhook_attempts,
        worker_rounds,
        batch_items,
        text_index_pages,
        import_rows,
        import_jobs,
        deliveries_pending,
        oldest_delivery_age,
    })
});

/// A caller's request id is kept when it is 1 to 128 visible ASCII characters.
fn usable_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| s.to_string())
}

/// Middleware (outermost): request id, access log line and latency metric.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(usable_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let span =
        tracing::info_span!("request", request_id = %id, method = %method, path = %req.path());
    // The middleware inside answers its own errors; an error still arriving here is one
    // actix renders itself, and is only counted.
    let mut res = match next.call(req).instrument(span.clone()).await {
        Ok(res) => res,
        Err(e) => {
            let status = e.as_response_error().status_code();
            observe(&method, "unmatched", status.as_u16(), started);
            return Err(e);
        }
    };
    let status = res.status().as_u16();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let elapsed = observe(&method, &route, status, started);
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    span.in_scope(|| {
        tracing::info!(
            target: "crm::access",
            status,
            route = %route,
            micros = elapsed.as_micros() as u64,
            "served"
        )
    });
    Ok(res)
}

fn observe(
    method: &actix_web::http::Method,
    route: &str,
    status: u16,
    started: Instant,
) -> std::time::Duration {
    let elapsed = started.elapsed();
    if let Some(m) = METRICS.as_ref() {
        m.requests
            .with_label_values(&[method.as_str(), route, &status.to_string()])
            .observe(elapsed.as_secs_f64());
    }
    elapsed
}

/// Counts one webhook delivery attempt by its outcome (`succeeded`, `retrying`, `failed`).
pub fn webhook_attempt(outcome: &str) {
    if let Some(m) = METRICS.as_ref() {
        m.webhook_attempts.with_label_values(&[outcome]).inc();
    }
}

/// Counts the operations of a batch (or import rows) run on one write path.
pub fn batch_items(object: &str, bulk: bool, n: usize) {
    if let Some(m) = METRICS.as_ref() {
        let path = if bulk { "bulk" } else { "itemwise" };
        m.batch_items
            .with_label_values(&[object, path])
            .inc_by(n as u64);
    }
}

/// Counts the rows of one committed import batch by outcome.
pub fn import_rows(created: i64, updated: i64, failed: i64) {
    if let Some(m) = METRICS.as_ref() {
        for (outcome, n) in [
            ("created", created),
            ("updated", updated),
            ("failed", failed),
        ] {
            m.import_rows
                .with_label_values(&[outcome])
                .inc_by(n.max(0) as u64);
        }
    }
}

/// Records the duration of one round of the webhook worker.
pub fn worker_round(elapsed: std::time::Duration) {
    if let Some(m) = METRICS.as_ref() {
        m.worker_rounds.observe(elapsed.as_secs_f64());
    }
}

/// Counts the pending-list pages a flush of the text indexes emptied.
pub fn text_index_pages_flushed(pages: i64) {
    if let Some(m) = METRICS.as_ref() {
        m.text_index_pages.inc_by(pages.max(0) as u64);
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics", security(()),
    responses((status = 200, description = "Metrics in the Prometheus text format: `crm_http_request_duration_seconds` (histogram by method, route and status; its `_count` is the request count), `crm_db_pool_*` gauges, the webhook worker's `crm_webhook_attempts_total` (by outcome) and `crm_webhook_worker_round_seconds`, `crm_batch_items_total` (batch operations and import rows by object and write path: `bulk` or `itemwise`), `crm_import_rows_total` (rows of committed import batches by outcome), the backlog read from the database at each scrape (`crm_import_jobs` by status, `crm_webhook_deliveries_pending`, `crm_webhook_oldest_pending_delivery_seconds`) and, on PostgreSQL, `crm_text_index_pages_flushed_total` (pending-list pages of the free-text indexes merged in the background)", body = String, content_type = "text/plain"),
        (status = 401, description = "The server runs with `CRM_METRICS_TOKEN` and the request did not carry it as `Authorization: Bearer <token>`", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>, req: actix_web::HttpRequest) -> HttpResponse {
    if let Some(token) = &state.config.metrics_token {
        let given = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let matches = given.is_some_and(|g| {
            crate::auth::sha256_hex(g.as_bytes()) == crate::auth::sha256_hex(token.as_bytes())
        });
        if !matches {
            return crate::error::ApiError::Unauthorized(
                "metrics need `Authorization: Bearer` and the metrics token".into(),
            )
            .error_response();
        }
    }
    let Some(m) = METRICS.as_ref() else {
        return crate::error::ApiError::internal("metrics are unavailable").error_response();
    };
    let pool = state.pool.state();
    m.pool_size.set(pool.connections.into());
    m.pool_idle.set(pool.idle_connections.into());
    m.pool_max.set(state.pool.max_size().into());
    // The backlog comes from the database; when it does not answer, the gauges keep their
    // last values and the rest is still served.
    match state.db(|c| Ok(crm_db::repo::backlog::read(c)?)).await {
        Ok(b) => {
            m.import_jobs
                .with_label_values(&["queued"])
                .set(b.imports_queued);
            m.import_jobs
                .with_label_values(&["running"])
                .set(b.imports_running);
            m.deliveries_pending.set(b.deliveries_pending);
            let age = b.oldest_pending_delivery.map_or(0.0, |t| {
                (crm_domain::values_time::now() - t)
                    .num_milliseconds()
                    .max(0) as f64
                    / 1000.0
            });
            m.oldest_delivery_age.set(age);
        }
        Err(e) => tracing::warn!(error = %e, "the metrics' backlog could not be read"),
    }
    let mut out = Vec::new();
    if let Err(e) = prometheus::TextEncoder::new().encode(&m.registry.gather(), &mut out) {
        return crate::error::ApiError::internal(e).error_response();
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(out)
}
