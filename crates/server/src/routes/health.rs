//! `/healthz` (the process answers) and `/readyz` (it can do work: the queue answers).

use std::time::Duration;

use axum::extract::State;
use axum::Json;

use crate::api::StatusBody;
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

/// How long the readiness probe waits for the queue: a load balancer's probe must not hang.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: 200 whenever the process can answer at all.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "The process is up", body = StatusBody))
)]
pub async fn healthz() -> Json<StatusBody> {
    Json(StatusBody {
        status: "ok".into(),
    })
}

/// Readiness: 200 when the job queue answers a cheap query, 503 otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "The queue answers", body = StatusBody),
        (status = 503, description = "The queue does not answer (code `queue-unavailable`)", body = ErrorBody),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<StatusBody>, ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, state.queue.jobs(&[], 1)).await {
        Ok(Ok(_)) => Ok(Json(StatusBody {
            status: "ready".into(),
        })),
        Ok(Err(e)) => Err(ApiError::unavailable("queue-unavailable", e)),
        Err(_) => Err(ApiError::unavailable(
            "queue-unavailable",
            format!("the queue did not answer within {READY_TIMEOUT:?}"),
        )),
    }
}
