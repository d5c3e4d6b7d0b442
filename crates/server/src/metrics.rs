//! `GET /metrics`: the Prometheus text format, rendered by `metrics-exporter-prometheus` from
//! everything this process counted through the `metrics` facade (workers, queue, stores, HTTP),
//! plus gauges read from the queue at scrape time (jobs by state, queue depth, active workers),
//! which cover every worker of a deployment, whatever process it runs in.
//!
//! The recorder is process-wide: [`install`] sets it once (the binary calls it at start; the
//! handler calls it too, so a router built in a test also serves metrics).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::ApiError;
use crate::AppState;

pub const HTTP_REQUESTS: &str = "fresco_http_requests_total";
pub const HTTP_DURATION: &str = "fresco_http_request_duration_seconds";
pub const JOBS: &str = "fresco_jobs";
pub const QUEUE_PENDING: &str = "fresco_queue_pending_tasks";
pub const QUEUE_LEASED: &str = "fresco_queue_leased_tasks";
pub const ACTIVE_WORKERS: &str = "fresco_active_workers";
pub const SCRAPE_ERRORS: &str = "fresco_metrics_queue_errors_total";

/// Workers heard from within this long count as active (they announce themselves at least
/// every 10 s).
pub const ACTIVE_WITHIN: Duration = Duration::from_secs(60);

const HTTP_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder for this process (once; later calls return the same
/// handle). None if another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(fresco_worker::telemetry::INFERENCE_SECONDS.into()),
                    fresco_worker::telemetry::INFERENCE_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), HTTP_BUCKETS)
                });
            let recorder = match builder {
                Ok(builder) => builder.build_recorder(),
                Err(e) => {
                    tracing::warn!("metrics are off: {e}");
                    return None;
                }
            };
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("metrics are off: another metrics recorder is installed");
                return None;
            }
            describe();
            fresco_worker::telemetry::describe();
            fresco_store::describe_metrics();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route (the route's pattern) and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer HTTP requests, by route."
    );
    describe_gauge!(JOBS, "Jobs in the queue, by state (read at scrape time).");
    describe_gauge!(
        QUEUE_PENDING,
        "Tasks waiting to be claimed: the queue's depth (read at scrape time)."
    );
    describe_gauge!(
        QUEUE_LEASED,
        "Tasks under a lease now (read at scrape time)."
    );
    describe_gauge!(
        ACTIVE_WORKERS,
        "Workers not stopped and heard from within the last minute (read at scrape time)."
    );
    describe_counter!(
        SCRAPE_ERRORS,
        "Scrapes whose queue gauges could not be read (the database was unavailable)."
    );
    describe_counter!(
        "fresco_lease_expiries_total",
        "Leases that ran out (their worker stopped renewing) and were ended by this process."
    );
}

/// The metrics, in the Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let Some(handle) = install() else {
        return Err(ApiError::unavailable(
            "metrics-unavailable",
            "another metrics recorder is installed in this process",
        ));
    };
    match state.queue.stats(ACTIVE_WITHIN, Duration::ZERO).await {
        Ok(stats) => {
            for (job_state, count) in &stats.jobs_by_state {
                metrics::gauge!(JOBS, "state" => job_state.as_str()).set(*count as f64);
            }
            metrics::gauge!(QUEUE_PENDING).set(stats.tasks_pending as f64);
            metrics::gauge!(QUEUE_LEASED).set(stats.tasks_leased as f64);
            metrics::gauge!(ACTIVE_WORKERS).set(stats.workers_active as f64);
        }
        // The process's own counters are still worth a scrape.
        Err(e) => {
            tracing::warn!("/metrics: could not read the queue's counts: {e}");
            metrics::counter!(SCRAPE_ERRORS).increment(1);
        }
    }
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response())
}

/// Counts every request by method, route pattern (bounded: `/v1/jobs/{id}`, never the id) and
/// status, and times it.
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method: &'static str = match request.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route).record(started.elapsed().as_secs_f64());
    response
}
