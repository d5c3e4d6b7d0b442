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
use fresco_core::telemetry;
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
pub const LEASE_EXPIRIES: &str = "fresco_lease_expiries_total";

/// The families a worker's `--metrics-listen` endpoint serves, each from its first scrape.
pub const WORKER_FAMILIES: &[&str] = &[
    telemetry::CHUNKS_CLAIMED,
    telemetry::CHUNKS_COMPLETED,
    telemetry::CHUNKS_FAILED,
    telemetry::CHUNKS_RETRIED,
    telemetry::FRAMES_SCORED,
    telemetry::INFERENCE_SECONDS,
    telemetry::PREVIEWS_SAVED,
    telemetry::RECORD_ROWS_WRITTEN,
    telemetry::DATASET_ITEMS_SCORED,
    telemetry::DATASET_ITEMS_FAILED,
    fresco_store::READ_BYTES,
    fresco_store::WRITTEN_BYTES,
    LEASE_EXPIRIES,
];

/// The families `fresco serve`'s `/metrics` serves from its first scrape: the workers' (it runs
/// workers of its own) and the server's.
pub const SERVER_FAMILIES: &[&str] = &[
    HTTP_REQUESTS,
    HTTP_DURATION,
    JOBS,
    QUEUE_PENDING,
    QUEUE_LEASED,
    ACTIVE_WORKERS,
    SCRAPE_ERRORS,
];

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
                    Matcher::Full(telemetry::INFERENCE_SECONDS.into()),
                    telemetry::INFERENCE_BUCKETS,
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
            telemetry::describe();
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
        LEASE_EXPIRIES,
        "Leases that ran out (their worker stopped renewing) and were ended by this process."
    );
}

/// Every family a worker reports, at zero (see [`WORKER_FAMILIES`]): what `fresco worker
/// --metrics-listen` and `fresco serve` call once the recorder is installed, with the device
/// their workers run on.
pub fn zero_worker_families(device: fresco_core::Device) {
    let styles = fresco_infer::registry::builtin_styles()
        .iter()
        .map(|s| s.name);
    telemetry::zero_families(device.kind(), styles);
    fresco_store::zero_metrics();
    metrics::counter!(LEASE_EXPIRIES).increment(0);
}

/// The server's own families at zero (see [`SERVER_FAMILIES`]): the request counter and timer
/// for each route answering 200, and the queue's gauges for every job state until a scrape
/// reads them. [`crate::router`] calls it; adding zero again changes nothing.
pub fn zero_server_families() {
    for route in crate::routes::all_routes() {
        let method = method_label(&route.method);
        metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route.path, "status" => "200")
            .increment(0);
        let _ = metrics::histogram!(HTTP_DURATION, "route" => route.path);
    }
    for job_state in [
        fresco_core::JobState::Queued,
        fresco_core::JobState::Running,
        fresco_core::JobState::Succeeded,
        fresco_core::JobState::Failed,
        fresco_core::JobState::Canceled,
    ] {
        metrics::gauge!(JOBS, "state" => job_state.as_str()).increment(0.0);
    }
    metrics::gauge!(QUEUE_PENDING).increment(0.0);
    metrics::gauge!(QUEUE_LEASED).increment(0.0);
    metrics::gauge!(ACTIVE_WORKERS).increment(0.0);
    metrics::counter!(SCRAPE_ERRORS).increment(0);
    metrics::counter!(LEASE_EXPIRIES).increment(0);
    fresco_store::zero_metrics();
}

/// `fresco worker --metrics-listen`: `GET /metrics` alone, in the Prometheus text format, with
/// the worker's families (the same names as the server's). It takes no credentials, like
/// other exporters: it tells counts, never a job id or a name (labels are bounded, see
/// `fresco_core::telemetry`); keep it on the pod's network (docs/security.md).
pub fn worker_router() -> axum::Router {
    async fn render() -> Result<Response, ApiError> {
        let Some(handle) = install() else {
            return Err(ApiError::unavailable(
                "metrics-unavailable",
                "another metrics recorder is installed in this process",
            ));
        };
        Ok(text(handle.render()))
    }
    async fn not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "route-not-found",
            "a worker serves GET /metrics only",
        )
    }
    axum::Router::new()
        .route("/metrics", axum::routing::get(render))
        .fallback(not_found)
}

/// Serves [`worker_router`] on `listener` until the process ends.
pub async fn serve_worker(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, worker_router()).await
}

fn text(body: String) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
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
    Ok(text(handle.render()))
}

/// Counts every request by method, route pattern (bounded: `/v1/jobs/{id}`, never the id) and
/// status, and times it.
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route).record(started.elapsed().as_secs_f64());
    response
}

/// The `method` label: the standard methods by name, any other as `other` (bounded).
fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}
