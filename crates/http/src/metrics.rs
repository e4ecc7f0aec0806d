//! Prometheus metrics (`GET /metrics`).
//!
//! Requests are counted per endpoint (the matched route, so ids in paths do not explode
//! the label set) and per envelope code, since upstream answers HTTP 200 for business
//! failures. Store figures (outbox, writer queue, read pool) are read when scraped.

use crate::AppState;
use crate::response::EnvelopeCode;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::time::Instant;

/// Every series the service exports.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    draws: IntCounterVec,
    outbox_tasks: IntGaugeVec,
    outbox_lag: Gauge,
    writer_queue: IntGauge,
    idle_readers: IntGauge,
    /// Group-commit figures since start: groups, transactions in them, transactions run
    /// again alone, slow groups (the store's own counters, exported as they are read).
    store_groups: IntGaugeVec,
    breaker_open: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("big_market".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "Requests by endpoint, method and envelope code",
            ),
            &["endpoint", "method", "code"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "Request latency").buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["endpoint", "code"],
        )?;
        let draws = IntCounterVec::new(
            Opts::new("draws_total", "Committed draws by award"),
            &["activity_id", "award_id"],
        )?;
        let outbox_tasks = IntGaugeVec::new(
            Opts::new("outbox_tasks", "Outbox tasks by state"),
            &["state"],
        )?;
        let outbox_lag = Gauge::new(
            "outbox_oldest_pending_seconds",
            "Age of the oldest outbox task waiting for delivery (create or fail)",
        )?;
        let writer_queue = IntGauge::new(
            "store_writer_queue",
            "Transactions waiting for the embedded store's writer",
        )?;
        let idle_readers = IntGauge::new(
            "store_idle_read_connections",
            "Idle read connections of the embedded store",
        )?;
        let store_groups = IntGaugeVec::new(
            Opts::new(
                "store_group_commits",
                "Group commits since start: `groups` committed, `grouped` transactions in them, \
                 `regrouped` transactions run again alone after their group rolled back, \
                 `slow` groups over 50 ms",
            ),
            &["kind"],
        )?;
        let breaker_open = IntGauge::new(
            "draw_breaker_open",
            "1 while the draw circuit breaker is open or half-open",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(draws.clone()))?;
        registry.register(Box::new(outbox_tasks.clone()))?;
        registry.register(Box::new(outbox_lag.clone()))?;
        registry.register(Box::new(writer_queue.clone()))?;
        registry.register(Box::new(idle_readers.clone()))?;
        registry.register(Box::new(store_groups.clone()))?;
        registry.register(Box::new(breaker_open.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            draws,
            outbox_tasks,
            outbox_lag,
            writer_queue,
            idle_readers,
            store_groups,
            breaker_open,
        })
    }

    pub fn draw(&self, activity_id: i64, award_id: i32) {
        self.draws
            .with_label_values(&[&activity_id.to_string(), &award_id.to_string()])
            .inc();
    }
}

/// Middleware counting requests by matched route and envelope code.
pub async fn track(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let res = next.run(req).await;
    let code = res.extensions().get::<EnvelopeCode>().map_or_else(
        || format!("http_{}", res.status().as_u16()),
        |c| c.0.to_owned(),
    );
    app.metrics
        .requests
        .with_label_values(&[&endpoint, &method, &code])
        .inc();
    app.metrics
        .latency
        .with_label_values(&[&endpoint, &code])
        .observe(start.elapsed().as_secs_f64());
    res
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operating",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(app): State<AppState>) -> Response {
    let m = &app.metrics;
    match app.probe.outbox().await {
        Ok(stats) => {
            m.outbox_tasks.reset();
            for (state, n) in stats.by_state {
                m.outbox_tasks.with_label_values(&[&state]).set(n);
            }
            m.outbox_lag.set(stats.oldest_pending_secs);
        }
        Err(e) => tracing::warn!(error = %e, "outbox figures unavailable"),
    }
    let load = app.probe.load();
    m.writer_queue
        .set(i64::try_from(load.writer_queue).unwrap_or(i64::MAX));
    m.idle_readers
        .set(i64::try_from(load.idle_readers).unwrap_or(i64::MAX));
    for (kind, n) in [
        ("groups", load.groups),
        ("grouped", load.grouped),
        ("regrouped", load.regrouped),
        ("slow", load.slow_groups),
    ] {
        m.store_groups
            .with_label_values(&[kind])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    m.breaker_open.set(i64::from(app.guard.breaker_open()));
    let mut body = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&m.registry.gather(), &mut body) {
        tracing::error!(error = %e, "metrics could not be encoded");
    }
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}
